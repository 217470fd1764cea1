// `npm start`: the list server on its embedded default, ready to try. On first
// run it creates a data folder (.letterlock-demo/), a server secret (mode 0600),
// a demo list with three demo members (their keys are kept in people/ so you can
// post as them and read their copies), then serves SMTP and HTTP on loopback and
// delivers into a local Maildir folder, since no relay is configured.
// Every failure an operator can meet (a busy port, a bad override, a data folder
// made with another secret) is one line and a non-zero exit, never a stack.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKey, isLetterlockError } from '../../shared/index.ts';
import { openData, StartError, startServer, type RunningServer } from '../app.ts';
import { init } from '../cli/init.ts';
import { onStopSignals } from '../cli/stop-signals.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createList } from '../lists/lists.ts';
import { registerMember } from '../lists/members.ts';
import { createEventLog } from '../log/log.ts';
import { getList } from '../store/lists.ts';
import { startInbox, type Inbox } from './inbox.ts';
import { DEFAULT_PORTS, DEMO_LIST, DEMO_PEOPLE, demoDir, displayName, envPrefix, gpgSteps, passphraseOf, quote, removeRunInfo, shown, writeRunInfo } from './settings.ts';

const USAGE = `usage: npm start [-- --help]

Starts the Letterlock list server demo: a data folder with a demo list
${DEMO_LIST} and three members (alice, bob, carol), SMTP ingest and the HTTP API
on 127.0.0.1, copies delivered into a local Maildir. Stop it with Ctrl-C.

Environment (the same for npm run demo:post):
  LETTERLOCK_DEMO_DIR    the data folder (default ./.letterlock-demo)
  LETTERLOCK_SMTP_PORT   SMTP port (default ${DEFAULT_PORTS.smtp}, or smtp.port in the folder's letterlock.json)
  LETTERLOCK_HTTP_PORT   HTTP port (default ${DEFAULT_PORTS.http}, or http.port in letterlock.json)
  LETTERLOCK_INBOX_PORT  the demo inbox, a webmail stand-in for the extension (default ${DEFAULT_PORTS.inbox})

Example, a second demo beside the first:
  LETTERLOCK_DEMO_DIR=/tmp/demo2 LETTERLOCK_SMTP_PORT=2526 LETTERLOCK_HTTP_PORT=8026 npm start`;

function fail(line: string, code = 1): never {
  console.error(`letterlock demo: ${line}`);
  process.exit(code);
}

try {
  const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
} catch (e) {
  fail(`${(e as Error).message.split('\n')[0]} (see npm start -- --help)`, 2);
}

const DEMO_DIR = demoDir();

/** A busy or forbidden port: which one, and the variable that picks another. */
function startProblem(e: StartError): string {
  const m = /^(SMTP|HTTP) port ([^ ]+):(\d+) (is in use|is not allowed)/.exec(e.message);
  if (!m) return e.message;
  const [, what, host, port, why] = m;
  const next = Number(port) + 1 <= 65535 ? Number(port) + 1 : 1025;
  const env = `LETTERLOCK_${what}_PORT`;
  const reason = why === 'is in use' ? 'is in use (another demo or mail server?)' : 'needs privileges';
  return `${what} port ${host}:${port} ${reason}; pick another with ${env}, e.g. ${envPrefix(DEMO_DIR, { ...process.env, [env]: String(next) })}npm start`;
}

