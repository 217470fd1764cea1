// Replay protection's memory, per list: the SHA-256 of every accepted post's
// signature packet with the signature's creation time. No plaintext: a digest
// of a signature (itself public data) cannot be turned back into anything.
// Rows older than the list's window are purged: such a signature is refused by
// the window anyway. Duplicate Message-IDs are looked up in the posts table.

import type { Sql } from './sql.ts';

export async function signatureSeen(sql: Sql, listId: number, digest: string): Promise<boolean> {
  return (await sql.get('SELECT 1 AS one FROM seen_signatures WHERE list_id = ? AND digest = ?', [listId, digest])) !== undefined;
}

/** Records a digest; false when it was already there (the caller refuses the post as a replay). */
export async function recordSignature(sql: Sql, listId: number, digest: string, signedAt: number, postId: number | null, now = Date.now()): Promise<boolean> {
  const r = await sql.run('INSERT INTO seen_signatures (list_id, digest, signed_at, post_id, seen_at) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING',
    [listId, digest, signedAt, postId, now]);
  return r.changes === 1;
}

export async function setSignaturePost(sql: Sql, listId: number, digest: string, postId: number): Promise<void> {
  await sql.run('UPDATE seen_signatures SET post_id = ? WHERE list_id = ? AND digest = ?', [postId, listId, digest]);
}

/**
 * The id of a post accepted on this list since `since` (ms) under this outer
 * Message-ID, if any: the one the mail arrived with (outer_message_id), or, for
 * posts stored before that column, message_id.
 */
export async function acceptedMessageId(sql: Sql, listId: number, messageId: string, since: number): Promise<number | null> {
  const r = await sql.get<{ id: number }>(`SELECT id FROM posts WHERE list_id = ? AND created_at >= ?
    AND (outer_message_id = ? OR (outer_message_id IS NULL AND message_id = ?)) ORDER BY id LIMIT 1`, [listId, since, messageId, messageId]);
  return r?.id ?? null;
}

/**
 * Drops digests whose signature is older than the window, counted from now or
 * from the oldest post still held on the list, whichever is earlier: a held post
 * is judged by the window at the time it was held, so its signature's digest
 * must outlive it.
 */
export async function purgeSignatures(sql: Sql, listId: number, windowMs: number, now = Date.now()): Promise<number> {
  return sql.tx(async () => {
    const oldestHeld = (await sql.get<{ t: number | null }>('SELECT min(received_at) AS t FROM held WHERE list_id = ?', [listId]))?.t ?? null;
    const from = oldestHeld === null ? now : Math.min(now, oldestHeld);
    return (await sql.run('DELETE FROM seen_signatures WHERE list_id = ? AND signed_at < ?', [listId, from - windowMs])).changes;
  });
}

export async function countSignatures(sql: Sql, listId: number): Promise<number> {
  return (await sql.get<{ n: number }>('SELECT count(*) AS n FROM seen_signatures WHERE list_id = ?', [listId]))!.n;
}
