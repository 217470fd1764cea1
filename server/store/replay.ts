// Replay protection's memory, per list: the SHA-256 of every accepted post's
// signature packet with the signature's creation time. No plaintext: a digest
// of a signature (itself public data) cannot be turned back into anything.
// Rows older than the list's window are purged: such a signature is refused by
// the window anyway. Duplicate Message-IDs are looked up in the posts table.

import type { Db } from './db.ts';

export function signatureSeen(db: Db, listId: number, digest: string): boolean {
  return db.prepare('SELECT 1 FROM seen_signatures WHERE list_id = ? AND digest = ?').get(listId, digest) !== undefined;
}

/** Records a digest; false when it was already there (the caller refuses the post as a replay). */
export function recordSignature(db: Db, listId: number, digest: string, signedAt: number, postId: number | null, now = Date.now()): boolean {
  const r = db.prepare('INSERT INTO seen_signatures (list_id, digest, signed_at, post_id, seen_at) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING')
    .run(listId, digest, signedAt, postId, now);
  return r.changes === 1;
}

export function setSignaturePost(db: Db, listId: number, digest: string, postId: number): void {
  db.prepare('UPDATE seen_signatures SET post_id = ? WHERE list_id = ? AND digest = ?').run(postId, listId, digest);
}

/**
 * The id of a post accepted on this list since `since` (ms) under this outer
 * Message-ID, if any: the one the mail arrived with (outer_message_id), or, for
 * posts stored before that column, message_id.
 */
export function acceptedMessageId(db: Db, listId: number, messageId: string, since: number): number | null {
  const r = db.prepare(`SELECT id FROM posts WHERE list_id = ? AND created_at >= ?
    AND (outer_message_id = ? OR (outer_message_id IS NULL AND message_id = ?)) ORDER BY id LIMIT 1`).get(listId, since, messageId, messageId) as { id: number } | undefined;
  return r?.id ?? null;
}

/**
 * Drops digests whose signature is older than the window, counted from now or
 * from the oldest post still held on the list, whichever is earlier: a held post
 * is judged by the window at the time it was held, so its signature's digest
 * must outlive it.
 */
export function purgeSignatures(db: Db, listId: number, windowMs: number, now = Date.now()): number {
  const oldestHeld = (db.prepare('SELECT min(received_at) AS t FROM held WHERE list_id = ?').get(listId) as { t: number | null }).t;
  const from = oldestHeld === null ? now : Math.min(now, oldestHeld);
  return db.prepare('DELETE FROM seen_signatures WHERE list_id = ? AND signed_at < ?').run(listId, from - windowMs).changes;
}

export function countSignatures(db: Db, listId: number): number {
  return (db.prepare('SELECT count(*) AS n FROM seen_signatures WHERE list_id = ?').get(listId) as { n: number }).n;
}
