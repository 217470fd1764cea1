// The archive's thread roots (table thread_roots) and the post metadata threads
// are built from: Message-ID, In-Reply-To, References, date and size. The logic
// that picks a root lives in archive/threads.ts.

import type { Sql } from './sql.ts';

export interface PostMetaRow { id: number; message_id: string | null; in_reply_to: string | null; refs: string; date: number | null; size: number }

/** The newest post of the list that already has a root (0: none). */
export async function lastRootedPost(sql: Sql, listId: number): Promise<number> {
  return (await sql.get<{ m: number }>('SELECT coalesce(max(post_id), 0) AS m FROM thread_roots WHERE list_id = ?', [listId]))!.m;
}

/** Posts of the list after `afterId`, oldest first (their threading headers). */
export async function postsAfter(sql: Sql, listId: number, afterId: number, limit = Number.MAX_SAFE_INTEGER): Promise<Array<Pick<PostMetaRow, 'id' | 'message_id' | 'in_reply_to' | 'refs'>>> {
  return sql.all('SELECT id, message_id, in_reply_to, refs FROM posts WHERE list_id = ? AND id > ? ORDER BY id LIMIT ?', [listId, afterId, limit]);
}

/** The root of the first post of the list with this Message-ID that has one. */
export async function rootOfMessageId(sql: Sql, listId: number, messageId: string): Promise<number | null> {
  const r = await sql.get<{ root: number }>('SELECT tr.root_id AS root FROM posts p JOIN thread_roots tr ON tr.post_id = p.id WHERE p.list_id = ? AND p.message_id = ? ORDER BY p.id LIMIT 1', [listId, messageId]);
  return r?.root ?? null;
}

export async function insertThreadRoot(sql: Sql, postId: number, listId: number, rootId: number): Promise<void> {
  await sql.run('INSERT INTO thread_roots (post_id, list_id, root_id) VALUES (?,?,?) ON CONFLICT DO NOTHING', [postId, listId, rootId]);
}

/** Thread roots below `before`, newest first. */
export async function rootsBelow(sql: Sql, listId: number, before: number, limit: number): Promise<number[]> {
  return (await sql.all<{ root_id: number }>(`SELECT root_id FROM thread_roots WHERE list_id = ? AND root_id < ?
    GROUP BY root_id ORDER BY root_id DESC LIMIT ?`, [listId, before, limit])).map((r) => r.root_id);
}

/** The posts of one thread, in id order. */
export async function threadPosts(sql: Sql, listId: number, rootId: number, limit: number): Promise<PostMetaRow[]> {
  return sql.all(`SELECT p.id, p.message_id, p.in_reply_to, p.refs, p.date, p.size FROM posts p
    JOIN thread_roots tr ON tr.post_id = p.id WHERE tr.list_id = ? AND tr.root_id = ? ORDER BY p.id LIMIT ?`, [listId, rootId, limit]);
}

/** The thread holding a post, named by its archive id or by its Message-ID (the first post with it). */
export async function findThread(sql: Sql, listId: number, key: { id: number } | { messageId: string }): Promise<{ root: number; id: number } | null> {
  const r = 'id' in key
    ? await sql.get<{ root: number; id: number }>('SELECT tr.root_id AS root, p.id AS id FROM thread_roots tr JOIN posts p ON p.id = tr.post_id WHERE tr.list_id = ? AND p.id = ?', [listId, key.id])
    : await sql.get<{ root: number; id: number }>('SELECT tr.root_id AS root, p.id AS id FROM posts p JOIN thread_roots tr ON tr.post_id = p.id WHERE p.list_id = ? AND p.message_id = ? ORDER BY p.id LIMIT 1', [listId, key.messageId]);
  return r ?? null;
}

export async function postMeta(sql: Sql, id: number): Promise<PostMetaRow | null> {
  return (await sql.get<PostMetaRow>('SELECT id, message_id, in_reply_to, refs, date, size FROM posts WHERE id = ?', [id])) ?? null;
}
