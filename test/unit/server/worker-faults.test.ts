// The delivery worker under storage faults: while the database refuses writes
// (SQLITE_FULL, as on a full disk) the worker must not crash nor lose outcomes:
// a failed claim pauses the lane, a failed outcome write is kept and retried, a
// deferred "sent" flush is retried; once writes work again every row ends 'sent'.
// And the owner's failure reports: sealed in the background without holding up
// the lanes, queued in the same transaction that marks their rows reported.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { readPublicKey } from '../../../shared/index.ts';
import { createList, unlockList } from '../../../server/lists/lists.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { silentLog, type EventFields, type EventLog } from '../../../server/log/log.ts';
import type { ListRecord } from '../../../server/store/lists.ts';
import { makeKey } from '../../support/keys.ts';
import { createTokens } from '../../../server/delivery/tokens.ts';
import { DeliveryWorker } from '../../../server/delivery/worker.ts';
import type { Relay, SendResult } from '../../../server/delivery/relay.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-worker-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'unit-test-secret-0123456789';
const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });

it('storage errors pause and retry delivery; nothing crashes and every row ends sent', async () => {
  const sql = await openTestSql(join(dir, 'w.db'));
  const queue = new QueueStore(sql);
  const list = await createList(sql, SECRET, 'w@lists.test', { maxBytes: 100_000 });
  const N = 6;
  for (let i = 0; i < N; i++) await queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: `m${i}@x.test`, mail: 'Subject: n\r\n\r\nnotice\r\n' });

  let diskFull = true;
  const faults = { claim: 0, retry: 0, sent: 0 };
  const claim = queue.claim.bind(queue);
  queue.claim = async (now, limit) => { if (diskFull && faults.claim++ === 0) throw full(); return claim(now, limit); };
  const retryLater = queue.retryLater.bind(queue);
  queue.retryLater = async (...a) => { if (diskFull) { faults.retry++; throw full(); } await retryLater(...a); };
  // The batched marking of sent rows (queue.ts flushSent) fails at its statement.
  const run = sql.run.bind(sql);
  sql.run = async (text, params) => {
    if (diskFull && text.startsWith("UPDATE deliveries SET state = 'sent'")) { faults.sent++; throw full(); }
    return run(text, params);
  };

  const seen = new Map<string, number>();
  const relay: Relay = {
    description: 'fake',
    close() {},
    async send(envelope): Promise<SendResult> {
      const n = (seen.get(envelope.to) ?? 0) + 1;
      seen.set(envelope.to, n);
      // The first attempt of every other row is a temporary failure: an outcome write (retryLater) is needed.
      return n === 1 && Number(envelope.to.slice(1, 2)) % 2 === 1 ? { ok: false, permanent: false, code: 'SMTP_451', reason: 'later' } : { ok: true };
    },
  };
  const worker = new DeliveryWorker({
    sql, queue, relay, tokens: createTokens(SECRET), log: silentLog, publicUrl: 'http://localhost',
    delivery: { concurrency: 2, batch: 4, retryBaseMs: 10, retryMaxMs: 50, giveUpAfterMs: 3_600_000, reportDelayMs: 0 },
  });
  worker.start();
  const states = async () => (await sql.all('SELECT state, count(*) AS n FROM deliveries GROUP BY state')) as Array<{ state: string; n: number }>;
  const until = async (test: () => boolean | Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (!(await test()) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return test();
  };
  const ok = await until(() => faults.claim > 0 && faults.retry > 0 && faults.sent > 0, 15_000);
  expect(ok, JSON.stringify({ faults, seen: [...seen], states: await states() })).toBe(true);
  expect((await states()).find((s) => s.state === 'sent')).toBeUndefined(); // nothing recorded while full
  diskFull = false;
  expect(await until(async () => (await states()).some((s) => s.state === 'sent' && s.n === N), 20_000)).toBe(true);
  await worker.stop();
  expect([...seen.keys()].sort()).toEqual(Array.from({ length: N }, (_, i) => `m${i}@x.test`));
  console.log(`worker faults: ${JSON.stringify(faults)}; sends per row ${JSON.stringify([...seen.values()])}`);
  await sql.close();
});

