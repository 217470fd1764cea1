// The `letterlock` command line: npm run letterlock -- <command> [options].
// Every argument is validated before anything is touched; errors are one line.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { isLetterlockError } from '../../shared/index.ts';
import { join } from 'node:path';
import { listKeyCache, openData, StartError, startServer, type RunningServer } from '../app.ts';
import { ConfigError, dataDirFrom, loadConfig } from '../config/config.ts';
import { defaultSecretFile, loadSecret } from '../config/secret.ts';
import { createList, normalizeAddress, UsageError } from '../lists/lists.ts';
import { registerMember } from '../lists/members.ts';
import { codeOf, createEventLog } from '../log/log.ts';
import { OpenPool } from '../pipeline/pool.ts';
import { Pipeline } from '../pipeline/run.ts';
import { Fanout } from '../pipeline/wrap.ts';
import { listHeld } from '../store/held.ts';
import { allLists, getList, MAX_REPLAY_WINDOW_DAYS, updatePolicy, type ListRecord } from '../store/lists.ts';
import { countMembers, iterateMembers, removeMember } from '../store/members.ts';
import { QueueStore } from '../store/queue.ts';
import { init } from './init.ts';

const USAGE = `usage: npm run letterlock -- <command> [--data DIR]

  init [--smtp-port N] [--http-port N] [--relay smtp://host:port] [--secret-file PATH]
  list create ADDRESS [--owner ADDR] [--policy members|moderated|announce] [--poster ADDR]...
                      [--no-signature] [--max-bytes N] [--replay-window-days N]
  list set ADDRESS    [--owner ADDR] [--policy ...] [--poster ADDR]... [--signature|--no-signature] [--max-bytes N]
                      [--replay-window-days N]   (signatures older than N days are refused; default 7)
                      [--reply-to list|author]   (Reply-To of copies; default list)
                      [--hide-subjects|--show-subjects]   (hide: copies show "..." even when the sender sent a subject in clear)
  list show ADDRESS   (fingerprint and armored public key)
  list ls
  member add LIST ADDRESS KEYFILE   (a public key; the key policy applies)
  member remove LIST ADDRESS
  member list LIST
  held list [LIST]
  held approve ID | held reject ID
  queue                             (delivery queue counts)
  serve                             (SMTP ingest + HTTP, delivery to the relay or the Maildir)

The data folder is --data, else $LETTERLOCK_DATA, else ./letterlock-data.
The server secret is $LETTERLOCK_SECRET, else the secret file (mode 0600).`;

const Policy = z.enum(['members', 'moderated', 'announce']);
const PositiveInt = z.coerce.number().int().min(1024).max(200 * 1024 * 1024);
const WindowDays = z.coerce.number().int().min(1).max(MAX_REPLAY_WINDOW_DAYS);
const PortArg = z.coerce.number().int().min(0).max(65535);

function secretFor(dataDir: string): string {
  const { config } = loadConfig(dataDir);
  return loadSecret(config.secretFile ?? defaultSecretFile(dataDir));
}

