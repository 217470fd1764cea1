import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../../../server/store/db.ts';
import { insertList } from '../../../server/store/lists.ts';
import { insertPost } from '../../../server/store/posts.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup() {
  const sql = await openTestSql(join(dir, `${Math.random()}.db`));
  const listId = await insertList(sql, { address: 'l@x.test', owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });
  const postId = await insertPost(sql, { listId, messageId: '<m@x>', inReplyTo: null, references: [], date: null, size: 5000, body: new Uint8Array(5000), archivePkesk: new Uint8Array(96), listPkesk: new Uint8Array(96), display: null, bareText: false });
  return { sql, q: new QueueStore(sql), listId, postId };
}

describe('delivery queue', () => {
  it('holds one PKESK per copy row and the body once, in the post', async () => {
    const { sql, q, listId, postId } = await setup();
    for (let i = 0; i < 100; i++) await q.add({ listId, postId, kind: 'copy', rcpt: `r${i}@x.test`, pkesk: new Uint8Array(96) });
    const sizes = (await sql.get('SELECT sum(length(pkesk)) AS pk, sum(coalesce(length(mail),0)) AS mail FROM deliveries')) as { pk: number; mail: number };
    expect(sizes).toEqual({ pk: 9600, mail: 0 });
    expect(((await sql.get('SELECT count(*) AS n FROM posts')) as { n: number }).n).toBe(1);
  });

  it('claims in batches, marks sent, retries later, and counts in-flight rows after a crash', async () => {
    const { q, listId, postId } = await setup();
    for (let i = 0; i < 10; i++) await q.add({ listId, postId, kind: 'copy', rcpt: `r${i}@x.test`, pkesk: new Uint8Array(96) });
    const rows = await q.claim(Date.now(), 4);
    expect(rows.map((r) => r.rcpt)).toEqual(['r0@x.test', 'r1@x.test', 'r2@x.test', 'r3@x.test']);
    q.markSent(rows[0]!.id);
    await q.retryLater(rows[1]!.id, Date.now() + 60_000, 'SMTP_451: later');
    await q.markFailed(rows[2]!.id, 'SMTP_550: no');
    // Sent marks commit on their own within a few milliseconds (batched), without a flush call.
    for (let i = 0; i < 500 && ((await q.stats()).sent ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await q.stats()).toMatchObject({ sent: 1, queued: 7, failed: 1, sending: 1 });
    expect((await q.claim(Date.now(), 100)).map((r) => r.rcpt)).toHaveLength(6); // the retry is not due yet
    // A crash leaves 7 rows 'sending': they go back to the queue and are counted.
    expect(await q.recoverInFlight()).toBe(7);
    expect(await q.stats()).toMatchObject({ sent: 1, queued: 8, failed: 1, resent_after_crash: 7 });
  });

  it('unclaim (clean stop) returns rows without counting them', async () => {
    const { q, listId, postId } = await setup();
    await q.add({ listId, postId, kind: 'copy', rcpt: 'a@x.test', pkesk: new Uint8Array(96) });
    const rows = await q.claim(Date.now(), 10);
    await q.unclaim(rows.map((r) => r.id));
    expect(await q.stats()).toMatchObject({ queued: 1, resent_after_crash: 0 });
  });
});
