// `letterlock list ...`: create, change, show and list the lists.

import type { Command } from 'commander';
import { createList, normalizeAddress } from '../../lists/lists.ts';
import { allLists, updatePolicy, type ListRecord, type PostPolicy } from '../../store/lists.ts';
import { countMembers } from '../../store/members.ts';
import type { Sql } from '../../store/db.ts';
import { globals, needList, withStore } from '../context.ts';
import { CliError, emit, EXIT, note, plural, size, table } from '../output.ts';
import type { Config } from '../../config/config.ts';
import type { CreateListOptions } from '../../lists/lists.ts';
import { BindError, createBoundList, resolveMailmanList } from '../../mailman/bind.ts';
import { ensureSafe, UnsafeMailmanList } from '../../mailman/safety.ts';
import { mailmanClient } from '../../mailman/endpoint.ts';
import { MailmanError, isUnreachable } from '../../mailman/rest.ts';
import { collectAddress, maxBytesArg, oneOf, windowDaysArg } from './args.ts';
import { joinUrl } from '../../http/join-page.ts';
import { applyNotify, NOTIFY_HELP, notifyJson, notifyLine, notifyOptions, type NotifyOpts } from './notify.ts';

export const POLICY_HELP = `Posting policies (--policy):
  members    any member may post; posts from others are refused (the default)
  moderated  members' posts are held until a moderator approves them
             (letterlock held list / held approve ID / held reject ID)
  announce   only the --poster addresses may post; members only receive`;

interface ListOpts {
  owner?: string; policy?: PostPolicy; poster?: string[]; signature?: boolean; maxBytes?: number;
  replayWindowDays?: number; replyTo?: 'list' | 'author'; hideSubjects?: boolean; showSubjects?: boolean; mailman?: string; fix?: boolean;
}

/** The JSON shape of one list (list show/set/create); `publicKey` only from show. */
export async function listJson(sql: Sql, l: ListRecord) {
  return {
    address: l.address, listFingerprint: l.listFingerprint, archiveFingerprint: l.archiveFingerprint, policy: l.postPolicy,
    posters: l.posters, requireSignature: l.requireSignature, maxBytes: l.maxBytes, replayWindowDays: l.replayWindowDays,
    replyTo: l.replyTo, hideSubjects: l.hideSubjects, owner: l.owner, members: await countMembers(sql, l.id),
    // Only for a list bound to Mailman (issue 11): its Mailman list id.
    ...(l.mailmanListId ? { mailman: l.mailmanListId } : {}),
  };
}

async function describe(sql: Sql, l: ListRecord): Promise<string> {
  return table([
    ['list', l.address],
    ['fingerprint', l.listFingerprint],
    ['archive key', l.archiveFingerprint],
    ['policy', `${l.postPolicy}${l.postPolicy === 'announce' ? ` (posters: ${l.posters.length ? l.posters.join(', ') : 'none yet'})` : ''}`],
    ['signature', l.requireSignature ? 'required' : 'optional'],
    ['max size', `${l.maxBytes} bytes (${size(l.maxBytes)})`],
    ['replay', `${l.replayWindowDays}-day window`],
    ['reply-to', l.replyTo],
    ['subjects', l.hideSubjects ? 'hidden' : 'shown when sent in clear'],
    ['owner', l.owner ?? '-'],
    ['members', String(await countMembers(sql, l.id))],
  ]);
}

function policyOptions(c: Command, setting: boolean): Command {
  c.option('--owner <addr>', 'the list owner (gets failure reports)')
    .option('--policy <policy>', 'members, moderated or announce (see below)', oneOf(['members', 'moderated', 'announce'] as const))
    .option('--poster <addr>', 'who may post to an announce list (repeat for several)', collectAddress);
  // For `set`, --signature comes first so that commander leaves the value
  // undefined when neither is given (a lone --no-X defaults X to true, which
  // would turn the signature back on at every `list set`).
  if (setting) c.option('--signature', 'require a signature again');
  c.option('--no-signature', 'accept encrypted posts without a signature');
  return c.option('--max-bytes <n>', 'largest post accepted, in bytes', maxBytesArg)
    .option('--replay-window-days <n>', 'signatures older than N days are refused (default 7)', windowDaysArg)
    .option('--reply-to <who>', 'Reply-To of copies: list or author (default list)', oneOf(['list', 'author'] as const))
    .option('--hide-subjects', 'copies show "..." even when the sender sent a subject in clear')
    .option('--show-subjects', 'copies show a subject the sender sent in clear');
}

function changes(o: ListOpts) {
  return {
    postPolicy: o.policy, posters: o.poster, requireSignature: o.signature, maxBytes: o.maxBytes,
    replayWindowDays: o.replayWindowDays, replyTo: o.replyTo,
    hideSubjects: o.hideSubjects ? true : o.showSubjects ? false : undefined,
  };
}