function needList(db: Parameters<typeof getList>[0], address: string | undefined): ListRecord {
  if (!address) throw new UsageError('a list address is needed');
  const l = getList(db, address);
  if (!l) throw new UsageError(`no list ${address} here (see: list ls)`);
  return l;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      data: { type: 'string' },
      'smtp-port': { type: 'string' },
      'http-port': { type: 'string' },
      relay: { type: 'string' },
      'secret-file': { type: 'string' },
      owner: { type: 'string' },
      policy: { type: 'string' },
      poster: { type: 'string', multiple: true },
      signature: { type: 'boolean' },
      'no-signature': { type: 'boolean' },
      'max-bytes': { type: 'string' },
      'replay-window-days': { type: 'string' },
      'reply-to': { type: 'string' },
      'hide-subjects': { type: 'boolean' },
      'show-subjects': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, ...rest] = positionals;
  if (values.help || !cmd) {
    console.log(USAGE);
    return cmd ? 0 : 1;
  }
  const dataDir = dataDirFrom(values.data);

  if (cmd === 'init') {
    const config: Record<string, unknown> = {};
    if (values['smtp-port'] || values['http-port']) {
      if (values['smtp-port']) config.smtp = { port: PortArg.parse(values['smtp-port']) };
      if (values['http-port']) config.http = { port: PortArg.parse(values['http-port']) };
    }
    if (values.relay) config.relay = values.relay;
    if (values['secret-file']) config.secretFile = values['secret-file'];
    const r = init({ dataDir, config });
    console.log(r.created ? `initialized ${dataDir}` : `${dataDir} was already initialized`);
    console.log(`server secret: ${r.secretSource}`);
    return 0;
  }

  if (cmd === 'serve') {
    const { config } = loadConfig(dataDir);
    const secret = secretFor(dataDir);
    const log = createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: config.logLevel });
    let server: RunningServer | null = null;
    let stopping = false;
    // Signals first: a SIGTERM during start stops the start, and after it a clean close.
    const stop = () => {
      if (stopping) return;
      stopping = true;
      if (!server) process.exit(0); // nothing accepted yet: SMTP opens last
      // A close that hangs (a relay that never answers) must not keep the process.
      setTimeout(() => process.exit(1), 15_000).unref();
      server.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // An error that escapes every isolation is a bug: log its code only (a message
    // could quote input), exit, and let the supervisor restart us (the queue and
    // any interrupted fan-out resume). Failures of one row or post never get here.
    const crash = (kind: 'UNCAUGHT_EXCEPTION' | 'UNHANDLED_REJECTION') => (e: unknown) => {
      const code = codeOf(e);
      log.error('server.error', { code: code === 'INTERNAL' ? kind : code });
      process.stderr.write(`letterlock: stopped after an internal error (${code === 'INTERNAL' ? kind : code})\n`);
      process.exit(70);
    };
    process.on('uncaughtException', crash('UNCAUGHT_EXCEPTION'));
    process.on('unhandledRejection', crash('UNHANDLED_REJECTION'));
    server = await startServer(dataDir, config, secret, { log });
    if (stopping) {
      await server.close();
      process.exit(0);
    }
    console.error(`letterlock: SMTP on ${config.smtp.host}:${server.smtpPort}, HTTP on ${config.http.host}:${server.httpPort}, delivering via ${server.relay}`);
    return -1; // keep running
  }

  const secret = secretFor(dataDir);
  const db = openData(dataDir, secret);
  try {
    if (cmd === 'list') {
      if (sub === 'ls') {
        for (const l of allLists(db)) console.log(`${l.address}  ${l.listFingerprint}  ${l.postPolicy}  ${countMembers(db, l.id)} members`);
        return 0;
      }
      if (sub === 'create' || sub === 'set') {
        const address = rest[0];
        if (!address) throw new UsageError(`list ${sub} needs an ADDRESS`);
        const policy = values.policy === undefined ? undefined : Policy.parse(values.policy);
        const maxBytes = values['max-bytes'] === undefined ? undefined : PositiveInt.parse(values['max-bytes']);
        const posters = values.poster?.map(normalizeAddress);
        const requireSignature = values['no-signature'] ? false : values.signature ? true : undefined;
        const replayWindowDays = values['replay-window-days'] === undefined ? undefined : WindowDays.parse(values['replay-window-days']);
        const replyTo = values['reply-to'] === undefined ? undefined : z.enum(['author', 'list']).parse(values['reply-to']);
        const hideSubjects = values['hide-subjects'] ? true : values['show-subjects'] ? false : undefined;
        const shown = { replyTo, hideSubjects };
        if (sub === 'create') {
          const { config } = loadConfig(dataDir);
          const l = await createList(db, secret, address, {
            owner: values.owner ?? null, postPolicy: policy, posters, requireSignature, maxBytes: maxBytes ?? config.smtp.maxMessageBytes,
          });
          updatePolicy(db, l.id, { replayWindowDays, ...shown });
          console.log(`created ${l.address}\nlist key    ${l.listFingerprint}\narchive key ${l.archiveFingerprint}`);
        } else {
          const l = needList(db, address);
          updatePolicy(db, l.id, { postPolicy: policy, posters, requireSignature, maxBytes, owner: values.owner === undefined ? undefined : normalizeAddress(values.owner), replayWindowDays, ...shown });
          const u = needList(db, address);
          console.log(`${u.address}: policy ${u.postPolicy}, signature ${u.requireSignature ? 'required' : 'optional'}, max ${u.maxBytes} bytes, replay window ${u.replayWindowDays} days, reply-to ${u.replyTo}, subjects ${u.hideSubjects ? 'hidden' : 'shown when sent in clear'}, posters [${u.posters.join(', ')}], owner ${u.owner ?? '-'}`);
        }
        return 0;
      }
      if (sub === 'show') {
        const l = needList(db, rest[0]);
        console.log(`list      ${l.address}\nfingerprint ${l.listFingerprint}\npolicy    ${l.postPolicy}${l.postPolicy === 'announce' ? ` (posters: ${l.posters.join(', ')})` : ''}\nsignature ${l.requireSignature ? 'required' : 'optional'}\nmax size  ${l.maxBytes} bytes\nreplay    ${l.replayWindowDays}-day window\nreply-to  ${l.replyTo}\nsubjects  ${l.hideSubjects ? 'hidden' : 'shown when sent in clear'}\nowner     ${l.owner ?? '-'}\nmembers   ${countMembers(db, l.id)}\n`);
        process.stdout.write(l.listPublic.endsWith('\n') ? l.listPublic : `${l.listPublic}\n`);
        return 0;
      }
    }
    if (cmd === 'member') {
      const l = needList(db, rest[0]);
      if (sub === 'add') {
        const [, address, file] = rest;
        if (!address || !file) throw new UsageError('member add needs LIST ADDRESS KEYFILE');
        const armored = readFileSync(file, 'utf8');
        if (armored.length > 1024 * 1024) throw new UsageError('the key file is larger than 1 MB');
        const r = await registerMember(db, l.id, address, armored);
        console.log(r.revoked ? `recorded the revocation of ${r.record.fingerprint} for ${r.record.address}: it gets missed-message notices until a new key is added`
          : `${r.record.address} is a member of ${l.address} with key ${r.facts.fingerprint}${r.facts.expires ? ` (expires ${r.facts.expires.toISOString()})` : ''}`);
        return 0;
      }
      if (sub === 'remove') {
        const address = rest[1];
        if (!address) throw new UsageError('member remove needs LIST ADDRESS');
        if (!removeMember(db, l.id, address)) throw new UsageError(`${address} is not a member of ${l.address}`);
        console.log(`removed ${address.toLowerCase()} from ${l.address}`);
        return 0;
      }
      if (sub === 'list') {
        for (const page of iterateMembers(db, l.id)) {
          for (const m of page) {
            const exp = m.expiresAt ? new Date(m.expiresAt).toISOString() : 'never';
            console.log(`${m.address}  ${m.fingerprint}  expires ${exp}${m.keyState === 'revoked' ? '  REVOKED' : m.expiresAt && m.expiresAt < Date.now() ? '  EXPIRED' : ''}`);
          }
        }
        return 0;
      }
    }
    if (cmd === 'held') {
      const queue = new QueueStore(db);
      const log = createEventLog({ file: `${dataDir}/logs/cli.log`, stdout: false });
      const keysFor = listKeyCache(secret);
      const pool = new OpenPool({ threads: 1, budgetMs: loadConfig(dataDir).config.pipeline.budgetMs });
      const pipeline = new Pipeline({ db, queue, log, keysFor, pool, fanout: new Fanout({ db, queue, log, keysFor }) });
      if (sub === 'list') {
        const l = rest[0] ? needList(db, rest[0]) : null;
        for (const h of listHeld(db, l?.id)) {
          console.log(`${h.id}  list ${h.listId}  from ${h.sender ?? '-'}  ${h.outer.messageId ?? '-'}  ${h.size} bytes  ${new Date(h.receivedAt).toISOString()}  (${h.reason})`);
        }
        return 0;
      }
      if (sub === 'approve' || sub === 'reject') {
        const id = z.coerce.number().int().min(1).parse(rest[0]);
        const outcome = sub === 'approve' ? await pipeline.approve(id).finally(() => pool.close()) : pipeline.reject(id);
        // The fan-out runs here, to the end, before the command returns.
        const copies = outcome.result === 'accepted' ? (await outcome.fanout).copies : 0;
        console.log(`held post ${id}: ${outcome.result}${outcome.result === 'accepted' ? ` (${copies} copies queued; a running server delivers them)` : outcome.result === 'refused' ? ` (${outcome.code})` : ''}`);
        return 0;
      }
    }
    if (cmd === 'queue') {
      console.log(JSON.stringify(new QueueStore(db).stats()));
      return 0;
    }
    throw new UsageError(`unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  } finally {
    db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof StartError) console.error(`letterlock: ${e.message}`);
    else if (isLetterlockError(e)) console.error(`letterlock: ${e.code}: ${e.message}`);
    else if (e instanceof z.ZodError) console.error(`letterlock: invalid argument: ${e.issues.map((i) => i.message).join('; ')}`);
    else if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) console.error(`letterlock: ${e.message}\n\n${USAGE}`);
    else console.error(`letterlock: ${e instanceof Error ? `${e.name}: ${e.message}` : 'failed'}`);
    process.exitCode = 1;
    // Whatever a failed start may have left open, the process ends in bounded time.
    setTimeout(() => process.exit(1), 3000).unref();
  },
);
