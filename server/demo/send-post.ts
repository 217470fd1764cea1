// `npm run demo:post`: composes a post as one of the demo members (signed with
// their key, encrypted to the list key fetched from the server's HTTP port) and
// sends it over SMTP to the running demo server.
// Options: --from alice|bob|carol, --text "...", --subject "...".

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import nodemailer from 'nodemailer';
import { composePost, parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';

const DEMO_DIR = resolve(process.env.LETTERLOCK_DEMO_DIR ?? '.letterlock-demo');
const LIST = 'demo@lists.localhost';
const { values } = parseArgs({ options: { from: { type: 'string', default: 'alice' }, text: { type: 'string' }, subject: { type: 'string' } } });
const who = values.from!;
if (!['alice', 'bob', 'carol'].includes(who)) throw new Error('--from must be alice, bob or carol');
const config = JSON.parse(readFileSync(join(DEMO_DIR, 'letterlock.json'), 'utf8')) as { smtp: { host: string; port: number }; http: { host: string; port: number } };

const res = await fetch(`http://${config.http.host}:${config.http.port}/lists/${LIST}/key`).catch(() => null);
if (!res?.ok) {
  console.error('The demo server is not reachable: start it first with `npm start`.');
  process.exit(1);
}
const { key: listKey } = await readPublicKey(await res.text(), { expectedAddress: LIST });
const sender = await unlockPrivateKey(await parsePrivateKey(readFileSync(join(DEMO_DIR, 'people', `${who}.sec.asc`), 'utf8')), `${who}-pass`);
const address = `${who}@localhost`;
const post = await composePost({
  message: {
    subject: values.subject ?? `Hello from ${who}`,
    from: { address, name: who[0]!.toUpperCase() + who.slice(1) },
    to: [{ address: LIST }],
    text: values.text ?? `Hi all, this post is signed by ${who} and encrypted end to end.\n`,
  },
  senderKey: sender,
  listKey,
});
const transport = nodemailer.createTransport({ host: config.smtp.host, port: config.smtp.port, secure: false, ignoreTLS: true });
const info = await transport.sendMail({ envelope: { from: address, to: [LIST] }, raw: post.pgpMime });
console.log(`sent ${post.messageId} as ${address}: ${info.response}`);
console.log(`copies: ls ${join(DEMO_DIR, 'maildir')}/*/new/`);
