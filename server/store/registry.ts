// The key registry's and the archive's own state: pending subscriptions and
// other single-use tokens, members awaiting a moderator, delivery preferences,
// archive log-in challenges and sessions, seen request nonces, key-expiry
// warnings, and thread roots. Tokens are stored only as SHA-256 hashes, so a
// copy of the database cannot be used to confirm, unsubscribe or log in.

import type { Db } from './db.ts';
import type { Statement } from 'better-sqlite3';

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

export function insertPendingToken(db: Db, tokenHash: string, t: Omit<PendingToken, 'usedAt'>): void {
  db.prepare(`INSERT INTO pending_tokens (token_hash, purpose, list_id, address, fingerprint, public_key, delivery, created_at, expires_at)
    VALUES (?,?,?,?,?,?,?,?,?)`).run(tokenHash, t.purpose, t.listId, t.address, t.fingerprint, t.publicKey, t.delivery, Date.now(), t.expiresAt);
}

/** Marks the token used and returns it, atomically: a second use finds it used. */
export function takePendingToken(db: Db, tokenHash: string, purpose: PendingToken['purpose'], now: number): PendingToken | null {
  return db.transaction(() => {
    const r = db.prepare('SELECT * FROM pending_tokens WHERE token_hash = ? AND purpose = ?').get(tokenHash, purpose) as
      | { purpose: PendingToken['purpose']; list_id: number; address: string; fingerprint: string | null; public_key: string | null; delivery: string | null; expires_at: number; used_at: number | null }
      | undefined;
    if (!r || r.used_at !== null || r.expires_at <= now) return null;
    db.prepare('UPDATE pending_tokens SET used_at = ? WHERE token_hash = ?').run(now, tokenHash);
    return { purpose: r.purpose, listId: r.list_id, address: r.address, fingerprint: r.fingerprint, publicKey: r.public_key, delivery: r.delivery, expiresAt: r.expires_at, usedAt: now };
  })();
}

/** Unconfirmed, unexpired subscriptions: of one list, or (listId null) of all. */
export function countPendingSubscriptions(db: Db, listId: number | null, now: number): { n: number; soonest: number | null } {
  const r = (listId === null
    ? db.prepare(`SELECT count(*) AS n, min(expires_at) AS soonest FROM pending_tokens WHERE expires_at > ? AND purpose = 'subscribe' AND used_at IS NULL`).get(now)
    : db.prepare(`SELECT count(*) AS n, min(expires_at) AS soonest FROM pending_tokens WHERE list_id = ? AND expires_at > ? AND purpose = 'subscribe' AND used_at IS NULL`).get(listId, now)) as { n: number; soonest: number | null };
  return r;
}

// ---- members awaiting approval, delivery preferences -----------------------------

export interface PendingMember {
  listId: number;
  address: string;
  fingerprint: string;
  publicKey: string;
  delivery: string;
}

export function upsertPendingMember(db: Db, m: PendingMember): void {
  db.prepare(`INSERT INTO pending_members (list_id, address, fingerprint, public_key, delivery, requested_at) VALUES (?,?,?,?,?,?)
    ON CONFLICT(list_id, address) DO UPDATE SET fingerprint = excluded.fingerprint, public_key = excluded.public_key,
    delivery = excluded.delivery, requested_at = excluded.requested_at`).run(m.listId, m.address, m.fingerprint, m.publicKey, m.delivery, Date.now());
}

export function getPendingMember(db: Db, listId: number, address: string): PendingMember | null {
  const r = db.prepare('SELECT list_id, address, fingerprint, public_key, delivery FROM pending_members WHERE list_id = ? AND address = ?').get(listId, address) as
    | { list_id: number; address: string; fingerprint: string; public_key: string; delivery: string }
    | undefined;
  return r ? { listId: r.list_id, address: r.address, fingerprint: r.fingerprint, publicKey: r.public_key, delivery: r.delivery } : null;
}

export function listPendingMembers(db: Db, listId: number): Array<{ address: string; fingerprint: string; requestedAt: string }> {
  return (db.prepare('SELECT address, fingerprint, requested_at FROM pending_members WHERE list_id = ? ORDER BY requested_at').all(listId) as Array<{ address: string; fingerprint: string; requested_at: number }>)
    .map((r) => ({ address: r.address, fingerprint: r.fingerprint, requestedAt: new Date(r.requested_at).toISOString() }));
}

export function deletePendingMember(db: Db, listId: number, address: string): boolean {
  return db.prepare('DELETE FROM pending_members WHERE list_id = ? AND address = ?').run(listId, address).changes > 0;
}

export function setDeliveryPreference(db: Db, listId: number, address: string, delivery: 'pgp-mime' | 'inline'): void {
  db.prepare(`INSERT INTO member_prefs (list_id, address, delivery) VALUES (?,?,?)
    ON CONFLICT(list_id, address) DO UPDATE SET delivery = excluded.delivery`).run(listId, address, delivery);
}

// Read once per delivered copy: the statement is prepared once per database.
const preferenceStatements = new WeakMap<Db, Statement<[number, string]>>();

export function getDeliveryPreference(db: Db, listId: number, address: string): 'pgp-mime' | 'inline' {
  let stmt = preferenceStatements.get(db);
  if (!stmt) {
    stmt = db.prepare('SELECT delivery FROM member_prefs WHERE list_id = ? AND address = ?');
    preferenceStatements.set(db, stmt);
  }
  const r = stmt.get(listId, address) as { delivery: 'pgp-mime' | 'inline' } | undefined;
  return r?.delivery ?? 'pgp-mime';
}

// ---- archive log-in ------------------------------------------------------------------

