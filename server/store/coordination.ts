// Several nodes on one database: periodic jobs that run once across them, and
// delivery rows claimed under a lease so a node that dies leaves its rows to the
// others. Both work on SQLite too (one node: the lock is not needed, the lease
// columns are kept the same way), so the queue can use one set of calls.
//
// Leases. A claimed row ('sending') records who claimed it (claimed_by, a node
// id stable across that node's restarts) and until when (claimed_until, ms by the
// claiming node's clock; nodes are expected to keep NTP time, and a lease is
// minutes long against milliseconds of skew). A node
//   - at start, takes back its own rows (recoverOwnClaims): its previous run died
//     with them in flight;
//   - while it has rows in flight, renews its leases (renewLeases) well within the lease;
//   - now and then, takes back every row whose lease ran out (reclaimExpired): a
//     node that died and did not come back.
// Every row taken back is counted in resent_after_crash: it may have reached the
// relay before its node died (the in-flight window). Marking a row done is fenced
// by claimed_by, so a node whose lease was taken from it (a long pause) cannot
// mark a row another node now owns.

import { createHash } from 'node:crypto';
import type { DeliveryRow } from './delivery-row.ts';
import type pg from 'pg';
import { cleanError, PgSql } from './sql-pg.ts';
import type { Sql, SqlParam } from './sql.ts';

// The columns and the job_runs table are schema step 2 on PostgreSQL
// (migrations-pg.ts) and SQLITE_LEASE_STEP there for SQLite's migrations.ts.

/** A lease long enough for a batch's SMTP round trips; renewed every third of it. */
export const DEFAULT_LEASE_MS = 120_000;
const MAX_BATCH = 1000;
const MAX_NODE_ID = 200;

function checkNode(nodeId: string): void {
  if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId.length > MAX_NODE_ID) throw new Error(`a node id is 1 to ${MAX_NODE_ID} characters`);
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH) throw new Error(`a batch is 1 to ${MAX_BATCH} rows`);
}

const FORM = '(SELECT delivery FROM member_prefs p WHERE p.list_id = deliveries.list_id AND p.address = deliveries.rcpt) AS form';

/**
 * PostgreSQL: the due rows no other node is claiming this instant (SKIP LOCKED: a
 * node never waits on another's claim, and two claims never get the same row).
 * ORDER BY next_at, id walks deliveries_due (state, next_at, id) and stops at the limit.
 */
const PG_CLAIM = `WITH due AS (
    SELECT id FROM deliveries WHERE state = 'queued' AND next_at <= ?
    ORDER BY next_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
  UPDATE deliveries SET state = 'sending', claimed_by = ?, claimed_until = ?
  FROM due WHERE deliveries.id = due.id
  RETURNING deliveries.id, deliveries.list_id, deliveries.post_id, deliveries.kind, deliveries.rcpt, deliveries.pkesk,
    deliveries.mail, deliveries.attempts, deliveries.created_at, ${FORM}`;

/** SQLite: one writer at a time, so the claim of queue.ts with the lease added. */
const SQLITE_CLAIM = `UPDATE deliveries SET state = 'sending', claimed_by = ?, claimed_until = ? WHERE id IN (
    SELECT id FROM deliveries WHERE state = 'queued' AND next_at <= ? ORDER BY next_at, id LIMIT ?)
  RETURNING id, list_id, post_id, kind, rcpt, pkesk, mail, attempts, created_at, ${FORM}`;

export interface ClaimOptions {
  nodeId: string;
  now: number;
  limit: number;
  /** Default DEFAULT_LEASE_MS. */
  leaseMs?: number;
}

/** The rows due longest, marked 'sending' under this node's lease, in id order. */
export async function claimDeliveries(sql: Sql, o: ClaimOptions): Promise<DeliveryRow[]> {
  checkNode(o.nodeId);
  checkLimit(o.limit);
  const until = o.now + (o.leaseMs ?? DEFAULT_LEASE_MS);
  const rows = sql.dialect === 'postgres'
    ? await sql.all<DeliveryRow>(PG_CLAIM, [o.now, o.limit, o.nodeId, until])
    : await sql.all<DeliveryRow>(SQLITE_CLAIM, [o.nodeId, until, o.now, o.limit]);
  // RETURNING gives no order: sort here (a small batch).
  return rows.sort((a, b) => a.id - b.id);
}

/** Extends every lease this node holds to `until`; the number of rows. */
export async function renewLeases(sql: Sql, nodeId: string, until: number): Promise<number> {
  checkNode(nodeId);
  return (await sql.run("UPDATE deliveries SET claimed_until = ? WHERE state = 'sending' AND claimed_by = ?", [until, nodeId])).changes;
}

/** At start: this node's rows left in flight by its previous run go back to the queue, counted. */
export async function recoverOwnClaims(sql: Sql, nodeId: string): Promise<number> {
  checkNode(nodeId);
  return (await sql.run(`UPDATE deliveries SET state = 'queued', claimed_by = NULL, claimed_until = NULL,
    resent_after_crash = resent_after_crash + 1 WHERE state = 'sending' AND claimed_by = ?`, [nodeId])).changes;
}

/**
 * Rows whose lease ran out (their node died or stalled) go back to the queue,
 * counted. A row in flight with no lease at all was claimed before leases
 * existed (the single-node queue): taken back too.
 */
