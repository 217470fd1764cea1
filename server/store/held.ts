// Posts held for a moderator, kept as the OpenPGP payload that arrived: it is
// encrypted to the list key, so holding it writes no plaintext.

import type { OuterFacts } from '../../shared/index.ts';
import { claimJobRun } from './coordination.ts';
import type { Sql } from './sql.ts';

export interface HeldRecord {
  id: number;
  listId: number;
  sender: string | null;
  envelopeFrom: string | null;
  payload: Uint8Array | string;
  outer: OuterFacts;
  size: number;
  reason: string;
  receivedAt: number;
}

interface Row {
  id: number; list_id: number; sender: string | null; envelope_from: string | null; payload: Buffer; payload_armored: number;
  outer: string; size: number; reason: string; received_at: number;
}

function fromRow(r: Row): HeldRecord {
  const o = JSON.parse(r.outer) as Omit<OuterFacts, 'date'> & { date: string | null };
  return {
    id: r.id, listId: r.list_id, sender: r.sender, envelopeFrom: r.envelope_from,
    payload: r.payload_armored ? r.payload.toString('latin1') : new Uint8Array(r.payload),
    outer: { ...o, date: o.date ? new Date(o.date) : null, autoSubmitted: o.autoSubmitted ?? false }, size: r.size, reason: r.reason, receivedAt: r.received_at,
  };
}

export async function insertHeld(sql: Sql, h: Omit<HeldRecord, 'id' | 'receivedAt'>): Promise<number> {
  const armored = typeof h.payload === 'string';
  const bytes = armored ? Buffer.from(h.payload as string, 'latin1') : Buffer.from(h.payload as Uint8Array);
  const r = await sql.get<{ id: number }>(`INSERT INTO held (list_id, sender, envelope_from, payload, payload_armored, "outer", size, reason, received_at)
    VALUES (?,?,?,?,?,?,?,?,?) RETURNING id`, [h.listId, h.sender, h.envelopeFrom, bytes, armored ? 1 : 0, JSON.stringify(h.outer), h.size,
    h.reason, Date.now()]);
  return Number(r!.id);
}

export async function listHeld(sql: Sql, listId?: number): Promise<HeldRecord[]> {
  const rows = listId === undefined
    ? await sql.all<Row>('SELECT * FROM held ORDER BY id')
    : await sql.all<Row>('SELECT * FROM held WHERE list_id = ? ORDER BY id', [listId]);
  return rows.map(fromRow);
}

/** The moderation queue's summary rows of one list (no payload). */
export async function heldSummaries(sql: Sql, listId: number, limit: number): Promise<Array<{ id: number; sender: string | null; size: number; reason: string; received_at: number }>> {
  return sql.all('SELECT id, sender, size, reason, received_at FROM held WHERE list_id = ? ORDER BY id LIMIT ?', [listId, limit]);
}

export async function getHeld(sql: Sql, id: number): Promise<HeldRecord | null> {
  const r = await sql.get<Row>('SELECT * FROM held WHERE id = ?', [id]);
  return r ? fromRow(r) : null;
}

/**
 * A moderator's decision on one held post runs once, across processes and nodes:
 * the decision takes a claim named after the post in job_runs (one statement, so
 * two claims cannot both win, on SQLite between processes as on PostgreSQL between
 * nodes). A claim older than the lease (its process died mid-decision) can be taken
 * again. Returns a release function, or null when another decision holds it.
 */
export const DECISION_LEASE_MS = 10 * 60_000;

export async function claimDecision(sql: Sql, heldId: number, node: string | null, now = Date.now()): Promise<(() => Promise<void>) | null> {
  const name = `held-decision:${heldId}`;
  if (!await claimJobRun(sql, name, node, now, DECISION_LEASE_MS)) return null;
  // Removed afterwards (decided or failed): the held row, gone or kept, says the rest.
  return async () => { await sql.run('DELETE FROM job_runs WHERE name = ? AND started_at = ?', [name, now]); };
}

/** Deletes a held post; false when it was already gone (another decision took it). */
export async function deleteHeld(sql: Sql, id: number): Promise<boolean> {
  return (await sql.run('DELETE FROM held WHERE id = ?', [id])).changes > 0;
}

/** Posts held: on one list (optionally only those received after `since`), or on all lists. */
export async function countHeld(sql: Sql, listId?: number, since?: number): Promise<number> {
  const r = listId === undefined
    ? await sql.get<{ n: number }>('SELECT count(*) AS n FROM held')
    : since === undefined
      ? await sql.get<{ n: number }>('SELECT count(*) AS n FROM held WHERE list_id = ?', [listId])
      : await sql.get<{ n: number }>('SELECT count(*) AS n FROM held WHERE list_id = ? AND received_at > ?', [listId, since]);
  return r!.n;
}