async function prepare(): Promise<{ fresh: boolean; secret: string }> {
  const fresh = !existsSync(join(DEMO_DIR, 'letterlock.db'));
  const { secret } = await init({ dataDir: DEMO_DIR, config: { smtp: { port: DEFAULT_PORTS.smtp }, http: { port: DEFAULT_PORTS.http } } });
  const people = join(DEMO_DIR, 'people');
  const sql = await openData(DEMO_DIR, secret);
  try {
    if (!await getList(sql, DEMO_LIST)) {
      console.log(`Creating the demo list ${DEMO_LIST} (list key and archive key, protected by the server secret)...`);
      const { config } = loadConfig(DEMO_DIR);
      const list = await createList(sql, secret, DEMO_LIST, { owner: 'owner@localhost', maxBytes: config.smtp.maxMessageBytes });
      mkdirSync(people, { recursive: true, mode: 0o700 });
      for (const p of DEMO_PEOPLE) {
        const address = `${p}@localhost`;
        const k = await generateKey({ kind: 'subscriber', address, name: displayName(p), passphrase: passphraseOf(p) });
        writeFileSync(join(people, `${p}.pub.asc`), k.publicKeyArmored);
        writeFileSync(join(people, `${p}.sec.asc`), k.privateKeyArmored, { mode: 0o600 }); // protected: passphrase <name>-pass
        await registerMember(sql, list.id, address, k.publicKeyArmored);
        console.log(`  member ${address.padEnd(18)} ${k.facts.fingerprint}`);
      }
    }
    return { fresh, secret };
  } finally {
    sql.close();
  }
}

let prepared: { fresh: boolean; secret: string };
let config: ReturnType<typeof loadConfig>['config'];
try {
  prepared = await prepare();
  config = loadConfig(DEMO_DIR).config;
} catch (e) {
  if (e instanceof ConfigError || e instanceof StartError || isLetterlockError(e)) fail(`${shown(DEMO_DIR)}: ${e.message}`);
  const code = (e as { code?: string } | null)?.code;
  fail(`could not prepare the data folder ${shown(DEMO_DIR)} (${code ?? (e instanceof Error ? e.name : 'error')})`);
}
const { fresh, secret } = prepared;

// Signals first; SMTP opens last inside startServer; a failed start is one line and exit 1.
let server: RunningServer | null = null;
let inbox: Inbox | null = null;
// As `letterlock serve`: a repeated SIGTERM while closing is ignored, a second Ctrl-C stops at once.
const stopping = onStopSignals(() => {
  removeRunInfo(DEMO_DIR);
  return server ? Promise.all([server.close(), inbox?.close()]) : undefined;
}, { name: 'letterlock demo' });
try {
  server = await startServer(DEMO_DIR, config, secret, {
    log: createEventLog({ file: join(DEMO_DIR, 'logs', 'server.log'), level: config.logLevel, stdout: false }),
  });
} catch (e) {
  fail(e instanceof StartError ? startProblem(e) : e instanceof ConfigError ? e.message : `could not start (${e instanceof Error ? e.name : 'error'})`);
}
if (stopping()) {
  await server.close();
  process.exit(0);
}
let fingerprintShown = '';
{
  const sql = await openData(DEMO_DIR, secret);
  const listFingerprint = (await getList(sql, DEMO_LIST))!.listFingerprint;
  sql.close();
  fingerprintShown = listFingerprint.replace(/(.{4})/g, '$1 ').trim();
  // demo:post reads this to reach this server, whatever ports the overrides chose.
  writeRunInfo(DEMO_DIR, { pid: process.pid, smtp: { host: config.smtp.host, port: server.smtpPort }, http: { host: config.http.host, port: server.httpPort }, listFingerprint });
}

