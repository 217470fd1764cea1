// No single input stops the service (issue 10, item 1). A member's post whose
// outer threading headers carry a NUL, CR/LF, a 2,000-character id or 10,000
// references once made the header writer throw inside the delivery loop: the
// process exited 70 and every restart died the same way. Here each such post goes
// in over real SMTP to `letterlock serve` (a child process, so a crash is seen as
// an exit), the server must keep running, deliver them and later posts with
// writable headers, survive a corrupt queue row, and restart over the same data.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openData } from '../../../server/app.ts';
import { getList } from '../../../server/store/lists.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, spawnServer, stopChild, tempDir, type Child, type Person } from './harness.ts';
import type { PublicKey } from 'openpgp';

const LIST = 'robust@lists.test';
let sink: Sink;
let dataDir = '';
let child: Child | null = null;
let alice: Person, bob: Person;
let listKey: PublicKey;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('robust');
  await initData(dataDir, sink.port);
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, {}, [alice, bob]);
  listKey = await listPublicKey(dataDir, LIST);
  child = await spawnServer(dataDir);
});

afterAll(async () => {
  if (child) await stopChild(child, 'SIGKILL');
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A real post with its outer threading headers replaced by `headers`. */
async function hostilePost(text: string, headers: string[]): Promise<string> {
  const mail = await compose(alice, LIST, listKey, text);
  const cut = mail.indexOf('\r\n\r\n');
  const head = mail.slice(0, cut).replace(/\r\n[ \t]+/g, ' ').split('\r\n')
    .filter((l) => !/^(message-id|in-reply-to|references):/i.test(l));
  return `${[...head, ...headers].join('\r\n')}${mail.slice(cut)}`;
}

function alive(): boolean {
  return child !== null && child.proc.exitCode === null && child.proc.signalCode === null;
}

const copiesTo = (rcpt: string) => sink.to(rcpt).filter((m) => m.from.startsWith('robust+bounces-'));

/** Every header line of a copy is printable ASCII and at most 998 octets. */
function headersWritable(raw: Buffer): void {
  const head = raw.toString('latin1').split('\r\n\r\n')[0]!;
  for (const line of head.split('\r\n')) {
    expect(line.length).toBeLessThanOrEqual(998);
    expect(line).toMatch(/^[\x20-\x7e\t]*$/);
  }
}

const longId = `<${'x'.repeat(2000)}@evil.test>`;
const manyRefs = Array.from({ length: 10_000 }, (_, i) => `<r${i}@evil.test>`).join(' ');
const CASES: Array<[string, string[]]> = [
  ['a NUL in an encoded Message-ID', ['Message-ID: =?utf-8?q?=3Cpoison=00pill=40evil.test=3E?=']],
  ['a NUL in In-Reply-To and References', ['Message-ID: <ok1@evil.test>', 'In-Reply-To: =?utf-8?q?=3Cnul=00x=40evil.test=3E?=', 'References: <a@evil.test> =?utf-8?q?=3Cnul=00y=40evil.test=3E?=']],
  ['CR/LF injection in an encoded Message-ID', ['Message-ID: =?utf-8?q?=3Cinj=0D=0ABcc:=20victim=40evil.test=3E?=']],
  ['control and non-ASCII bytes in ids', ['Message-ID: =?utf-8?q?=3Cesc=1B=7Fx=40evil.test=3E?=', 'In-Reply-To: =?utf-8?q?=3C=C3=BCml=40evil.test=3E?=']],
  ['a 2,000-character Message-ID', [`Message-ID: ${longId}`, `In-Reply-To: ${longId}`]],
  ['10,000 references', ['Message-ID: <many@evil.test>', `References: ${manyRefs}`]],
];

it('posts with hostile threading headers are delivered with sanitised headers; the server keeps running', { timeout: 240_000 }, async () => {
  for (const [i, [what, headers]] of CASES.entries()) {
    const before = copiesTo(bob.address).length;
    const reply = await send(child!.smtpPort, alice.address, LIST, await hostilePost(`hostile ${i}`, headers));
    expect(reply, what).toMatch(/accepted/);
    await sink.waitFor(() => copiesTo(bob.address).length > before || !alive(), 60_000, `the copy of: ${what}`);
    expect(alive(), `server alive after: ${what}\n${child!.output().slice(-2000)}`).toBe(true);
    const copy = copiesTo(bob.address).at(-1)!;
    headersWritable(copy.raw);
    const refs = /\r\nReferences: ([^\r]*(?:\r\n [^\r]*)*)/.exec(copy.raw.toString('latin1'));
    if (refs) expect(refs[1]!.trim().split(/\s+/).length).toBeLessThanOrEqual(20);
  }
  // A clean post afterwards keeps its Message-ID (the signed one, which a verified post goes by).
  const before = copiesTo(bob.address).length;
  const { composePost } = await import('../../../shared/index.ts');
  const clean = (await composePost({ message: { subject: 'clean', from: { address: alice.address }, to: [{ address: LIST }], text: 'clean after', messageId: '<clean-1@example.org>' }, senderKey: alice.privateKey, listKey })).pgpMime;
  expect(await send(child!.smtpPort, alice.address, LIST, clean)).toMatch(/accepted/);
  await sink.waitFor(() => copiesTo(bob.address).length > before, 60_000, 'the clean copy');
  expect(copiesTo(bob.address).at(-1)!.raw.toString('latin1')).toContain('Message-ID: <clean-1@example.org>');
});

it('a queue row that cannot be rendered fails alone, with a content-free reason; delivery goes on', { timeout: 120_000 }, async () => {
  // A corrupt post row (its references are not JSON) and a copy row pointing at it,
  // written beside the running server, as a bug or a damaged disk might leave them.
  const sql = await openData(dataDir, SECRET);
  let rowId: number;
  try {
    const list = (await getList(sql, LIST))!;
    const zero = Buffer.from([0]);
    const postId = Number((await sql.get<{ id: number }>(`INSERT INTO posts (list_id, message_id, in_reply_to, refs, date, size, body, archive_pkesk, list_pkesk, wrap_done, created_at)
      VALUES (?, '<corrupt@x>', NULL, '{not json', NULL, 1, ?, ?, NULL, 1, ?) RETURNING id`, [list.id, zero, zero, Date.now()]))!.id);
    rowId = Number((await sql.get<{ id: number }>(`INSERT INTO deliveries (list_id, post_id, kind, rcpt, pkesk, created_at) VALUES (?, ?, 'copy', ?, ?, ?) RETURNING id`, [list.id, postId, bob.address, zero, Date.now()]))!.id);
  } finally {
    await sql.close();
  }
  const before = copiesTo(bob.address).length;
  expect(await send(child!.smtpPort, alice.address, LIST, await compose(alice, LIST, listKey, 'after the corrupt row'))).toMatch(/accepted/);
  await sink.waitFor(() => copiesTo(bob.address).length > before, 60_000, 'the post after the corrupt row');
  const state = async () => {
    const d = await openData(dataDir, SECRET);
    try {
      return (await d.get('SELECT state, last_error FROM deliveries WHERE id = ?', [rowId])) as { state: string; last_error: string | null };
    } finally {
      await d.close();
    }
  };
  const end = Date.now() + 30_000;
  let row = await state();
  while (row.state !== 'failed' && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    row = await state();
  }
  expect(row.state).toBe('failed');
  expect(row.last_error).toMatch(/^RENDER_FAILED: /);
  expect(alive()).toBe(true);
});

it('a restart over the same data folder does not crash, and delivery goes on', { timeout: 120_000 }, async () => {
  // One more poison post left queued for the restart: the relay refuses for now.
  sink.refuse = () => 451;
  expect(await send(child!.smtpPort, alice.address, LIST, await hostilePost('queued poison', ['Message-ID: =?utf-8?q?=3Cpoison2=00pill=40evil.test=3E?=']))).toMatch(/accepted/);
  await stopChild(child!);
  expect(child!.proc.exitCode).toBe(0);
  sink.refuse = () => undefined;
  const before = copiesTo(bob.address).length;
  child = await spawnServer(dataDir);
  await sink.waitFor(() => copiesTo(bob.address).length > before || !alive(), 60_000, 'the queued poison copy after restart');
  expect(alive(), child.output().slice(-2000)).toBe(true);
  headersWritable(copiesTo(bob.address).at(-1)!.raw);
  const n = copiesTo(alice.address).length;
  expect(await send(child.smtpPort, alice.address, LIST, await compose(alice, LIST, listKey, 'after restart'))).toMatch(/accepted/);
  await sink.waitFor(() => copiesTo(alice.address).length > n, 60_000, 'a post after restart');
  expect(alive()).toBe(true);
});