it('owner reports are sealed in the background, queued in one transaction with their rows marked, and never sent in clear', async () => {
  const sql = await openTestSql(join(dir, 'r.db'));
  const queue = new QueueStore(sql);
  const owner = await makeKey('owner@x.test');
  const bare = await createList(sql, SECRET, 'bare@lists.test', { maxBytes: 100_000, owner: 'keyless@x.test' });
  const list = await createList(sql, SECRET, 'r@lists.test', { maxBytes: 100_000, owner: owner.address });
  await registerMember(sql, list.id, owner.address, owner.publicArmored);
  // The failure on the list whose owner has no key comes first: a storage error ends a pass.
  await queue.addReport(bare.id, 'c@x.test', null, 'SMTP_550: No such user');
  await queue.addReport(list.id, 'a@x.test', null, 'SMTP_550: No such user');
  await queue.addReport(list.id, 'b@x.test', null, 'BOUNCED: the copy bounced');
  const unreported = async (listId: number) => ((await sql.get('SELECT count(*) AS n FROM owner_reports WHERE list_id = ? AND reported = 0', [listId])) as { n: number }).n;
  const reportRows = async () => (await sql.all("SELECT rcpt FROM deliveries WHERE kind = 'report'")) as Array<{ rcpt: string }>;

  const events: Array<{ event: string } & EventFields> = [];
  const log: EventLog = { info() {}, warn: (event, f) => events.push({ event, ...f }), error: (event, f) => events.push({ event, ...f }) };
  const sent: Array<{ to: string; mail: string }> = [];
  const relay: Relay = { description: 'fake', close() {}, async send(envelope, mail): Promise<SendResult> { sent.push({ to: envelope.to, mail: mail.toString() }); return { ok: true }; } };
  // The list key is handed out only when the gate opens: sealing waits on it.
  let open!: () => void;
  let gate = Promise.resolve();
  let asked = 0;
  const keysFor = async (l: ListRecord) => { asked++; await gate; return await unlockList(l, SECRET); };
  const worker = new DeliveryWorker({
    sql, queue, relay, tokens: createTokens(SECRET), log, publicUrl: 'http://localhost', keysFor,
    delivery: { concurrency: 2, batch: 4, retryBaseMs: 10, retryMaxMs: 50, giveUpAfterMs: 3_600_000, reportDelayMs: 0 },
  });

  // The database refuses the marking: the queued report is rolled back with it, and the rows wait for the next flush.
  const markReported = queue.markReported.bind(queue);
  let fault = true;
  queue.markReported = async (ids) => { if (fault && ids.length === 2) { fault = false; throw full(); } await markReported(ids); };
  await worker.flushReports(true);
  expect(await unreported(list.id)).toBe(2);
  expect(await reportRows()).toEqual([]);
  expect(events).toContainEqual(expect.objectContaining({ event: 'delivery.error', code: 'SQLITE_FULL' }));
  // An owner without a key: nothing queued, the rows marked, a warning with a code.
  expect(await unreported(bare.id), JSON.stringify(events)).toBe(0);
  expect(events).toContainEqual({ event: 'ops.owner_unreachable', list: bare.address, count: 1, code: 'NO_KEY' });

  // While a report is being sealed, the lanes keep claiming and sending rows.
  gate = new Promise<void>((r) => { open = r; });
  const askedBefore = asked;
  worker.start();
  const until = async (test: () => boolean, what: string) => {
    const end = Date.now() + 20_000;
    while (!test()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await until(() => asked > askedBefore, 'the report pass to ask for the list key');
  await queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: 'n@x.test', mail: 'Subject: n\r\n\r\nnotice\r\n' });
  worker.kick();
  await until(() => sent.some((s) => s.to === 'n@x.test'), 'a row sent while the report waits');
  expect(await reportRows()).toEqual([]);
  expect(await unreported(list.id)).toBe(2);
  await open();
  await until(() => sent.some((s) => s.to === owner.address), 'the report');
  await worker.stop();
  expect(await unreported(list.id)).toBe(0);
  expect(await reportRows()).toEqual([{ rcpt: owner.address }]);
  const mail = sent.find((s) => s.to === owner.address)!.mail;
  for (const x of ['a@x.test', 'b@x.test', 'SMTP_550', 'BOUNCED']) expect(mail).not.toContain(x);
  const armoredMessage = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(mail)![0];
  const listPublic = (await readPublicKey(list.listPublic)).key;
  const { data } = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage }), decryptionKeys: owner.privateKey, verificationKeys: listPublic, expectSigned: true });
  const text = (await PostalMime.parse(data as string)).text ?? '';
  expect(text).toContain('- a@x.test: SMTP_550: No such user (post (none))');
  expect(text).toContain('- b@x.test: BOUNCED: the copy bounced');
  expect(sent.some((s) => s.to === 'keyless@x.test')).toBe(false);
  await sql.close();
}, 60_000);
