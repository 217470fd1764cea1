import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../../server/store/db.ts';
import { insertList } from '../../../server/store/lists.ts';
import { insertPost } from '../../../server/store/posts.ts';
import { QueueStore } from '../../../server/store/queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup() {
  const db = openDb(join(dir, `${Math.random()}.db`));
  const listId = insertList(db, { address: 'l@x.test', owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });
  const postId = insertPost(db, { listId, messageId: '<m@x>', inReplyTo: null, references: [], date: null, size: 5000, body: new Uint8Array(5000), archivePkesk: new Uint8Array(96), listPkesk: new Uint8Array(96), display: null, bareText: false });
  return { db, q: new QueueStore(db), listId, postId };
}

describe('delivery queue', () => {
  it('holds one PKESK per copy row and the body once, in the post', () => {
    const { db, q, listId, postId } = setup();
    for (let i = 0; i < 100; i++) q.add({ listId, postId, kind: 'copy', rcpt: `r${i}@x.test`, pkesk: new Uint8Array(96) });
    const sizes = db.prepare('SELECT sum(length(pkesk)) AS pk, sum(coalesce(length(mail),0)) AS mail FROM deliveries').get() as { pk: number; mail: number };
    expect(sizes).toEqual({ pk: 9600, mail: 0 });
    expect((db.prepare('SELECT count(*) AS n FROM posts').get() as { n: number }).n).toBe(1);
  });

  it('claims in batches, marks sent, retries later, and counts in-flight rows after a crash', async () => {
    const { q, listId, postId } = setup();
    for (let i = 0; i < 10; i++) q.add({ listId, postId, kind: 'copy', rcpt: `r${i}@x.test`, pkesk: new Uint8Array(96) });
    const rows = q.claim(Date.now(), 4);
    expect(rows.map((r) => r.rcpt)).toEqual(['r0@x.test', 'r1@x.test', 'r2@x.test', 'r3@x.test']);
    q.markSent(rows[0]!.id);
    q.retryLater(rows[1]!.id, Date.now() + 60_000, 'SMTP_451: later');
    q.markFailed(rows[2]!.id, 'SMTP_550: no');
    // Sent marks commit on their own within a few milliseconds (batched), without a flush call.
    for (let i = 0; i < 500 && (q.stats().sent ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(q.stats()).toMatchObject({ sent: 1, queued: 7, failed: 1, sending: 1 });
    expect(q.claim(Date.now(), 100).map((r) => r.rcpt)).toHaveLength(6); // the retry is not due yet
    // A crash leaves 7 rows 'sending': they go back to the queue and are counted.
    expect(q.recoverInFlight()).toBe(7);
    expect(q.stats()).toMatchObject({ sent: 1, queued: 8, failed: 1, resent_after_crash: 7 });
  });

  it('unclaim (clean stop) returns rows without counting them', () => {
    const { q, listId, postId } = setup();
    q.add({ listId, postId, kind: 'copy', rcpt: 'a@x.test', pkesk: new Uint8Array(96) });
    const rows = q.claim(Date.now(), 10);
    q.unclaim(rows.map((r) => r.id));
    expect(q.stats()).toMatchObject({ queued: 1, resent_after_crash: 0 });
  });
});