export function register(program: Command): void {
  const list = program.command('list').description('create, change and show lists')
    .addHelpText('after', `\n${POLICY_HELP}\n\nExamples:
  letterlock list create news@lists.example.org --owner ann@example.org --policy moderated
  letterlock list set news@lists.example.org --policy announce --poster ann@example.org
  letterlock list show news@lists.example.org
  letterlock list ls --json`);

  policyOptions(list.command('create <address>').description('create a list with its list key and archive key'), false)
    .option('--mailman <list>', 'bind to this Mailman 3 list (list id news.example.org or address news@example.org): its roster and moderation settings apply; needs "mailman" in letterlock.json')
    .option('--fix', 'with --mailman: turn off the Mailman settings that would keep posts (archivers, archive_policy, digests, news gateway) instead of refusing')
    .addHelpText('after', `\n${POLICY_HELP}\n\n--json prints {"address", "listFingerprint", "archiveFingerprint", "policy", ...} (as list show).

Example:
  letterlock list create news@lists.example.org --owner ann@example.org --policy members`)
    .action(async (address: string, o: ListOpts, cmd: Command) => withStore(cmd, async ({ sql, secret, config, dataDir }) => {
      const c = changes(o);
      const options = {
        owner: o.owner === undefined ? null : normalizeAddress(o.owner), postPolicy: c.postPolicy, posters: c.posters,
        requireSignature: c.requireSignature, maxBytes: c.maxBytes ?? config.smtp.maxMessageBytes,
      };
      const l = o.mailman ? await createBoundForCli(sql, secret, config, dataDir, address, o.mailman, options, o.fix ?? false) : await createList(sql, secret, address, options);
      await updatePolicy(sql, l.id, { replayWindowDays: c.replayWindowDays, replyTo: c.replyTo, hideSubjects: c.hideSubjects });
      const u = await needList(sql, l.address);
      emit(globals(cmd), await listJson(sql, u), () => `created ${u.address}\nlist key    ${u.listFingerprint}\narchive key ${u.archiveFingerprint}\npolicy      ${u.postPolicy}`);
    }));

  notifyOptions(policyOptions(list.command('set <address>').description("change a list's policy"), true))
    .addHelpText('after', `\n${POLICY_HELP}\n\n${NOTIFY_HELP}\n\n--json prints the list as list show does (without the key).

Example:
  letterlock list set news@lists.example.org --policy moderated --replay-window-days 3`)
    .action(async (address: string, o: ListOpts & NotifyOpts, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const l = await needList(sql, address);
      await updatePolicy(sql, l.id, { ...changes(o), owner: o.owner === undefined ? undefined : normalizeAddress(o.owner) });
      await applyNotify(sql, l.id, o);
      const u = await needList(sql, address);
      const json = { ...await listJson(sql, u), ...await notifyJson(sql, u.id) };
      const line = await notifyLine(sql, u.id);
      emit(globals(cmd), json, () => {
        const posters = u.postPolicy === 'announce' || u.posters.length ? `, posters ${u.posters.length ? u.posters.join(', ') : 'none'}` : '';
        return `${u.address}: policy ${u.postPolicy}, signature ${u.requireSignature ? 'required' : 'optional'}, max ${u.maxBytes} bytes, replay window ${u.replayWindowDays} days, reply-to ${u.replyTo}, subjects ${u.hideSubjects ? 'hidden' : 'shown when sent in clear'}${posters}, owner ${u.owner ?? '-'}\n${line}`;
      });
    }));

  list.command('show <address>').description('settings, fingerprint and the armored list key')
    .addHelpText('after', '\n--json prints the list as an object, with "publicKey" (armored).')
    .action(async (address: string, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql, config }) => {
      const l = await needList(sql, address);
      // The page people join from (server/http/join-page.ts), for the owner to publish.
      const join = joinUrl(config.publicUrl ?? `http://${config.http.host}:${config.http.port}`, l.address);
      const joinLine = `join page: ${join}${config.publicUrl ? '' : ' (set "publicUrl" in letterlock.json to the address people reach)'}`;
      const json = { ...await listJson(sql, l), ...await notifyJson(sql, l.id), joinUrl: join, publicKey: l.listPublic };
      const text = `${await describe(sql, l)}\n${await notifyLine(sql, l.id)}\n${joinLine}\n\n${l.listPublic.trimEnd()}`;
      emit(globals(cmd), json, () => text);
    }));

  list.command('ls').description('all lists, with fingerprint, policy and members')
    .addHelpText('after', '\n--json prints [{"address", "listFingerprint", "policy", "members", ...}] (as list show, without the key).')
    .action(async (_o: unknown, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const lists = await allLists(sql);
      const g = globals(cmd);
      if (lists.length === 0) note(g, 'No lists yet (create one: letterlock list create ADDRESS).');
      const json = [];
      const rows: string[][] = [];
      for (const l of lists) {
        json.push(await listJson(sql, l));
        rows.push([l.address, l.listFingerprint, l.postPolicy, plural(await countMembers(sql, l.id), 'member')]);
      }
      emit(g, json, () => lists.length ? table(
        rows,
        ['LIST', 'FINGERPRINT', 'POLICY', 'MEMBERS'],
      ) : '');
    }));
}

/** list create --mailman: the Mailman list is checked over REST before anything is created. */
async function createBoundForCli(sql: Sql, secret: string, config: Config, dataDir: string, address: string, target: string, options: CreateListOptions, fix: boolean): Promise<ListRecord> {
  const rest = mailmanClient(config, dataDir);
  if (!rest) throw new CliError('--mailman needs a "mailman" section in letterlock.json: {"url": "http://127.0.0.1:8001", "credentialsFile": "mailman.json"}', EXIT.USAGE);
  try {
    // Settings that would keep a stray post in Mailman: refused, or with --fix corrected (server/mailman/safety.ts).
    await ensureSafe(rest, (await resolveMailmanList(rest, address, target)).list_id, fix);
    return await createBoundList(sql, secret, rest, address, target, options);
  } catch (e) {
    if (e instanceof BindError) throw new CliError(e.message, EXIT.REFUSED);
    if (e instanceof UnsafeMailmanList) throw new CliError(e.message, EXIT.REFUSED, 'MAILMAN_UNSAFE_SETTINGS');
    if (e instanceof MailmanError) throw new CliError(e.message, isUnreachable(e) ? EXIT.UNREACHABLE : EXIT.REFUSED);
    throw e;
  }
}
