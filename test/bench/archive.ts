// Benchmark (not a test): one archive page of 50 messages (10 KB bodies), from
// log-in to all 50 decrypted and verified by the subscriber-side code, against
// the real list server over HTTP on loopback. Prints the median of repeated runs
// and the server's share (the HTTP round trips) beside the reader's (decryption).
//
//   npm run bench:archive

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assembleCopy, composePost, generateKey, parsePrivateKey, readMessage, readPublicKey, signStatement, unlockPrivateKey,
  type ArchiveMessages, type ThreadPage,
} from '../../shared/index.ts';
import { init } from '../../server/cli/init.ts';
import { openData, startServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config/config.ts';
import { createList } from '../../server/lists/lists.ts';
import { registerMember } from '../../server/lists/members.ts';
import { createEventLog } from '../../server/log/log.ts';
import nodemailer from 'nodemailer';

const SECRET = 'bench-secret-0123456789abcdef';
const LIST = 'bench@lists.test';
const MESSAGES = 50;
const RUNS = Number(process.env.BENCH_RUNS ?? 9);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const dataDir = mkdtempSync(join(tmpdir(), 'letterlock-bench-archive-'));
process.env.LETTERLOCK_SECRET = SECRET;
await init({ dataDir, config: { smtp: { port: 0 }, http: { port: 0 }, logLevel: 'error' } });

const aliceGen = await generateKey({ kind: 'subscriber', address: 'alice@example.org', passphrase: 'a' });
const alice = await unlockPrivateKey(await parsePrivateKey(aliceGen.privateKeyArmored), 'a');
const sql = await openData(dataDir, SECRET);
const list = await createList(sql, SECRET, LIST, { maxBytes: 25 * 1024 * 1024 });
await registerMember(sql, list.id, 'alice@example.org', aliceGen.publicKeyArmored);
const listPub = (await readPublicKey(list.listPublic)).key;
const alicePub = (await readPublicKey(aliceGen.publicKeyArmored)).key;
sql.close();

// 50 archived posts, sent through the server's own SMTP ingest and pipeline
// (copies go to the default local Maildir; only the archive matters here).
const { config } = loadConfig(dataDir);
const server = await startServer(dataDir, config, SECRET, { log: createEventLog({ level: 'error', stdout: false }) });
const base = `http://127.0.0.1:${server.httpPort}`;
const body = 'An archived post of ten kilobytes. '.repeat(300).slice(0, 10 * 1024);
const smtp = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, secure: false, ignoreTLS: true });
for (let i = 0; i < MESSAGES; i++) {
  const post = await composePost({ message: { subject: `Post ${i}`, from: { address: 'alice@example.org' }, to: [{ address: LIST }], text: body }, senderKey: alice, listKey: listPub });
  await smtp.sendMail({ envelope: { from: 'alice@example.org', to: [LIST] }, raw: post.pgpMime });
}
smtp.close();
for (;;) {
  const lists = (await (await fetch(`${base}/lists`)).json()) as Array<{ posts: number }>;
  if (lists[0]!.posts >= MESSAGES) break;
  await new Promise((r) => setTimeout(r, 50));
}

async function post<T>(path: string, body: unknown, token?: string): Promise<T> {
  const r = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}
async function get<T>(path: string, token: string): Promise<T> {
  const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return (await r.json()) as T;
}

async function onePage(): Promise<{ total: number; server: number; reader: number; login: number }> {
  const t0 = performance.now();
  let server = 0;
  let t = performance.now();
  const challenge = await post<{ challengeId: string; statement: string }>(`/v1/lists/${LIST}/auth/challenge`, { address: 'alice@example.org' });
  server += performance.now() - t;
  const signature = await signStatement(challenge.statement, alice); // the reader's work
  t = performance.now();
  const { token } = await post<{ token: string }>(`/v1/lists/${LIST}/auth/login`, { challengeId: challenge.challengeId, signature });
  const loginDone = performance.now();
  const page = await get<ThreadPage>(`/v1/lists/${LIST}/archive/threads?limit=${MESSAGES}`, token);
  const ids = page.threads.flatMap((th) => th.messages.map((m) => m.id)).slice(0, MESSAGES);
  const { messages } = await post<ArchiveMessages>(`/v1/lists/${LIST}/archive/messages`, { ids }, token);
  server += performance.now() - t;
  t = performance.now();
  const read = await Promise.all(messages.map((m) => readMessage(assembleCopy(Buffer.from(m.wrappedKey, 'base64'), Buffer.from(m.body, 'base64')), { privateKey: alice, senderKeys: [alicePub] })));
  const reader = performance.now() - t;
  if (read.length !== MESSAGES || !read.every((r) => r.verification.valid && r.message.text === body)) throw new Error('a message did not decrypt and verify');
  return { total: performance.now() - t0, server, reader, login: loginDone - t0 };
}

await onePage(); // warm-up (JIT, caches of unlocked keys)
const results = [];
for (let i = 0; i < RUNS; i++) results.push(await onePage());
await server.close();
rmSync(dataDir, { recursive: true, force: true });

const total = median(results.map((r) => r.total));
console.log(`Archive page: ${MESSAGES} messages of 10 KB, log-in to all decrypted and verified (median of ${RUNS} runs)`);
console.log(`  whole page:            ${total.toFixed(1)} ms   (target ≤ 150 ms: ${total <= 150 ? 'met' : 'NOT met'})`);
console.log(`  of which log-in:       ${median(results.map((r) => r.login)).toFixed(1)} ms (challenge, signature, session)`);
console.log(`  server's share (HTTP): ${median(results.map((r) => r.server)).toFixed(1)} ms (challenge, log-in, thread page, ${MESSAGES} re-wrapped keys + bodies)`);
console.log(`  reader's decryption:   ${median(results.map((r) => r.reader)).toFixed(1)} ms (${MESSAGES} × unwrap K, decrypt, verify, parse)`);
console.log(`  all runs (ms):         ${results.map((r) => r.total.toFixed(0)).join(', ')}`);
