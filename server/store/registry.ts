// The key registry's and the archive's own state: pending subscriptions and
// other single-use tokens, members awaiting a moderator, delivery preferences,
// archive log-in challenges and sessions, seen request nonces, key-expiry
// warnings, and thread roots. Tokens are stored only as SHA-256 hashes, so a
// copy of the database cannot be used to confirm, unsubscribe or log in.

import type { Sql } from './sql.ts';

// ---- single-use tokens --------------------------------------------------------

export interface PendingToken {
  purpose: 'subscribe' | 'unsubscribe';
  listId: number;
  address: string;
  fingerprint: string | null;
  publicKey: string | null;
  delivery: string | null;
  expiresAt: number;
  usedAt: number | null;
}

export async function insertPendingToken(sql: Sql, tokenHash: string, t: Omit<PendingToken, 'usedAt'>): Promise<void> {
  await sql.run(`INSERT INTO pending_tokens (token_hash, purpose, list_id, address, fingerprint, public_key, delivery, created_at, expires_at)
    VALUES (?,?,?,?,?,?,?,?,?)`, [tokenHash, t.purpose, t.listId, t.address, t.fingerprint, t.publicKey, t.delivery, Date.now(), t.expiresAt]);
}

/** Marks the token used and returns it, atomically: a second use finds it used. */
export async function takePendingToken(sql: Sql, tokenHash: string, purpose: PendingToken['purpose'], now: number): Promise<PendingToken | null> {
  // One conditional UPDATE: of two concurrent uses, only one changes the row.
  const r = await sql.get<{ purpose: PendingToken['purpose']; list_id: number; address: string; fingerprint: string | null; public_key: string | null; delivery: string | null; expires_at: number }>(
    `UPDATE pending_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?
     RETURNING purpose, list_id, address, fingerprint, public_key, delivery, expires_at`, [now, tokenHash, purpose, now]);
  if (!r) return null;
  return { purpose: r.purpose, listId: r.list_id, address: r.address, fingerprint: r.fingerprint, publicKey: r.public_key, delivery: r.delivery, expiresAt: r.expires_at, usedAt: now };
}

/** Unconfirmed, unexpired subscriptions: of one list, or (listId null) of all. */
export async function countPendingSubscriptions(sql: Sql, listId: number | null, now: number): Promise<{ n: number; soonest: number | null }> {
  const r = listId === null
    ? await sql.get<{ n: number; soonest: number | null }>(`SELECT count(*) AS n, min(expires_at) AS soonest FROM pending_tokens WHERE expires_at > ? AND purpose = 'subscribe' AND used_at IS NULL`, [now])
    : await sql.get<{ n: number; soonest: number | null }>(`SELECT count(*) AS n, min(expires_at) AS soonest FROM pending_tokens WHERE list_id = ? AND expires_at > ? AND purpose = 'subscribe' AND used_at IS NULL`, [listId, now]);
  return r!;
}

// ---- members awaiting approval, delivery preferences -----------------------------

export interface PendingMember {
  listId: number;
  address: string;
  fingerprint: string;
  publicKey: string;
  delivery: string;
}

export async function upsertPendingMember(sql: Sql, m: PendingMember): Promise<void> {
  await sql.run(`INSERT INTO pending_members (list_id, address, fingerprint, public_key, delivery, requested_at) VALUES (?,?,?,?,?,?)
    ON CONFLICT (list_id, address) DO UPDATE SET fingerprint = excluded.fingerprint, public_key = excluded.public_key,
    delivery = excluded.delivery, requested_at = excluded.requested_at`, [m.listId, m.address, m.fingerprint, m.publicKey, m.delivery, Date.now()]);
}

export async function getPendingMember(sql: Sql, listId: number, address: string): Promise<PendingMember | null> {
  const r = await sql.get<{ list_id: number; address: string; fingerprint: string; public_key: string; delivery: string }>(
    'SELECT list_id, address, fingerprint, public_key, delivery FROM pending_members WHERE list_id = ? AND address = ?', [listId, address]);
  return r ? { listId: r.list_id, address: r.address, fingerprint: r.fingerprint, publicKey: r.public_key, delivery: r.delivery } : null;
}

export async function listPendingMembers(sql: Sql, listId: number): Promise<Array<{ address: string; fingerprint: string; requestedAt: string }>> {
  return (await sql.all<{ address: string; fingerprint: string; requested_at: number }>('SELECT address, fingerprint, requested_at FROM pending_members WHERE list_id = ? ORDER BY requested_at', [listId]))
    .map((r) => ({ address: r.address, fingerprint: r.fingerprint, requestedAt: new Date(r.requested_at).toISOString() }));
}

