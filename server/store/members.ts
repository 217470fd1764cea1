// Members of a list and their registered keys. The encryption key packet is kept
// beside the armored key so a post is wrapped without re-parsing and re-verifying
// thousands of keys: the key policy ran once, when the key was registered.

import type { Sql } from './sql.ts';

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
 * member's rows in the key-ID index when given (both in one transaction).
 */
export async function upsertMember(sql: Sql, m: MemberRecord, keyFingerprints?: readonly string[]): Promise<void> {
  const write = async () => {
    await sql.run(`INSERT INTO members (list_id, address, fingerprint, public_key, encryption_key, expires_at, key_state, added_at)
      VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (list_id, address) DO UPDATE SET fingerprint = excluded.fingerprint,
      public_key = excluded.public_key, encryption_key = excluded.encryption_key, expires_at = excluded.expires_at,
      key_state = excluded.key_state`, [m.listId, m.address.toLowerCase(), m.fingerprint, m.publicKey, Buffer.from(m.encryptionKey),
      m.expiresAt, m.keyState, Date.now()]);
    if (keyFingerprints) await setMemberKeyIds(sql, m.listId, m.address, keyFingerprints);
  };
  if (keyFingerprints && !sql.inTx()) await sql.tx(write);
  else await write();
}

export async function setMemberKeyIds(sql: Sql, listId: number, address: string, fingerprints: readonly string[]): Promise<void> {
  const addr = address.toLowerCase();
  await sql.tx(async () => {
    await sql.run('DELETE FROM member_key_ids WHERE list_id = ? AND address = ?', [listId, addr]);
    // The key ID is the last 16 digits of a v4 fingerprint and the first 16 of a v6 one (RFC 9580 §5.5.4).
    for (const f of fingerprints) {
      const fpr = f.toUpperCase();
      await sql.run('INSERT INTO member_key_ids (list_id, address, fingerprint, key_id) VALUES (?,?,?,?) ON CONFLICT DO NOTHING',
        [listId, addr, fpr, fpr.length === 64 ? fpr.slice(0, 16) : fpr.slice(-16)]);
    }
  });
}

/** Members whose key-ID rows are missing (data folders made before the index): filled at start. */
export async function membersWithoutKeyIds(sql: Sql, limit: number): Promise<Array<{ listId: number; address: string; publicKey: string }>> {
  return (await sql.all<{ list_id: number; address: string; public_key: string }>(`SELECT list_id, address, public_key FROM members m WHERE NOT EXISTS
    (SELECT 1 FROM member_key_ids k WHERE k.list_id = m.list_id AND k.address = m.address) LIMIT ?`, [limit]))
    .map((r) => ({ listId: r.list_id, address: r.address, publicKey: r.public_key }));
}

export async function removeMember(sql: Sql, listId: number, address: string): Promise<boolean> {
  return sql.tx(async () => {
    await sql.run('DELETE FROM member_key_ids WHERE list_id = ? AND address = ?', [listId, address.toLowerCase()]);
    return (await sql.run('DELETE FROM members WHERE list_id = ? AND address = ?', [listId, address.toLowerCase()])).changes > 0;
  });
}

export async function getMember(sql: Sql, listId: number, address: string): Promise<MemberRecord | null> {
  const r = await sql.get<Row>('SELECT * FROM members WHERE list_id = ? AND address = ?', [listId, address.toLowerCase()]);
  return r ? fromRow(r) : null;
}

/** The member whose key (primary or any subkey) has this fingerprint or key ID (upper-case hex). */
export async function findMemberByKeyId(sql: Sql, listId: number, id: string): Promise<MemberRecord | null> {
  const r = (await sql.get<Row>(`SELECT m.* FROM member_key_ids k JOIN members m ON m.list_id = k.list_id AND m.address = k.address
      WHERE k.list_id = ? AND ${id.length > 16 ? 'k.fingerprint' : 'k.key_id'} = ? LIMIT 1`, [listId, id]))
    // Rows not yet in the index (see membersWithoutKeyIds): the primary key still finds them
    // (a v4 key ID is the fingerprint's last 16 digits, a v6 key ID its first 16).
    ?? await sql.get<Row>(`SELECT * FROM members WHERE list_id = ? AND (fingerprint = ?
      OR (length(fingerprint) = 40 AND substr(fingerprint, 25) = ?) OR (length(fingerprint) = 64 AND substr(fingerprint, 1, 16) = ?)) LIMIT 1`, [listId, id, id, id]);
  return r ? fromRow(r) : null;
}

/** The address of the member whose primary key has this fingerprint. */
export async function memberAddressByFingerprint(sql: Sql, listId: number, fingerprint: string): Promise<string | null> {
  return (await sql.get<{ address: string }>('SELECT address FROM members WHERE list_id = ? AND fingerprint = ? LIMIT 1', [listId, fingerprint]))?.address ?? null;
}

export async function countMembers(sql: Sql, listId: number): Promise<number> {
  return (await sql.get<{ n: number }>('SELECT count(*) AS n FROM members WHERE list_id = ?', [listId]))!.n;
}

/** All member addresses of a list, in order. */
export async function memberAddresses(sql: Sql, listId: number): Promise<string[]> {
  return (await sql.all<{ address: string }>('SELECT address FROM members WHERE list_id = ? ORDER BY address', [listId])).map((r) => r.address);
}

/** One page of members for the operator API: address order, after `after`. */
export async function memberPage(sql: Sql, listId: number, after: string, limit: number): Promise<Array<{ address: string; fingerprint: string; key_state: string; expires_at: number | null }>> {
  return sql.all('SELECT address, fingerprint, key_state, expires_at FROM members WHERE list_id = ? AND address > ? ORDER BY address LIMIT ?', [listId, after, limit]);
}

/** Valid keys of a list that expire by `horizon`: up to `limit` of them (soonest first), and how many in all. */
export async function expiringKeys(sql: Sql, listId: number, horizon: number, limit: number): Promise<{ rows: Array<{ address: string; fingerprint: string; expiresAt: number }>; total: number }> {
  const rows = (await sql.all<{ address: string; fingerprint: string; expires_at: number }>(`SELECT address, fingerprint, expires_at FROM members WHERE list_id = ? AND key_state = 'valid'
    AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, address LIMIT ?`, [listId, horizon, limit]))
    .map((r) => ({ address: r.address, fingerprint: r.fingerprint, expiresAt: r.expires_at }));
  const total = (await sql.get<{ n: number }>(`SELECT count(*) AS n FROM members WHERE list_id = ? AND key_state = 'valid' AND expires_at IS NOT NULL AND expires_at <= ?`, [listId, horizon]))!.n;
  return { rows, total };
}

/** Members in address order, in pages, so a large list is never loaded at once. */
export async function* iterateMembers(sql: Sql, listId: number, pageSize = 1000, startAfter = ''): AsyncGenerator<MemberRecord[]> {
  let after = startAfter;
  for (;;) {
    const rows = (await sql.all<Row>('SELECT * FROM members WHERE list_id = ? AND address > ? ORDER BY address LIMIT ?', [listId, after, pageSize])).map(fromRow);
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1]!.address;
  }
}
