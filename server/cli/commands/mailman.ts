// `letterlock mailman ...`: lists bound to a Mailman 3 Core (issue 11). routes: the
// Postfix transport map for them; status: sync, keys and drift per list; import: bind
// an existing Mailman list and invite its members to register keys.

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createEventLog } from '../../log/log.ts';
import { mailmanClient } from '../../mailman/endpoint.ts';
import { ImportError, importMailmanList } from '../../mailman/import.ts';
import { MailmanError } from '../../mailman/rest.ts';
import { checkRoutes, nexthop, parseHostPort, postfixLookup, routesFor, RoutingError, transportMap } from '../../mailman/routing.ts';
import { UnsafeMailmanList } from '../../mailman/safety.ts';
import { mailmanStatus, type ListStatus } from '../../mailman/status.ts';
import { allLists } from '../../store/lists.ts';
import { QueueStore } from '../../store/queue.ts';
import type { Config } from '../../config/config.ts';
import { BindError } from '../../mailman/bind.ts';
import { globals, withStore } from '../context.ts';
import { CliError, date, emit, EXIT, iso, note, table } from '../output.ts';
import { startProgress } from '../progress.ts';
import { maxBytesArg } from './args.ts';
import { notifyQueued } from '../../store/wakeup.ts';

function hostPortArg(v: string): { host: string; port: number } {
  try {
    const hp = parseHostPort(v, 'HOST:PORT');
    nexthop('smtp', hp.host, hp.port);
    return hp;
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function clientOf(config: Config, dataDir: string) {
  const rest = mailmanClient(config, dataDir);
  if (!rest) throw new CliError('no "mailman" section in letterlock.json (url, and user/pass or credentialsFile)', EXIT.UNREACHABLE);
  return rest;
}

/** Mailman's errors as the operator's: the Core down is exit 3, a refusal exit 1. */
function cliErrorOf(e: unknown): unknown {
  if (e instanceof MailmanError) {
    const down = e.code === 'UNREACHABLE' || e.code === 'TIMEOUT' || (e.status ?? 0) >= 500;
    return new CliError(e.message, down ? EXIT.UNREACHABLE : EXIT.REFUSED, `MAILMAN_${e.code}`);
  }
  if (e instanceof UnsafeMailmanList) return new CliError(e.message, EXIT.REFUSED, 'MAILMAN_UNSAFE_SETTINGS');
  if (e instanceof ImportError || e instanceof BindError || e instanceof RoutingError) return new CliError(e.message, EXIT.REFUSED);
  return e;
}

function ago(t: number | null): string {
  if (t === null) return 'never';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : date(t);
}

function humanStatus(rows: ListStatus[]): string {
  const main = table(rows.map((r) => [
    r.list, r.mailmanListId, ago(r.syncedAt) + (r.lastError ? ` (last try ${ago(r.attemptedAt)}: ${r.lastError})` : ''),
    String(r.members), String(r.withKey), String(r.withoutKey), String(r.invited),
    r.drift === null ? `? (${r.reachError})` : r.drift.length === 0 ? 'none' : `${r.drift.length}`,
  ]), ['LIST', 'MAILMAN LIST', 'LAST SYNC', 'MEMBERS', 'WITH KEY', 'WITHOUT KEY', 'INVITED', 'DRIFT']);
  const drifts = rows.filter((r) => r.drift?.length).map((r) => `\n${r.list}: drift between Mailman and Letterlock\n${table(
    r.drift!.map((d) => [d.kind, d.setting, d.mailman, d.letterlock, d.note]), ['KIND', 'SETTING', 'MAILMAN', 'LETTERLOCK', ''],
  ).replace(/ +$/gm, '')}`);
  const unsafe = rows.some((r) => r.drift?.some((d) => d.kind === 'unsafe'));
  return [main, ...drifts, ...(unsafe ? ['\nunsafe: fix in Postorius, or run: letterlock mailman import LIST --fix'] : [])].join('\n');
}

export function register(program: Command): void {
  const mm = program.command('mailman').description('lists bound to a Mailman 3 Core: routing, status, import')
    .addHelpText('after', `
The Core's REST URL and admin credentials are the "mailman" section of letterlock.json
(url, user and pass, or credentialsFile: a JSON file of mode 0600).

Examples:
  letterlock mailman routes > /etc/postfix/letterlock_transport
  letterlock mailman status
  letterlock mailman import news@lists.example.org --fix`);

  mm.command('routes').description('the Postfix transport map for the bound lists (goes before Mailman\'s own in transport_maps)')
    .option('--letterlock <host:port>', "Letterlock's SMTP ingest as Postfix reaches it (default: its smtp host and port)", hostPortArg)
    .option('--mailman-lmtp <host:port>', "Mailman's LMTP runner ([mta] lmtp_host and lmtp_port)", hostPortArg, { host: '127.0.0.1', port: 8024 })
    .option('--list <address>', 'route this list too, bound or not (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--check', "instead of printing the map, ask Postfix (postconf, postmap -q) whether its transport_maps route each address so; exit 1 if not")
    .option('--postfix-config <dir>', 'with --check: the Postfix configuration folder (default /etc/postfix)')
    .addHelpText('after', `
Then: postmap /etc/postfix/letterlock_transport && postfix reload
--check --json prints [{"list", "address", "target", "transport", "why", "got", "ok"}].
With recipient_delimiter = +, the posting address also routes Letterlock's VERP
bounces, and -bounces/-confirm Mailman's. See README "Beside Mailman 3".
--json prints [{"list", "address", "target", "transport", "why"}].`)
    .action(async (o: { letterlock?: { host: string; port: number }; mailmanLmtp: { host: string; port: number }; list?: string[]; check?: boolean; postfixConfig?: string }, cmd: Command) =>
      withStore(cmd, async ({ sql, config }) => {
        try {
          const g = globals(cmd);
          const ll = o.letterlock ?? { host: ['0.0.0.0', '::', ''].includes(config.smtp.host) ? '127.0.0.1' : config.smtp.host, port: config.smtp.port };
          const transports = { letterlock: nexthop('smtp', ll.host, ll.port), mailman: nexthop('lmtp', o.mailmanLmtp.host, o.mailmanLmtp.port) };
          const lists = [...(await allLists(sql)).filter((l) => l.mailmanListId).map((l) => l.address), ...(o.list ?? [])];
          if (lists.length === 0) note(g, 'No list is bound to Mailman (letterlock mailman import LIST); the map is empty.');
          if (o.check) {
            const routes = lists.flatMap((list) => routesFor(list, transports).map((r) => ({ list: list.toLowerCase(), ...r })));
            const checked = checkRoutes(routes, postfixLookup(o.postfixConfig)).map((c, i) => ({ ...c, list: routes[i]!.list }));
            emit(g, checked, () => table(checked.map((c) => [c.address, c.transport, c.got ?? '(no table names it)', c.ok ? 'ok' : 'WRONG']), ['ADDRESS', 'WANT', 'POSTFIX SAYS', '']));
            const wrong = checked.filter((c) => !c.ok);
            if (wrong.length) throw new CliError(`${wrong.length} of ${checked.length} addresses are not routed as they should be (first: ${wrong[0]!.address} -> ${wrong[0]!.got ?? 'nothing'}); write the map with letterlock mailman routes, run postmap, list it first in transport_maps, postfix reload`, EXIT.REFUSED);
            return;
          }
          emit(g, lists.flatMap((list) => routesFor(list, transports).map((r) => ({ list: list.toLowerCase(), ...r }))),
            () => transportMap(lists, transports, { header: `Written by \`letterlock mailman routes\` on ${new Date().toISOString()}.` }));
        } catch (e) {
          throw cliErrorOf(e);
        }
      }));

  mm.command('status [list]').description('each bound list: last sync, members with and without keys, drift from Mailman\'s settings')
    .addHelpText('after', `
Exit 3 when the Core cannot be reached (the stored counts are still shown).
--json prints [{"list", "mailmanListId", "syncedAt", "attemptedAt", "lastError", "members", "withKey",
"withoutKey", "deliveryDisabled", "owners", "moderators", "nonmembers", "invited", "outbox",
"drift": [{"kind": "unsafe"|"stale"|"differs", "setting", "mailman", "letterlock", "note"}] or null, "reachError"}].`)
    .action(async (list: string | undefined, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql, config, dataDir }) => {
      const g = globals(cmd);
      const rest = mailmanClient(config, dataDir);
      let rows: ListStatus[];
      try {
        rows = await mailmanStatus(sql, rest, list);
      } catch (e) {
        throw cliErrorOf(e);
      }
      if (list && rows.length === 0) throw new CliError(`${list} is not a list bound to Mailman here (see: letterlock mailman status)`);
      if (rows.length === 0) note(g, 'No list is bound to Mailman (letterlock mailman import LIST).');
      emit(g, rows.map(({ unreachable: _u, ...r }) => ({ ...r, syncedAt: iso(r.syncedAt), attemptedAt: iso(r.attemptedAt) })), () => humanStatus(rows));
      const down = rows.find((r) => r.unreachable);
      if (down) throw new CliError(`Mailman could not be reached (${down.reachError}): drift unknown`, EXIT.UNREACHABLE, down.reachError ?? undefined);
    }));

  mm.command('import <list>').description('bind an existing Mailman list and invite its members to register a key')
    .option('--fix', 'turn off the Mailman settings that would keep posts (archivers, archive_policy, digests, news gateway) instead of refusing')
    .option('--max-bytes <n>', 'largest post the new list accepts, in bytes (default: smtp.maxMessageBytes)', maxBytesArg)
    .addHelpText('after', `
LIST is the Mailman list id (news.lists.example.org) or its posting address. The
Letterlock list gets the same address. Run it again after an interruption: members
already invited are not invited twice. Invitations wait in the delivery queue until
the server (letterlock serve) sends them.
--json prints {"list", "mailmanListId", "created", "fixed": [{"setting", "current", "wanted", "why"}],
"members", "withKey", "invited", "invitedBefore", "subscribedInMailman"}.
An existing standalone Letterlock list of that address is bound too: its key holders are
subscribed in Mailman (pre-verified and confirmed), so none of them stops getting posts.`)
    .action(async (target: string, o: { fix?: boolean; maxBytes?: number }, cmd: Command) => withStore(cmd, async ({ sql, config, dataDir, secret }) => {
      const g = globals(cmd);
      const rest = clientOf(config, dataDir);
      const queue = new QueueStore(sql);
      const log = createEventLog({ file: `${dataDir}/logs/cli.log`, stdout: false });
      let bar: ReturnType<typeof startProgress> | null = null;
      let shown = 0;
      try {
        const r = await importMailmanList({
          sql, secret, rest, queue, log, target, fix: o.fix ?? false,
          publicUrl: config.publicUrl ?? `http://${config.http.host}:${config.http.port}`,
          maxBytes: o.maxBytes ?? config.smtp.maxMessageBytes,
          ...(config.mailman ? { settings: config.mailman } : {}),
          onProgress: (done, total) => {
            // A bar only for rosters worth one; small ones print the summary alone.
            if (!bar && total >= 200 && !g.json) bar = startProgress('inviting', total);
            bar?.tick(done - shown);
            shown = done;
          },
        });
        (bar as ReturnType<typeof startProgress> | null)?.stop();
        bar = null;
        await notifyQueued(sql); // invitations: the running nodes (PostgreSQL) send them now
        emit(g, r, () => [
          `${r.list} ${r.created ? 'created and bound' : 'bound'} to Mailman list ${r.mailmanListId}`,
          ...r.fixed.map((f) => `  fixed in Mailman: ${f.setting} ${f.current} -> ${f.wanted}`),
          ...(r.subscribedInMailman ? [`  ${r.subscribedInMailman} key holders of the Letterlock list subscribed in Mailman`] : []),
          `  ${r.members} members: ${r.withKey} with a registered key, ${r.members - r.withKey} without`,
          `  ${r.invited} invitations queued${r.invitedBefore ? ` (${r.invitedBefore} invited before)` : ''}; letterlock serve sends them`,
        ].join('\n'));
      } catch (e) {
        (bar as ReturnType<typeof startProgress> | null)?.stop();
        throw cliErrorOf(e);
      }
    }));
}