export async function deletePendingMember(sql: Sql, listId: number, address: string): Promise<boolean> {
  return (await sql.run('DELETE FROM pending_members WHERE list_id = ? AND address = ?', [listId, address])).changes > 0;
}

export async function setDeliveryPreference(sql: Sql, listId: number, address: string, delivery: 'pgp-mime' | 'inline'): Promise<void> {
  await sql.run(`INSERT INTO member_prefs (list_id, address, delivery) VALUES (?,?,?)
    ON CONFLICT (list_id, address) DO UPDATE SET delivery = excluded.delivery`, [listId, address, delivery]);
}

export async function getDeliveryPreference(sql: Sql, listId: number, address: string): Promise<'pgp-mime' | 'inline'> {
  const r = await sql.get<{ delivery: 'pgp-mime' | 'inline' }>('SELECT delivery FROM member_prefs WHERE list_id = ? AND address = ?', [listId, address]);
  return r?.delivery ?? 'pgp-mime';
}

// ---- archive log-in ------------------------------------------------------------------

export async function insertChallenge(sql: Sql, idHash: string, listId: number, address: string, statement: string, expiresAt: number): Promise<void> {
  await sql.run('INSERT INTO challenges (id_hash, list_id, address, statement, expires_at) VALUES (?,?,?,?,?)', [idHash, listId, address, statement, expiresAt]);
}

/** Single use: the challenge is spent (deleted) by the first attempt, right or wrong. */
export async function takeChallenge(sql: Sql, idHash: string, listId: number, now: number): Promise<{ address: string; statement: string; expiresAt: number } | null> {
  const r = await sql.get<{ address: string; statement: string; expires_at: number; used_at: number | null }>(
    'DELETE FROM challenges WHERE id_hash = ? AND list_id = ? RETURNING address, statement, expires_at, used_at', [idHash, listId]);
  if (!r || r.used_at !== null) return null;
  return r.expires_at > now ? { address: r.address, statement: r.statement, expiresAt: r.expires_at } : null;
}

/** Challenges not yet used nor expired, and when the first of them expires. */
export async function countPendingChallenges(sql: Sql, now: number): Promise<{ n: number; soonest: number | null }> {
  return (await sql.get<{ n: number; soonest: number | null }>('SELECT count(*) AS n, min(expires_at) AS soonest FROM challenges WHERE expires_at > ? AND used_at IS NULL', [now]))!;
}

export async function insertSession(sql: Sql, tokenHash: string, listId: number, address: string, fingerprint: string, expiresAt: number): Promise<void> {
  await sql.run('INSERT INTO sessions (token_hash, list_id, address, fingerprint, created_at, expires_at) VALUES (?,?,?,?,?,?)',
    [tokenHash, listId, address, fingerprint, Date.now(), expiresAt]);
}

export async function getSession(sql: Sql, tokenHash: string, now: number): Promise<{ listId: number; address: string; fingerprint: string } | null> {
  const r = await sql.get<{ list_id: number; address: string; fingerprint: string; expires_at: number }>('SELECT list_id, address, fingerprint, expires_at FROM sessions WHERE token_hash = ?', [tokenHash]);
  return r && r.expires_at > now ? { listId: r.list_id, address: r.address, fingerprint: r.fingerprint } : null;
}

export async function deleteSessions(sql: Sql, listId: number, address: string): Promise<number> {
  return (await sql.run('DELETE FROM sessions WHERE list_id = ? AND address = ?', [listId, address])).changes;
}

/** Nonces are kept this long: far beyond the clock skew a signed request may have. */
export const NONCE_KEEP_MS = 86_400_000;

/**
 * Housekeeping: deletes up to `chunk` stale rows from each table (expired or used
 * challenges and tokens, expired sessions, old nonces, past rate-limit rows) and
 * says whether any table may hold more, so a caller can go on after yielding.
 * Rows are picked by their keys (no rowid: the same statements run on PostgreSQL).
 */
