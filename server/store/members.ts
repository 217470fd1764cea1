// Members of a list and their registered keys. The encryption key packet is kept
// beside the armored key so a post is wrapped without re-parsing and re-verifying
// thousands of keys: the key policy ran once, when the key was registered.

import type { Db } from './db.ts';

export interface MemberRecord {
  listId: number;
  address: string;
  fingerprint: string;
  publicKey: string;
  encryptionKey: Uint8Array;
  expiresAt: number | null;
  keyState: 'valid' | 'revoked';
}

interface Row {
  list_id: number; address: string; fingerprint: string; public_key: string; encryption_key: Buffer;
  expires_at: number | null; key_state: 'valid' | 'revoked';
}

function fromRow(r: Row): MemberRecord {
  return {
    listId: r.list_id, address: r.address, fingerprint: r.fingerprint, publicKey: r.public_key,
    encryptionKey: new Uint8Array(r.encryption_key), expiresAt: r.expires_at, keyState: r.key_state,
  };
}

/**
 * Adds or updates a member; `keyFingerprints` (primary and subkeys) replaces the
 * member's rows in the key-ID index when given.
 */
export function upsertMember(db: Db, m: MemberRecord, keyFingerprints?: readonly string[]): void {
  db.prepare(`INSERT INTO members (list_id, address, fingerprint, public_key, encryption_key, expires_at, key_state, added_at)
    VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(list_id, address) DO UPDATE SET fingerprint = excluded.fingerprint,
    public_key = excluded.public_key, encryption_key = excluded.encryption_key, expires_at = excluded.expires_at,
    key_state = excluded.key_state`).run(m.listId, m.address.toLowerCase(), m.fingerprint, m.publicKey, Buffer.from(m.encryptionKey),
    m.expiresAt, m.keyState, Date.now());
  if (keyFingerprints) setMemberKeyIds(db, m.listId, m.address, keyFingerprints);
}

export function setMemberKeyIds(db: Db, listId: number, address: string, fingerprints: readonly string[]): void {
  const addr = address.toLowerCase();
  db.prepare('DELETE FROM member_key_ids WHERE list_id = ? AND address = ?').run(listId, addr);
  const insert = db.prepare('INSERT OR IGNORE INTO member_key_ids (list_id, address, fingerprint, key_id) VALUES (?,?,?,?)');
  // The key ID is the last 16 digits of a v4 fingerprint and the first 16 of a v6 one (RFC 9580 §5.5.4).
  for (const f of fingerprints) {
    const fpr = f.toUpperCase();
    insert.run(listId, addr, fpr, fpr.length === 64 ? fpr.slice(0, 16) : fpr.slice(-16));
  }
}

/** Members whose key-ID rows are missing (data folders made before the index): filled at start. */
export function membersWithoutKeyIds(db: Db, limit: number): Array<{ listId: number; address: string; publicKey: string }> {
  return (db.prepare(`SELECT list_id, address, public_key FROM members m WHERE NOT EXISTS
    (SELECT 1 FROM member_key_ids k WHERE k.list_id = m.list_id AND k.address = m.address) LIMIT ?`).all(limit) as Array<{ list_id: number; address: string; public_key: string }>)
    .map((r) => ({ listId: r.list_id, address: r.address, publicKey: r.public_key }));
}

export function removeMember(db: Db, listId: number, address: string): boolean {
  db.prepare('DELETE FROM member_key_ids WHERE list_id = ? AND address = ?').run(listId, address.toLowerCase());
  return db.prepare('DELETE FROM members WHERE list_id = ? AND address = ?').run(listId, address.toLowerCase()).changes > 0;
}

export function getMember(db: Db, listId: number, address: string): MemberRecord | null {
  const r = db.prepare('SELECT * FROM members WHERE list_id = ? AND address = ?').get(listId, address.toLowerCase()) as Row | undefined;
  return r ? fromRow(r) : null;
}

/** The member whose key (primary or any subkey) has this fingerprint or key ID (upper-case hex). */
export function findMemberByKeyId(db: Db, listId: number, id: string): MemberRecord | null {
  const r = (db.prepare(`SELECT m.* FROM member_key_ids k JOIN members m ON m.list_id = k.list_id AND m.address = k.address
      WHERE k.list_id = ? AND ${id.length > 16 ? 'k.fingerprint' : 'k.key_id'} = ? LIMIT 1`).get(listId, id)
    // Rows not yet in the index (see membersWithoutKeyIds): the primary key still finds them
    // (a v4 key ID is the fingerprint's last 16 digits, a v6 key ID its first 16).
    ?? db.prepare(`SELECT * FROM members WHERE list_id = ? AND (fingerprint = ?
      OR (length(fingerprint) = 40 AND substr(fingerprint, 25) = ?) OR (length(fingerprint) = 64 AND substr(fingerprint, 1, 16) = ?)) LIMIT 1`).get(listId, id, id, id)) as Row | undefined;
  return r ? fromRow(r) : null;
}

export function countMembers(db: Db, listId: number): number {
  return (db.prepare('SELECT count(*) AS n FROM members WHERE list_id = ?').get(listId) as { n: number }).n;
}

/** Members in address order, in pages, so a large list is never loaded at once. */
export function* iterateMembers(db: Db, listId: number, pageSize = 1000, startAfter = ''): Generator<MemberRecord[]> {
  let after = startAfter;
  const stmt = db.prepare('SELECT * FROM members WHERE list_id = ? AND address > ? ORDER BY address LIMIT ?');
  for (;;) {
    const rows = (stmt.all(listId, after, pageSize) as Row[]).map(fromRow);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.address;
  }
}