const maildir = config.maildir ?? join(DEMO_DIR, 'maildir');
// The demo inbox: where a browser-extension user reads the confirmation and list mail
// (they land in the Maildir). Optional: a busy port is said in one line, the demo runs on.
let inboxLine: string;
{
  const wanted = process.env.LETTERLOCK_INBOX_PORT ? Number(process.env.LETTERLOCK_INBOX_PORT) : DEFAULT_PORTS.inbox;
  if (!Number.isInteger(wanted) || wanted < 1 || wanted > 65535) fail(`LETTERLOCK_INBOX_PORT must be a port number, not ${process.env.LETTERLOCK_INBOX_PORT}`, 2);
  try {
    inbox = await startInbox({ maildir, smtp: { host: config.smtp.host, port: server.smtpPort }, list: DEMO_LIST, port: wanted });
    inboxLine = `  demo inbox   ${inbox.url}  (a webmail stand-in: the mail in the Maildir, by address, and a compose box)`;
  } catch (e) {
    const code = (e as { code?: string } | null)?.code;
    inboxLine = `  demo inbox   not started: port ${wanted} ${code === 'EADDRINUSE' ? 'is in use' : `failed (${code ?? 'error'})`}; pick another with LETTERLOCK_INBOX_PORT`;
  }
}
const d = shown(DEMO_DIR);
const qd = quote(d); // for commands to paste; d itself in prose
const env = envPrefix(DEMO_DIR);
const admin = quote(join(d, 'admin-token'));
const api = `http://${config.http.host}:${server.httpPort}`;
const [gpgImport, gpgDecrypt] = gpgSteps(DEMO_DIR, maildir, 'bob', 'alice');
console.log(`
Letterlock list server is running${fresh ? ' (new demo data folder)' : ''}.
  data folder  ${d}/  (SQLite: letterlock.db, secret: secret (0600), logs: logs/server.log)
  SMTP ingest  ${config.smtp.host}:${server.smtpPort}   accepts mail for ${DEMO_LIST}
  HTTP API     ${api}/v1/lists/${DEMO_LIST}   (list info and key; archive; registry)
  operator API bearer token in ${admin} (mode 0600), e.g. curl -H "Authorization: Bearer $(cat ${admin})" ${api}/v1/admin/lists
  delivery     ${server.relay}  (no relay configured: copies land in ${shown(maildir)}/<address>/new/)
${inboxLine}

Next steps (in another terminal, in this folder):
  1. Post a signed, encrypted demo post as Alice:
       ${env}npm run demo:post
     (or as Bob with a text of your own:  ${env}npm run demo:post -- --from bob --text "hello")
  2. Watch the encrypted copies arrive, one per member:
       ls ${quote(shown(maildir))}/*/new/
  3. Read Bob's copy with GnuPG itself (Alice's signature is checked end to end;
     show-mail.ts decodes the MIME text gpg prints, as a mail client would):
       ${gpgImport}
       ${gpgDecrypt}
  4. Manage the list (same data folder):
       LETTERLOCK_DATA=${qd} npx letterlock list show ${DEMO_LIST}
       LETTERLOCK_DATA=${qd} npx letterlock member list ${DEMO_LIST}
  5. With a real MTA: route mail for lists.localhost to smtp:[127.0.0.1]:${server.smtpPort}
     (Postfix: transport_maps = inline:{ lists.localhost=smtp:[127.0.0.1]:${server.smtpPort} }),
     and set "relay": "smtp://127.0.0.1:25" in ${d}/letterlock.json so copies go out through it
     (docs/deploy.md has the whole setup).
  6. With the browser extension (npm run build:extension, then load dist/chrome or dist/firefox;
     the README's "Extension" section says how). Its first run opens by itself:
     - your key: any address with a dot in its domain, e.g. you@example.org (the demo delivers
       to the Maildir above, so it need not be real);
     - your webmail: ${inbox ? inbox.url : 'the demo inbox (not started, see above)'} (the demo inbox);
     - join the list ${DEMO_LIST} at server ${api}; the list key fingerprint must read
       ${fingerprintShown} (\`letterlock list show\` in step 4 prints it without spaces); subscribe ("In webmail");
     - open ${inbox ? `${inbox.url}?to=you@example.org` : 'the demo inbox'}, click "Decrypt" in the confirmation mail,
       then "Confirm subscription"; step 1's posts show up there too (reload), and "Write encrypted
       with Letterlock" under the compose box writes to the list; the popup's "Archive" reads the archive.

Stop with Ctrl-C.`);
