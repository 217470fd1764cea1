// Threads of the archive, from the only metadata it keeps: Message-ID,
// In-Reply-To and References. Each post's thread root is computed once, when a
// page is first asked for after the post arrived, and remembered.

import type { MessageMeta, Thread, ThreadPage } from '../../shared/index.ts';
import type { Db } from '../store/db.ts';

const MAX_MESSAGES_PER_THREAD = 500;

interface PostMetaRow { id: number; message_id: string | null; in_reply_to: string | null; refs: string; date: number | null; size: number }

function ensureIndexes(db: Db): void {
  db.exec('CREATE INDEX IF NOT EXISTS posts_message_id ON posts(list_id, message_id)');
}

/** Assigns thread roots to posts that have none yet, oldest first. */
export function refreshThreadRoots(db: Db, listId: number): void {
  ensureIndexes(db);
  const last = (db.prepare('SELECT coalesce(max(post_id), 0) AS m FROM thread_roots WHERE list_id = ?').get(listId) as { m: number }).m;
  const rows = db.prepare('SELECT id, message_id, in_reply_to, refs FROM posts WHERE list_id = ? AND id > ? ORDER BY id').all(listId, last) as PostMetaRow[];
  if (rows.length === 0) return;
  const byMessageId = db.prepare('SELECT tr.root_id AS root FROM posts p JOIN thread_roots tr ON tr.post_id = p.id WHERE p.list_id = ? AND p.message_id = ? ORDER BY p.id LIMIT 1');
  const insert = db.prepare('INSERT OR IGNORE INTO thread_roots (post_id, list_id, root_id) VALUES (?,?,?)');
  db.transaction(() => {
    for (const r of rows) {
      const refs = JSON.parse(r.refs) as string[];
      // The nearest known ancestor: In-Reply-To first, then References from the end.
      const candidates = [r.in_reply_to, ...refs.slice().reverse()].filter((x): x is string => !!x).slice(0, 50);
      let root = r.id;
      for (const c of candidates) {
        const hit = byMessageId.get(listId, c) as { root: number } | undefined;
        if (hit) {
          root = hit.root;
          break;
        }
      }
      insert.run(r.id, listId, root);
    }
  })();
}

/** Newest threads first; `before` is the root id to continue below. */
export function threadPage(db: Db, listId: number, before: number | null, limit: number): ThreadPage {
  refreshThreadRoots(db, listId);
  const roots = db.prepare(`SELECT root_id, max(post_id) AS latest FROM thread_roots WHERE list_id = ? AND root_id < ?
    GROUP BY root_id ORDER BY root_id DESC LIMIT ?`).all(listId, before ?? Number.MAX_SAFE_INTEGER, limit + 1) as Array<{ root_id: number }>;
  const page = roots.slice(0, limit);
  const messagesOf = db.prepare(`SELECT p.id, p.message_id, p.in_reply_to, p.refs, p.date, p.size FROM posts p
    JOIN thread_roots tr ON tr.post_id = p.id WHERE tr.list_id = ? AND tr.root_id = ? ORDER BY p.id LIMIT ?`);
  const threads = page.map(({ root_id }) => {
    const messages: MessageMeta[] = (messagesOf.all(listId, root_id, MAX_MESSAGES_PER_THREAD) as PostMetaRow[]).map((r) =>
      metaOf({ id: r.id, messageId: r.message_id, inReplyTo: r.in_reply_to, references: JSON.parse(r.refs) as string[], date: r.date, size: r.size }));
    const dates = messages.map((m) => m.date).filter((d): d is string => d !== null).sort();
    return { rootId: root_id, messages, lastDate: dates[dates.length - 1] ?? null };
  });
  return { threads, nextCursor: roots.length > limit ? String(page[page.length - 1]!.root_id) : null };
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
export function threadOf(db: Db, listId: number, key: { id: number } | { messageId: string }): Thread | null {
  refreshThreadRoots(db, listId);
  const hit = ('id' in key
    ? db.prepare('SELECT tr.root_id AS root, p.id AS id FROM thread_roots tr JOIN posts p ON p.id = tr.post_id WHERE tr.list_id = ? AND p.id = ?').get(listId, key.id)
    : db.prepare('SELECT tr.root_id AS root, p.id AS id FROM posts p JOIN thread_roots tr ON tr.post_id = p.id WHERE p.list_id = ? AND p.message_id = ? ORDER BY p.id LIMIT 1').get(listId, key.messageId)) as { root: number; id: number } | undefined;
  if (!hit) return null;
  const rows = db.prepare(`SELECT p.id, p.message_id, p.in_reply_to, p.refs, p.date, p.size FROM posts p
    JOIN thread_roots tr ON tr.post_id = p.id WHERE tr.list_id = ? AND tr.root_id = ? ORDER BY p.id LIMIT ?`).all(listId, hit.root, MAX_MESSAGES_PER_THREAD) as PostMetaRow[];
  const messages = rows.map((r) => metaOf({ id: r.id, messageId: r.message_id, inReplyTo: r.in_reply_to, references: JSON.parse(r.refs) as string[], date: r.date, size: r.size }));
  // A thread longer than the cap still shows the asked-for post.
  if (!messages.some((m) => m.id === hit.id)) {
    const r = db.prepare('SELECT id, message_id, in_reply_to, refs, date, size FROM posts WHERE id = ?').get(hit.id) as PostMetaRow;
    messages.push(metaOf({ id: r.id, messageId: r.message_id, inReplyTo: r.in_reply_to, references: JSON.parse(r.refs) as string[], date: r.date, size: r.size }));
  }
  const dates = messages.map((m) => m.date).filter((d): d is string => d !== null).sort();
  return { rootId: hit.root, messages, lastDate: dates[dates.length - 1] ?? null };
}
