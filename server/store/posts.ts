// Accepted posts: the archive record (encrypted body, K wrapped to the archive
// key, threading metadata) that the queued copies also point at. No subject, no
// sender: those exist only inside the ciphertext.

import type { Sql } from './sql.ts';

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
export async function insertPost(sql: Sql, p: Omit<PostRecord, 'id'> & { listPkesk: Uint8Array; outerMessageId?: string | null }): Promise<number> {
  const r = await sql.get<{ id: number }>(`INSERT INTO posts (list_id, message_id, in_reply_to, refs, date, size, body, archive_pkesk, list_pkesk, display, bare_text, created_at, outer_message_id)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, [p.listId, p.messageId, p.inReplyTo, JSON.stringify(p.references), p.date, p.size,
    Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength), Buffer.from(p.archivePkesk), Buffer.from(p.listPkesk),
    p.display ? Buffer.from(p.display) : null, p.bareText ? 1 : 0, Date.now(), p.outerMessageId ?? null]);
  return Number(r!.id);
}

export interface WrapState {
  postId: number;
  listId: number;
  messageId: string | null;
  listPkesk: Uint8Array;
  wrapAfter: string;
}

type WrapRow = { id: number; list_id: number; message_id: string | null; list_pkesk: Buffer; wrap_after: string };
const wrapOf = (r: WrapRow): WrapState => ({ postId: r.id, listId: r.list_id, messageId: r.message_id, listPkesk: new Uint8Array(r.list_pkesk), wrapAfter: r.wrap_after });

/** Posts whose fan-out (wrapping K to every member) has not finished. */
export async function unfinishedWraps(sql: Sql): Promise<WrapState[]> {
  return (await sql.all<WrapRow>('SELECT id, list_id, message_id, list_pkesk, wrap_after FROM posts WHERE wrap_done = 0 ORDER BY id')).map(wrapOf);
}

/**
 * Unfinished fan-outs this node may take: no owner, its own (its previous run
 * died), or an owner whose lease ran out (that node died or stalled). At most `limit`.
 */
export async function takeableWraps(sql: Sql, nodeId: string, now: number, limit = 1000): Promise<number[]> {
  return (await sql.all<{ id: number }>(`SELECT id FROM posts WHERE wrap_done = 0
    AND (wrap_owner IS NULL OR wrap_owner = ? OR wrap_until IS NULL OR wrap_until < ?) ORDER BY id LIMIT ?`, [nodeId, now, limit])).map((r) => Number(r.id));
}

export async function getWrapState(sql: Sql, id: number): Promise<WrapState | null> {
  const r = await sql.get<WrapRow>('SELECT id, list_id, message_id, list_pkesk, wrap_after FROM posts WHERE wrap_done = 0 AND id = ?', [id]);
  return r ? wrapOf(r) : null;
}

/**
 * Takes a post's fan-out under this node's lease until `until`: when it is
 * unfinished and unowned, already this node's, or its owner's lease ran out.
 * Null: finished, or another node is on it.
 */
export async function claimWrap(sql: Sql, id: number, nodeId: string, now: number, until: number): Promise<WrapState | null> {
  const r = await sql.get<WrapRow>(`UPDATE posts SET wrap_owner = ?, wrap_until = ?
    WHERE id = ? AND wrap_done = 0 AND (wrap_owner IS NULL OR wrap_owner = ? OR wrap_until IS NULL OR wrap_until < ?)
    RETURNING id, list_id, message_id, list_pkesk, wrap_after`, [nodeId, until, id, nodeId, now]);
  return r ? wrapOf(r) : null;
}

/** This node lost a fan-out's lease (it paused past it and another node took the post over). */
export class WrapLeaseLost extends Error {
  override name = 'WrapLeaseLost';
}

/**
 * Moves the cursor from `from` to `after` and renews the lease, if this node still
 * holds it and the cursor is still where it left it (compare-and-set): otherwise
 * WrapLeaseLost, thrown inside the page's transaction so its rows are not queued.
 */
export async function advanceWrap(sql: Sql, id: number, from: string, after: string, nodeId: string, until: number): Promise<void> {
  const r = await sql.run('UPDATE posts SET wrap_after = ?, wrap_until = ? WHERE id = ? AND wrap_done = 0 AND wrap_after = ? AND wrap_owner = ?',
    [after, until, id, from, nodeId]);
  if (r.changes !== 1) throw new WrapLeaseLost('the fan-out was taken over by another node');
}

/** Done, if this node still holds the post (a node that lost it leaves the finish to the new owner). */
export async function finishWrap(sql: Sql, id: number, nodeId: string, from: string): Promise<void> {
  await sql.run('UPDATE posts SET wrap_done = 1, list_pkesk = NULL, wrap_owner = NULL, wrap_until = NULL WHERE id = ? AND wrap_owner = ? AND wrap_after = ?', [id, nodeId, from]);
}

/** A clean stop: the post goes back to any node at once (its cursor is committed). */
export async function releaseWrap(sql: Sql, id: number, nodeId: string): Promise<void> {
  await sql.run('UPDATE posts SET wrap_owner = NULL, wrap_until = NULL WHERE id = ? AND wrap_owner = ? AND wrap_done = 0', [id, nodeId]);
}

export async function getPost(sql: Sql, id: number): Promise<PostRecord | null> {
  const r = await sql.get<Row>('SELECT * FROM posts WHERE id = ?', [id]);
  return r ? fromRow(r) : null;
}

export async function countPosts(sql: Sql, listId: number): Promise<number> {
  return (await sql.get<{ n: number }>('SELECT count(*) AS n FROM posts WHERE list_id = ?', [listId]))!.n;
}

export async function getPostMessageId(sql: Sql, id: number): Promise<string | null> {
  const r = await sql.get<{ message_id: string | null }>('SELECT message_id FROM posts WHERE id = ?', [id]);
  return r?.message_id ?? null;
}

export interface RecentPost { id: number; list_id: number; address: string | null; message_id: string | null; size: number; created_at: number; wrap_done: number }

/** The newest posts of all lists, with their list's address (status). */
export async function recentPosts(sql: Sql, limit: number): Promise<RecentPost[]> {
  return sql.all(`SELECT p.id, p.list_id, l.address, p.message_id, p.size, p.created_at, p.wrap_done FROM posts p
    LEFT JOIN lists l ON l.id = p.list_id ORDER BY p.id DESC LIMIT ?`, [limit]);
}
