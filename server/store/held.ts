// Posts held for a moderator, kept as the OpenPGP payload that arrived: it is
// encrypted to the list key, so holding it writes no plaintext.

import type { OuterFacts } from '../../shared/index.ts';
import type { Db } from './db.ts';

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

export function insertHeld(db: Db, h: Omit<HeldRecord, 'id' | 'receivedAt'>): number {
  const armored = typeof h.payload === 'string';
  const bytes = armored ? Buffer.from(h.payload as string, 'latin1') : Buffer.from(h.payload as Uint8Array);
  return Number(db.prepare(`INSERT INTO held (list_id, sender, envelope_from, payload, payload_armored, outer, size, reason, received_at)
    VALUES (?,?,?,?,?,?,?,?,?)`).run(h.listId, h.sender, h.envelopeFrom, bytes, armored ? 1 : 0, JSON.stringify(h.outer), h.size,
    h.reason, Date.now()).lastInsertRowid);
}

export function listHeld(db: Db, listId?: number): HeldRecord[] {
  const rows = (listId === undefined
    ? db.prepare('SELECT * FROM held ORDER BY id').all()
    : db.prepare('SELECT * FROM held WHERE list_id = ? ORDER BY id').all(listId)) as Row[];
  return rows.map(fromRow);
}

export function getHeld(db: Db, id: number): HeldRecord | null {
  const r = db.prepare('SELECT * FROM held WHERE id = ?').get(id) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function deleteHeld(db: Db, id: number): void {
  db.prepare('DELETE FROM held WHERE id = ?').run(id);
}
