// `npm run demo:post`: composes a post as one of the demo members (signed with
// their key, encrypted to the list key) and sends it over SMTP to the running
// demo server of the same data folder (LETTERLOCK_DEMO_DIR, as for `npm start`).
// The ports come from the run file that server wrote (so any override that
// started it applies), else from the folder's letterlock.json and the
// LETTERLOCK_SMTP_PORT / LETTERLOCK_HTTP_PORT overrides, as the server reads them.
// The list key the server hands out must be the one that server recorded for
// this folder, so a post never goes to another demo by mistake.
// Exit codes: 0 sent, 1 refused by the server, 2 usage, 3 no demo reachable.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';
import { composePost, isLetterlockError, parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { DEMO_LIST, DEMO_PEOPLE, demoDir, displayName, envPrefix, gpgSteps, passphraseOf, quote, readRunInfo, shown, type DemoPerson } from './settings.ts';

const USAGE = `usage: npm run demo:post [-- --from alice|bob|carol] [--subject TEXT] [--text TEXT]

Sends a signed, encrypted post to ${DEMO_LIST} on the running demo server
(start it first with npm start), as one of its demo members (default alice).

Environment (the same as for npm start):
  LETTERLOCK_DEMO_DIR    the demo's data folder (default ./.letterlock-demo)
  LETTERLOCK_SMTP_PORT, LETTERLOCK_HTTP_PORT
                         used only when the server's run file is missing; a running
                         demo records the ports it listens on in its data folder

Examples:
  npm run demo:post
  npm run demo:post -- --from bob --text "hello"
  LETTERLOCK_DEMO_DIR=/tmp/demo2 npm run demo:post`;

const MAX_TEXT = 1024 * 1024;

function fail(line: string, code: number): never {
  console.error(`demo:post: ${line}`);
  process.exit(code);
}

let values: { from: string; text?: string; subject?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { from: { type: 'string', default: 'alice' }, text: { type: 'string' }, subject: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  }) as { values: typeof values });
} catch (e) {
  fail(`${(e as Error).message.split('\n')[0]} (see npm run demo:post -- --help)`, 2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const who = values.from.toLowerCase();
if (!(DEMO_PEOPLE as readonly string[]).includes(who)) {
  fail(`${JSON.stringify(values.from.slice(0, 64))} is not a demo member; --from takes ${DEMO_PEOPLE.join(', ')}`, 2);
}
const person = who as DemoPerson;
if ((values.text?.length ?? 0) > MAX_TEXT || (values.subject?.length ?? 0) > 998) fail('--text is limited to 1 MB and --subject to 998 characters', 2);

const DEMO_DIR = demoDir();
const env = envPrefix(DEMO_DIR);
if (!existsSync(join(DEMO_DIR, 'letterlock.json'))) {
  fail(`no demo data folder at ${shown(DEMO_DIR)}: start the demo first with ${env}npm start (LETTERLOCK_DEMO_DIR picks the folder)`, 3);
}

// Where the demo of this folder listens: its run file, else the config and overrides.
const run = readRunInfo(DEMO_DIR);
let smtp: { host: string; port: number };
let http: { host: string; port: number };
if (run) {
  ({ smtp, http } = run);
} else {
  try {
    const { config } = loadConfig(DEMO_DIR);
    smtp = { host: config.smtp.host, port: config.smtp.port };
    http = { host: config.http.host, port: config.http.port };
  } catch (e) {
    fail(e instanceof ConfigError ? e.message : `cannot read ${shown(DEMO_DIR)}/letterlock.json`, 3);
  }
}
const notRunning = `the demo server of ${shown(DEMO_DIR)} is not running (nothing answers on http://${http.host}:${http.port}): start it with ${env}npm start`;

const res = await fetch(`http://${http.host}:${http.port}/lists/${DEMO_LIST}/key`, { signal: AbortSignal.timeout(15_000) }).catch(() => null);
if (!res?.ok) fail(notRunning, 3);
let listKey: Awaited<ReturnType<typeof readPublicKey>>['key'];
try {
  ({ key: listKey } = await readPublicKey((await res.text()).slice(0, 256 * 1024), { expectedAddress: DEMO_LIST }));
} catch (e) {
  fail(`http://${http.host}:${http.port} did not give a usable key for ${DEMO_LIST} (${isLetterlockError(e) ? e.code : 'unreadable'}): is it a Letterlock demo?`, 3);
}
const fingerprint = listKey.getFingerprint().toUpperCase();
if (run && fingerprint !== run.listFingerprint) {
  fail(`the server on http://${http.host}:${http.port} is another demo (its list key ${fingerprint} is not the one of ${shown(DEMO_DIR)}); nothing was sent. Start this folder's demo with ${env}npm start`, 3);
}
if (!run) console.error(`demo:post: no run file in ${shown(DEMO_DIR)} (a server older than this script?); posting to ${smtp.host}:${smtp.port} as its letterlock.json and overrides say`);

const keyFile = join(DEMO_DIR, 'people', `${person}.sec.asc`);
let sender: Awaited<ReturnType<typeof unlockPrivateKey>>;
try {
  sender = await unlockPrivateKey(await parsePrivateKey(readFileSync(keyFile, 'utf8')), passphraseOf(person));
} catch (e) {
  const code = (e as { code?: string } | null)?.code;
  fail(code === 'ENOENT' ? `${shown(keyFile)} is missing: this data folder was not made by npm start` : `cannot use ${shown(keyFile)} (${code ?? 'unreadable key'})`, 1);
}
const address = `${person}@localhost`;
const post = await composePost({
  message: {
    subject: values.subject ?? `Hello from ${displayName(person)}`,
    from: { address, name: displayName(person) },
    to: [{ address: DEMO_LIST }],
    text: values.text ?? `Hi all, this post is signed by ${displayName(person)} and encrypted end to end.\n`,
  },
  senderKey: sender,
  listKey,
});
const transport = nodemailer.createTransport({ host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true, connectionTimeout: 15_000, socketTimeout: 120_000 });
let response: string;
try {
  response = (await transport.sendMail({ envelope: { from: address, to: [DEMO_LIST] }, raw: post.pgpMime })).response;
} catch (e) {
  const err = e as { code?: string; response?: string; responseCode?: number };
  if (err.responseCode) fail(`the server refused the post: ${err.response ?? err.responseCode}`, 1);
  fail(`could not send to ${smtp.host}:${smtp.port} (${err.code ?? 'error'}): ${notRunning}`, 3);
} finally {
  transport.close();
}

const config = (() => { try { return loadConfig(DEMO_DIR).config; } catch { return null; } })();
const maildir = config?.maildir ?? join(DEMO_DIR, 'maildir');
const reader: DemoPerson = person === 'bob' ? 'alice' : 'bob';
const [gpgImport, gpgDecrypt] = gpgSteps(DEMO_DIR, maildir, reader, person);
console.log(`sent ${post.messageId} as ${address} to ${smtp.host}:${smtp.port}: ${response}
copies (one per member, in a moment):
  ls ${quote(shown(maildir))}/*/new/
read ${displayName(reader)}'s copy with GnuPG (${displayName(person)}'s signature is checked end to end):
  ${gpgImport}
  ${gpgDecrypt}`);