export function insertChallenge(db: Db, idHash: string, listId: number, address: string, statement: string, expiresAt: number): void {
  db.prepare('INSERT INTO challenges (id_hash, list_id, address, statement, expires_at) VALUES (?,?,?,?,?)').run(idHash, listId, address, statement, expiresAt);
}

/** Single use: the challenge is spent (deleted) by the first attempt, right or wrong. */
export function takeChallenge(db: Db, idHash: string, listId: number, now: number): { address: string; statement: string; expiresAt: number } | null {
  const r = db.prepare('DELETE FROM challenges WHERE id_hash = ? AND list_id = ? RETURNING address, statement, expires_at, used_at').get(idHash, listId) as
    | { address: string; statement: string; expires_at: number; used_at: number | null }
    | undefined;
  if (!r || r.used_at !== null) return null;
  return r.expires_at > now ? { address: r.address, statement: r.statement, expiresAt: r.expires_at } : null;
}

/** Challenges not yet used nor expired, and when the first of them expires. */
export function countPendingChallenges(db: Db, now: number): { n: number; soonest: number | null } {
  return db.prepare('SELECT count(*) AS n, min(expires_at) AS soonest FROM challenges WHERE expires_at > ? AND used_at IS NULL').get(now) as { n: number; soonest: number | null };
}

export function insertSession(db: Db, tokenHash: string, listId: number, address: string, fingerprint: string, expiresAt: number): void {
  db.prepare('INSERT INTO sessions (token_hash, list_id, address, fingerprint, created_at, expires_at) VALUES (?,?,?,?,?,?)')
    .run(tokenHash, listId, address, fingerprint, Date.now(), expiresAt);
}

export function getSession(db: Db, tokenHash: string, now: number): { listId: number; address: string; fingerprint: string } | null {
  const r = db.prepare('SELECT list_id, address, fingerprint, expires_at FROM sessions WHERE token_hash = ?').get(tokenHash) as
    | { list_id: number; address: string; fingerprint: string; expires_at: number }
    | undefined;
  return r && r.expires_at > now ? { listId: r.list_id, address: r.address, fingerprint: r.fingerprint } : null;
}

export function deleteSessions(db: Db, listId: number, address: string): number {
  return db.prepare('DELETE FROM sessions WHERE list_id = ? AND address = ?').run(listId, address).changes;
}

/** Nonces are kept this long: far beyond the clock skew a signed request may have. */
export const NONCE_KEEP_MS = 86_400_000;

/**
 * Housekeeping: deletes up to `chunk` stale rows from each table (expired or used
 * challenges and tokens, expired sessions, old nonces, past rate-limit rows) and
 * says whether any table may hold more, so a caller can go on after yielding.
 */
export function purgeStale(db: Db, now: number, chunk = 5000): { deleted: number; more: boolean } {
  const statements: Array<[string, unknown[]]> = [
    ['DELETE FROM challenges WHERE rowid IN (SELECT rowid FROM challenges WHERE expires_at <= ? OR used_at IS NOT NULL LIMIT ?)', [now]],
    ['DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE expires_at <= ? LIMIT ?)', [now]],
    ['DELETE FROM pending_tokens WHERE rowid IN (SELECT rowid FROM pending_tokens WHERE expires_at <= ? OR used_at IS NOT NULL LIMIT ?)', [now]],
    ['DELETE FROM request_nonces WHERE rowid IN (SELECT rowid FROM request_nonces WHERE seen_at < ? LIMIT ?)', [now - NONCE_KEEP_MS]],
    ['DELETE FROM rate_events WHERE rowid IN (SELECT rowid FROM rate_events WHERE until <= ? LIMIT ?)', [now]],
  ];
  let deleted = 0;
  let more = false;
  for (const [sql, args] of statements) {
    const n = db.prepare(sql).run(...args, chunk).changes;
    deleted += n;
    if (n >= chunk) more = true;
  }
  return { deleted, more };
}

// ---- rate-limit events -----------------------------------------------------------------

/** Events of one limit key since `since`, and the time of the `nth` oldest of them (0-based). */
export function rateWindow(db: Db, bucket: string, key: string, since: number, nth: number): { n: number; at: number | null } {
  const { n } = db.prepare('SELECT count(*) AS n FROM rate_events WHERE bucket = ? AND key = ? AND at > ?').get(bucket, key, since) as { n: number };
  const row = db.prepare('SELECT at FROM rate_events WHERE bucket = ? AND key = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?').get(bucket, key, since, Math.max(0, nth)) as { at: number } | undefined;
  return { n, at: row?.at ?? null };
}

export function addRateEvent(db: Db, bucket: string, key: string, at: number, until: number): void {
  db.prepare('INSERT INTO rate_events (bucket, key, at, until) VALUES (?,?,?,?)').run(bucket, key, at, until);
}

/** Records a signed request's nonce; false when it was seen before (a replay). */
export function recordNonce(db: Db, listId: number, nonce: string, now: number): boolean {
  return db.prepare('INSERT OR IGNORE INTO request_nonces (list_id, nonce, seen_at) VALUES (?,?,?)').run(listId, nonce, now).changes === 1;
}

// ---- key expiry warnings ----------------------------------------------------------------

export function wasWarned(db: Db, listId: number, address: string, fingerprint: string): boolean {
  return db.prepare('SELECT 1 FROM key_warnings WHERE list_id = ? AND address = ? AND fingerprint = ?').get(listId, address, fingerprint) !== undefined;
}

export function recordWarning(db: Db, listId: number, address: string, fingerprint: string, now: number): void {
  db.prepare('INSERT OR REPLACE INTO key_warnings (list_id, address, fingerprint, warned_at) VALUES (?,?,?,?)').run(listId, address, fingerprint, now);
}
