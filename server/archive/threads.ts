// Threads of the archive, from the only metadata it keeps: Message-ID,
// In-Reply-To and References. Each post's thread root is computed once, when a
// page is first asked for after the post arrived, and remembered.

import type { MessageMeta, Thread, ThreadPage } from '../../shared/index.ts';
import type { Sql } from '../store/sql.ts';
import { findThread, insertThreadRoot, lastRootedPost, postMeta, postsAfter, rootOfMessageId, rootsBelow, threadPosts, type PostMetaRow } from '../store/threads.ts';

const MAX_MESSAGES_PER_THREAD = 500;

/** Assigns thread roots to posts that have none yet, oldest first, in one transaction (two readers at once do the work once). */
export async function refreshThreadRoots(sql: Sql, listId: number): Promise<void> {
  // Most reads find nothing new: only then take the write transaction (and read again inside it).
  if ((await postsAfter(sql, listId, await lastRootedPost(sql, listId), 1)).length === 0) return;
  await sql.tx(async () => {
    const rows = await postsAfter(sql, listId, await lastRootedPost(sql, listId));
    for (const r of rows) {
      const refs = JSON.parse(r.refs) as string[];
      // The nearest known ancestor: In-Reply-To first, then References from the end.
      const candidates = [r.in_reply_to, ...refs.slice().reverse()].filter((x): x is string => !!x).slice(0, 50);
      let root = r.id;
      for (const c of candidates) {
        const hit = await rootOfMessageId(sql, listId, c);
        if (hit !== null) {
          root = hit;
          break;
        }
      }
      await insertThreadRoot(sql, r.id, listId, root);
    }
  });
}

const metaOfRow = (r: PostMetaRow): MessageMeta =>
  metaOf({ id: r.id, messageId: r.message_id, inReplyTo: r.in_reply_to, references: JSON.parse(r.refs) as string[], date: r.date, size: r.size });

/** Newest threads first; `before` is the root id to continue below. */
export async function threadPage(sql: Sql, listId: number, before: number | null, limit: number): Promise<ThreadPage> {
  await refreshThreadRoots(sql, listId);
  const roots = await rootsBelow(sql, listId, before ?? Number.MAX_SAFE_INTEGER, limit + 1);
  const page = roots.slice(0, limit);
  const threads = [];
  for (const rootId of page) {
    const messages = (await threadPosts(sql, listId, rootId, MAX_MESSAGES_PER_THREAD)).map(metaOfRow);
    const dates = messages.map((m) => m.date).filter((d): d is string => d !== null).sort();
    threads.push({ rootId, messages, lastDate: dates[dates.length - 1] ?? null });
  }
  return { threads, nextCursor: roots.length > limit ? String(page[page.length - 1]!) : null };
}
export function metaOf(p: { id: number; messageId: string | null; inReplyTo: string | null; references: string[]; date: number | null; size: number }): MessageMeta {
  return {
    id: p.id, messageId: p.messageId, inReplyTo: p.inReplyTo, references: p.references,
    date: p.date === null ? null : new Date(p.date).toISOString(), size: p.size,
  };
}

/**
 * The one thread that holds a post, named by its archive id or its Message-ID
 * (the first post with it): what a permalink opens. Null when the list has no such post.
 */
export async function threadOf(sql: Sql, listId: number, key: { id: number } | { messageId: string }): Promise<Thread | null> {
  await refreshThreadRoots(sql, listId);
  const hit = await findThread(sql, listId, key);
  if (!hit) return null;
  const messages = (await threadPosts(sql, listId, hit.root, MAX_MESSAGES_PER_THREAD)).map(metaOfRow);
  // A thread longer than the cap still shows the asked-for post.
  if (!messages.some((m) => m.id === hit.id)) {
    const r = await postMeta(sql, hit.id);
    if (r) messages.push(metaOfRow(r));
  }
  const dates = messages.map((m) => m.date).filter((d): d is string => d !== null).sort();
  return { rootId: hit.root, messages, lastDate: dates[dates.length - 1] ?? null };
}