export async function reclaimExpired(sql: Sql, now: number): Promise<number> {
  return (await sql.run(`UPDATE deliveries SET state = 'queued', claimed_by = NULL, claimed_until = NULL,
    resent_after_crash = resent_after_crash + 1
    WHERE state = 'sending' AND (claimed_until IS NULL OR claimed_until < ?)`, [now])).changes;
}

/** Runs f over ids in chunks, with one `?` per id (SqlParam has no arrays). */
async function inChunks(ids: readonly number[], f: (marks: string, chunk: number[]) => Promise<number>): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    n += await f(chunk.map(() => '?').join(','), chunk);
  }
  return n;
}

/** Accepted by the relay: 'sent', if this node still holds the row. The number marked. */
export async function markSentClaimed(sql: Sql, nodeId: string, ids: readonly number[], now: number): Promise<number> {
  checkNode(nodeId);
  return sql.tx(() => inChunks(ids, async (marks, chunk) => (await sql.run(
    `UPDATE deliveries SET state = 'sent', sent_at = ?, pkesk = NULL, mail = NULL, claimed_by = NULL, claimed_until = NULL
     WHERE state = 'sending' AND claimed_by = ? AND id IN (${marks})`, [now, nodeId, ...chunk] as SqlParam[])).changes));
}

/** Claimed rows never handed to the relay (a clean stop): back to the queue, not counted. */
export async function releaseClaims(sql: Sql, nodeId: string, ids: readonly number[]): Promise<number> {
  checkNode(nodeId);
  return sql.tx(() => inChunks(ids, async (marks, chunk) => (await sql.run(
    `UPDATE deliveries SET state = 'queued', claimed_by = NULL, claimed_until = NULL
     WHERE state = 'sending' AND claimed_by = ? AND id IN (${marks})`, [nodeId, ...chunk] as SqlParam[])).changes));
}

/** The advisory lock key of a job: the first 8 bytes of a SHA-256 of its name, as a signed 64-bit integer. */
export function jobLockKey(jobName: string): bigint {
  return createHash('sha256').update(`letterlock job: ${jobName}`).digest().readBigInt64BE(0);
}

export interface RunOnceOptions {
  /** Skip when the job started less than this long ago on any node (job_runs); absent: only the lock. */
  minIntervalMs?: number;
  /** Recorded in job_runs (which node ran it last). */
  nodeId?: string;
  now?: () => number;
}

export type RunOnceResult<T> = { ran: true; value: T } | { ran: false; why: 'locked' | 'recent' };

/**
 * Runs a periodic job on one node at a time. PostgreSQL: under a session
 * advisory lock keyed by the job's name, held on a connection of its own for
 * the job's length (fn's statements use the pool as usual, outside any
 * transaction); a node that does not get the lock skips this round. The lock
 * goes with the session, so a node that dies frees it. With minIntervalMs, a job
 * that another node started within that time is skipped too, so timers that fire
 * at different moments on each node still run it once per interval. SQLite: one
 * node, no lock; minIntervalMs applies the same way.
 */
export async function runOnce<T>(sql: Sql, jobName: string, fn: () => Promise<T>, o: RunOnceOptions = {}): Promise<RunOnceResult<T>> {
  if (jobName.length === 0 || jobName.length > 200) throw new Error('a job name is 1 to 200 characters');
  const now = o.now ?? Date.now;
  if (!(sql instanceof PgSql)) return runRecorded(sql, jobName, fn, o, now);

  let client: pg.PoolClient;
  try {
    client = await sql.pool.connect();
  } catch (e) {
    throw cleanError(e); // a storage error, as a statement's would be
  }
  let broken = false;
  const onError = () => { broken = true; };
  client.on('error', onError);
  const key = jobLockKey(jobName).toString();
  try {
    let got: unknown;
    try {
      got = (await client.query<{ got: unknown }>('SELECT pg_try_advisory_lock($1::bigint) AS got', [key])).rows[0]?.got;
    } catch (e) {
      broken = true;
      throw cleanError(e);
    }
    if (!got) return { ran: false, why: 'locked' };
    try {
      return await runRecorded(sql, jobName, fn, o, now);
    } finally {
      try {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
      } catch {
        broken = true; // the connection is dropped below, and the lock ends with its session
      }
    }
  } finally {
    client.off('error', onError);
    client.release(broken ? true : undefined);
  }
}

async function runRecorded<T>(sql: Sql, jobName: string, fn: () => Promise<T>, o: RunOnceOptions, now: () => number): Promise<RunOnceResult<T>> {
  if (o.minIntervalMs === undefined) return { ran: true, value: await fn() };
  const t = now();
  if (!await claimJobRun(sql, jobName, o.nodeId ?? null, t, o.minIntervalMs)) return { ran: false, why: 'recent' };
  const value = await fn();
  await sql.run('UPDATE job_runs SET finished_at = ? WHERE name = ? AND started_at = ?', [now(), jobName, t]);
  return { ran: true, value };
}

/**
 * Records a start of `name` in job_runs at `t`, unless one started within `minIntervalMs`
 * before it; true when this call recorded it. One statement decides and records, so of
 * claims racing (processes on SQLite, nodes on PostgreSQL) exactly one wins.
 */
export async function claimJobRun(sql: Sql, name: string, node: string | null, t: number, minIntervalMs: number): Promise<boolean> {
  return (await sql.get(`INSERT INTO job_runs (name, node, started_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET node = excluded.node, started_at = excluded.started_at, finished_at = NULL
    WHERE job_runs.started_at <= ?
    RETURNING name`, [name, node, t, t - minIntervalMs])) != null;
}