export async function purgeStale(sql: Sql, now: number, chunk = 5000): Promise<{ deleted: number; more: boolean }> {
  const statements: Array<[string, number]> = [
    ['DELETE FROM challenges WHERE id_hash IN (SELECT id_hash FROM challenges WHERE expires_at <= ? OR used_at IS NOT NULL LIMIT ?)', now],
    ['DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at <= ? LIMIT ?)', now],
    ['DELETE FROM pending_tokens WHERE token_hash IN (SELECT token_hash FROM pending_tokens WHERE expires_at <= ? OR used_at IS NOT NULL LIMIT ?)', now],
    ['DELETE FROM request_nonces WHERE (list_id, nonce) IN (SELECT list_id, nonce FROM request_nonces WHERE seen_at < ? LIMIT ?)', now - NONCE_KEEP_MS],
    // rate_events has no key: rows are picked by all their columns (exact duplicates, both past, go together).
    ['DELETE FROM rate_events WHERE (bucket, key, at, until) IN (SELECT bucket, key, at, until FROM rate_events WHERE until <= ? LIMIT ?)', now],
  ];
  let deleted = 0;
  let more = false;
  for (const [text, before] of statements) {
    const n = (await sql.run(text, [before, chunk])).changes;
    deleted += n;
    if (n >= chunk) more = true;
  }
  return { deleted, more };
}

// ---- rate-limit events -----------------------------------------------------------------

/** Events of one limit key since `since`, and the time of the `nth` oldest of them (0-based). */
/**
 * PostgreSQL: holds each (kind, key) for the rest of the transaction, so two
 * connections or nodes that check and then write the same thing (a rate count, a
 * post's Message-ID) take turns (READ COMMITTED would let both see room for one).
 * SQLite's transactions already take turns. Sorted, so no two callers wait on
 * each other in opposite orders.
 */
export async function lockKeys(sql: Sql, pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
  if (sql.dialect !== 'postgres') return;
  for (const name of [...new Set(pairs.map(([b, k]) => `${b}\n${k}`))].sort()) {
    await sql.get('SELECT pg_advisory_xact_lock(hashtextextended(CAST(? AS TEXT), 0)) AS locked', [name]);
  }
}

export async function rateWindow(sql: Sql, bucket: string, key: string, since: number, nth: number): Promise<{ n: number; at: number | null }> {
  const { n } = (await sql.get<{ n: number }>('SELECT count(*) AS n FROM rate_events WHERE bucket = ? AND key = ? AND at > ?', [bucket, key, since]))!;
  const row = await sql.get<{ at: number }>('SELECT at FROM rate_events WHERE bucket = ? AND key = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?', [bucket, key, since, Math.max(0, nth)]);
  return { n, at: row?.at ?? null };
}

export async function addRateEvent(sql: Sql, bucket: string, key: string, at: number, until: number): Promise<void> {
  await sql.run('INSERT INTO rate_events (bucket, key, at, until) VALUES (?,?,?,?)', [bucket, key, at, until]);
}

/** Records a signed request's nonce; false when it was seen before (a replay). */
export async function recordNonce(sql: Sql, listId: number, nonce: string, now: number): Promise<boolean> {
  return (await sql.run('INSERT INTO request_nonces (list_id, nonce, seen_at) VALUES (?,?,?) ON CONFLICT DO NOTHING', [listId, nonce, now])).changes === 1;
}

// ---- key expiry warnings ----------------------------------------------------------------

export async function wasWarned(sql: Sql, listId: number, address: string, fingerprint: string): Promise<boolean> {
  return (await sql.get('SELECT 1 AS one FROM key_warnings WHERE list_id = ? AND address = ? AND fingerprint = ?', [listId, address, fingerprint])) !== undefined;
}

export async function recordWarning(sql: Sql, listId: number, address: string, fingerprint: string, now: number): Promise<void> {
  await sql.run(`INSERT INTO key_warnings (list_id, address, fingerprint, warned_at) VALUES (?,?,?,?)
    ON CONFLICT (list_id, address, fingerprint) DO UPDATE SET warned_at = excluded.warned_at`, [listId, address, fingerprint, now]);
}

/**
 * Inserts a log-in challenge unless `cap` unused, unexpired ones are pending on the
 * server: the count and the insert in one transaction, so concurrent requests
 * cannot pass the cap together. Null when inserted, else the pending count.
 */
export async function insertChallengeUnderCap(sql: Sql, cap: number, now: number, idHash: string, listId: number, address: string, statement: string, expiresAt: number): Promise<{ n: number; soonest: number | null } | null> {
  return sql.tx(async () => {
    const pending = await countPendingChallenges(sql, now);
    if (pending.n >= cap) return pending;
    await insertChallenge(sql, idHash, listId, address, statement, expiresAt);
    return null;
  });
}
