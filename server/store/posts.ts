// Accepted posts: the archive record (encrypted body, K wrapped to the archive
// key, threading metadata) that the queued copies also point at. No subject, no
// sender: those exist only inside the ciphertext.

import type { Db } from './db.ts';

export interface PostRecord {
  id: number;
  listId: number;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: number | null;
  size: number;
  body: Uint8Array;
  archivePkesk: Uint8Array;
  /** Author name and clear subject, encrypted to the list key (delivery/display.ts); null for older posts. */
  display: Uint8Array | null;
  /** The signed content is bare text (inline clients), not a MIME entity: every copy goes inline. */
  bareText: boolean;
}

interface Row {
  id: number; list_id: number; message_id: string | null; in_reply_to: string | null; refs: string; date: number | null;
  size: number; body: Buffer; archive_pkesk: Buffer; display?: Buffer | null; bare_text?: number;
}

function fromRow(r: Row): PostRecord {
  return {
    id: r.id, listId: r.list_id, messageId: r.message_id, inReplyTo: r.in_reply_to, references: JSON.parse(r.refs) as string[],
    date: r.date, size: r.size, body: new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength),
    archivePkesk: new Uint8Array(r.archive_pkesk), display: r.display ? new Uint8Array(r.display) : null, bareText: r.bare_text === 1,
  };
}

/** `outerMessageId`: the Message-ID the mail arrived with, when the post goes by its signed one (pipeline/replay.ts threadingOf). */
export function insertPost(db: Db, p: Omit<PostRecord, 'id'> & { listPkesk: Uint8Array; outerMessageId?: string | null }): number {
  return Number(db.prepare(`INSERT INTO posts (list_id, message_id, in_reply_to, refs, date, size, body, archive_pkesk, list_pkesk, display, bare_text, created_at, outer_message_id)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`).run(p.listId, p.messageId, p.inReplyTo, JSON.stringify(p.references), p.date, p.size,
    Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength), Buffer.from(p.archivePkesk), Buffer.from(p.listPkesk),
    p.display ? Buffer.from(p.display) : null, p.bareText ? 1 : 0, Date.now(), p.outerMessageId ?? null).lastInsertRowid);
}

export interface WrapState {
  postId: number;
  listId: number;
  messageId: string | null;
  listPkesk: Uint8Array;
  wrapAfter: string;
}

/** Posts whose fan-out (wrapping K to every member) has not finished. */
export function unfinishedWraps(db: Db): WrapState[] {
  const rows = db.prepare('SELECT id, list_id, message_id, list_pkesk, wrap_after FROM posts WHERE wrap_done = 0 ORDER BY id').all() as
    Array<{ id: number; list_id: number; message_id: string | null; list_pkesk: Buffer; wrap_after: string }>;
  return rows.map((r) => ({ postId: r.id, listId: r.list_id, messageId: r.message_id, listPkesk: new Uint8Array(r.list_pkesk), wrapAfter: r.wrap_after }));
}

export function getWrapState(db: Db, id: number): WrapState | null {
  return unfinishedWraps(db).find((w) => w.postId === id) ?? null;
}

export function advanceWrap(db: Db, id: number, after: string): void {
  db.prepare('UPDATE posts SET wrap_after = ? WHERE id = ?').run(after, id);
}

export function finishWrap(db: Db, id: number): void {
  db.prepare('UPDATE posts SET wrap_done = 1, list_pkesk = NULL WHERE id = ?').run(id);
}

export function getPost(db: Db, id: number): PostRecord | null {
  const r = db.prepare('SELECT * FROM posts WHERE id = ?').get(id) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function countPosts(db: Db, listId: number): number {
  return (db.prepare('SELECT count(*) AS n FROM posts WHERE list_id = ?').get(listId) as { n: number }).n;
}

export function getPostMessageId(db: Db, id: number): string | null {
  const r = db.prepare('SELECT message_id FROM posts WHERE id = ?').get(id) as { message_id: string | null } | undefined;
  return r?.message_id ?? null;
}
