// The delivery worker under storage faults: while the database refuses writes
// (SQLITE_FULL, as on a full disk) the worker must not crash nor lose outcomes:
// a failed claim pauses the lane, a failed outcome write is kept and retried, a
// deferred "sent" flush is retried; once writes work again every row ends 'sent'.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createList } from '../../../server/lists/lists.ts';
import { silentLog } from '../../../server/log/log.ts';
import { createTokens } from '../../../server/delivery/tokens.ts';
import { DeliveryWorker } from '../../../server/delivery/worker.ts';
import type { Relay, SendResult } from '../../../server/delivery/relay.ts';
import { openDb } from '../../../server/store/db.ts';
import { QueueStore } from '../../../server/store/queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-worker-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'unit-test-secret-0123456789';
const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });

it('storage errors pause and retry delivery; nothing crashes and every row ends sent', async () => {
  const db = openDb(join(dir, 'w.db'));
  const queue = new QueueStore(db);
  const list = await createList(db, SECRET, 'w@lists.test', { maxBytes: 100_000 });
  const N = 6;
  for (let i = 0; i < N; i++) queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: `m${i}@x.test`, mail: 'Subject: n\r\n\r\nnotice\r\n' });

  let diskFull = true;
  const faults = { claim: 0, retry: 0, sent: 0 };
  const q = queue as unknown as Record<string, unknown>;
  const claim = queue.claim.bind(queue);
  queue.claim = (now, limit) => { if (diskFull && faults.claim++ === 0) throw full(); return claim(now, limit); };
  const retryLater = queue.retryLater.bind(queue);
  queue.retryLater = (...a) => { if (diskFull) { faults.retry++; throw full(); } retryLater(...a); };
  const sentStmt = q.sentStmt as { run(...a: unknown[]): unknown };
  q.sentStmt = { run: (...a: unknown[]) => { if (diskFull) { faults.sent++; throw full(); } return sentStmt.run(...a); } };

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
    db, queue, relay, tokens: createTokens(SECRET), log: silentLog, publicUrl: 'http://localhost',
    delivery: { concurrency: 2, batch: 4, retryBaseMs: 10, retryMaxMs: 50, giveUpAfterMs: 3_600_000, reportDelayMs: 0 },
  });
  worker.start();
  const states = () => db.prepare('SELECT state, count(*) AS n FROM deliveries GROUP BY state').all() as Array<{ state: string; n: number }>;
  const until = async (test: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!test() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return test();
  };
  const ok = await until(() => faults.claim > 0 && faults.retry > 0 && faults.sent > 0, 15_000);
  expect(ok, JSON.stringify({ faults, seen: [...seen], states: states() })).toBe(true);
  expect(states().find((s) => s.state === 'sent')).toBeUndefined(); // nothing recorded while full
  diskFull = false;
  expect(await until(() => states().some((s) => s.state === 'sent' && s.n === N), 20_000)).toBe(true);
  await worker.stop();
  expect([...seen.keys()].sort()).toEqual(Array.from({ length: N }, (_, i) => `m${i}@x.test`));
  console.log(`worker faults: ${JSON.stringify(faults)}; sends per row ${JSON.stringify([...seen.values()])}`);
  db.close();
});
