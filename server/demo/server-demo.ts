// `npm start`: the list server on its embedded default, ready to try. On first
// run it creates a data folder (.letterlock-demo/), a server secret (mode 0600),
// a demo list with three demo members (their keys are kept in people/ so you can
// post as them and read their copies), then serves SMTP and HTTP on loopback and
// delivers into a local Maildir folder, since no relay is configured.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generateKey } from '../../shared/index.ts';
import { openData, StartError, startServer, type RunningServer } from '../app.ts';
import { init } from '../cli/init.ts';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createList } from '../lists/lists.ts';
import { registerMember } from '../lists/members.ts';
import { createEventLog } from '../log/log.ts';
import { getList } from '../store/lists.ts';

export const DEMO_DIR = resolve(process.env.LETTERLOCK_DEMO_DIR ?? '.letterlock-demo');
export const DEMO_LIST = 'demo@lists.localhost';
export const DEMO_PEOPLE = ['alice', 'bob', 'carol'] as const;
const rel = (p: string) => relative(process.cwd(), p) || '.';

const fresh = !existsSync(join(DEMO_DIR, 'letterlock.db'));
const { secret } = init({ dataDir: DEMO_DIR, config: { smtp: { port: 2525 }, http: { port: 8025 } } });
const people = join(DEMO_DIR, 'people');
{
  const db = openData(DEMO_DIR, secret);
  if (!getList(db, DEMO_LIST)) {
    console.log(`Creating the demo list ${DEMO_LIST} (list key and archive key, protected by the server secret)...`);
    const { config } = loadConfig(DEMO_DIR);
    const list = await createList(db, secret, DEMO_LIST, { owner: 'owner@localhost', maxBytes: config.smtp.maxMessageBytes });
    mkdirSync(people, { recursive: true, mode: 0o700 });
    for (const p of DEMO_PEOPLE) {
      const address = `${p}@localhost`;
      const k = await generateKey({ kind: 'subscriber', address, name: p[0]!.toUpperCase() + p.slice(1), passphrase: `${p}-pass` });
      writeFileSync(join(people, `${p}.pub.asc`), k.publicKeyArmored);
      writeFileSync(join(people, `${p}.sec.asc`), k.privateKeyArmored, { mode: 0o600 }); // protected: passphrase <name>-pass
      await registerMember(db, list.id, address, k.publicKeyArmored);
      console.log(`  member ${address.padEnd(18)} ${k.facts.fingerprint}`);
    }
  }
  db.close();
}

const { config } = loadConfig(DEMO_DIR);
// Signals first; SMTP opens last inside startServer; a failed start is one line and exit 1.
let server: RunningServer | null = null;
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  if (!server) process.exit(0);
  setTimeout(() => process.exit(1), 15_000).unref();
  server.close().then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
try {
  server = await startServer(DEMO_DIR, config, secret, {
    log: createEventLog({ file: join(DEMO_DIR, 'logs', 'server.log'), level: config.logLevel, stdout: false }),
  });
} catch (e) {
  console.error(`letterlock demo: ${e instanceof StartError || e instanceof ConfigError ? e.message : `could not start (${e instanceof Error ? e.name : 'error'})`}`);
  process.exit(1);
}
if (stopping) {
  await server.close();
  process.exit(0);
}
const maildir = config.maildir ?? join(DEMO_DIR, 'maildir');
const d = rel(DEMO_DIR);
console.log(`
Letterlock list server is running${fresh ? ' (new demo data folder)' : ''}.
  data folder  ${d}/  (SQLite: letterlock.db, secret: secret (0600), logs: logs/server.log)
  SMTP ingest  ${config.smtp.host}:${server.smtpPort}   accepts mail for ${DEMO_LIST}
  HTTP API     http://${config.http.host}:${server.httpPort}/v1/lists/${DEMO_LIST}   (list info and key; archive; registry)
  operator API bearer token in ${DEMO_DIR}/admin-token (mode 0600), e.g. curl -H "Authorization: Bearer $(cat ${DEMO_DIR}/admin-token)" http://${config.http.host}:${server.httpPort}/v1/admin/lists
  delivery     ${server.relay}  (no relay configured: copies land in ${rel(maildir)}/<address>/new/)

Next steps (in another terminal):
  1. Post a signed, encrypted demo post as Alice:
       npm run demo:post
     (or as Bob with a text of your own:  npm run demo:post -- --from bob --text "hello")
  2. Watch the encrypted copies arrive, one per member:
       ls ${rel(maildir)}/*/new/
  3. Read Bob's copy with GnuPG itself (Alice's signature is checked end to end):
       G=$(mktemp -d); gpg --homedir $G --batch --pinentry-mode loopback --passphrase bob-pass --import ${d}/people/bob.sec.asc ${d}/people/alice.pub.asc
       gpg --homedir $G --batch --pinentry-mode loopback --passphrase bob-pass --decrypt "$(ls ${rel(maildir)}/bob@localhost/new/* | tail -1)"
  4. Manage the list (same data folder):
       npm run letterlock -- --data ${d} list show ${DEMO_LIST}
       npm run letterlock -- --data ${d} member list ${DEMO_LIST}
  5. With a real MTA: route mail for lists.localhost to smtp:[127.0.0.1]:${server.smtpPort}
     (Postfix: transport_maps = inline:{ lists.localhost=smtp:[127.0.0.1]:${server.smtpPort} }),
     and set "relay": "smtp://127.0.0.1:25" in ${d}/letterlock.json so copies go out through it.
  6. With the browser extension (npm run build:extension, then load dist/chrome or dist/firefox):
     in its options add the list ${DEMO_LIST} at server http://${config.http.host}:${server.httpPort}, check the
     list key fingerprint against \`list show\`, subscribe, and read the archive in the extension's archive viewer.

Stop with Ctrl-C.`);

