// The durable outbound queue. Rows are claimed in small batches ('sending') and
// each is marked 'sent' right after the relay accepts it (acceptances within a
// few milliseconds share one commit: a commit per copy was a large share of the
// fan-out's CPU), so a crash re-sends at most the copies that were claimed and
// not yet marked; those are counted in resent_after_crash.

import type { Sql, SqlParam } from './sql.ts';

export type DeliveryKind = 'copy' | 'notice' | 'bounce' | 'report';

export interface NewDelivery {
  listId: number;
  postId: number | null;
  kind: DeliveryKind;
  rcpt: string;
  pkesk?: Uint8Array | null;
  mail?: string | null;
}

export interface DeliveryRow {
  id: number;
  list_id: number;
  post_id: number | null;
  kind: DeliveryKind;
  rcpt: string;
  pkesk: Buffer | null;
  mail: Buffer | null;
  attempts: number;
  created_at: number;
  /** As claimed: the recipient's chosen copy form (member_prefs), null for the default; absent: not looked up. */
  form?: 'pgp-mime' | 'inline' | null;
}

/** How long an acceptance may wait for its commit, and how many may wait at most. */
const SENT_FLUSH_MS = 10;
const SENT_FLUSH_ROWS = 256;

// A new row is due from its creation (next_at), so the claim below takes rows in the
// order they fell due: fresh rows and due retries alike.
const INSERT = 'INSERT INTO deliveries (list_id, post_id, kind, rcpt, pkesk, mail, created_at, next_at) VALUES (?,?,?,?,?,?,?,?) RETURNING id';
const INSERT_MANY = 'INSERT INTO deliveries (list_id, post_id, kind, rcpt, pkesk, mail, created_at, next_at) VALUES ';
/** Rows per multi-row statement: 8 parameters each stays far under SQLite's 32,766 and PostgreSQL's 65,535. */
const ADD_CHUNK = 500;
const SENT_MANY = "UPDATE deliveries SET state = 'sent', sent_at = ?, pkesk = NULL, mail = NULL WHERE id IN ";
const inList = (n: number) => `(${Array.from({ length: n }, () => '?').join(',')})`;
const RETRY = "UPDATE deliveries SET state = 'queued', attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?";
const FAIL = "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?, pkesk = NULL, mail = NULL WHERE id = ?";
// One statement claims the batch (select and mark), instead of an UPDATE per row.
// ORDER BY next_at, id walks the deliveries_due index (state, next_at, id) and stops
// at the limit; ORDER BY id alone sorted every due row for each claim, which made a
// fan-out quadratic in its size (1.5 ms per claim at 10,000 queued copies).
const CLAIM = `UPDATE deliveries SET state = 'sending' WHERE id IN (
  SELECT id FROM deliveries WHERE state = 'queued' AND next_at <= ? ORDER BY next_at, id LIMIT ?)
  RETURNING id, list_id, post_id, kind, rcpt, pkesk, mail, attempts, created_at,
    (SELECT delivery FROM member_prefs p WHERE p.list_id = deliveries.list_id AND p.address = deliveries.rcpt) AS form`;
const UNCLAIM_MANY = "UPDATE deliveries SET state = 'queued' WHERE state = 'sending' AND id IN ";

export class QueueStore {
  private pendingSent: number[] = [];
  private flushScheduled = false;

  constructor(private readonly sql: Sql) {}

  /** Call inside a transaction with the rest of the post's records. */
  async add(d: NewDelivery): Promise<number> {
    const now = Date.now();
    const r = await this.sql.get<{ id: number }>(INSERT, [d.listId, d.postId, d.kind, d.rcpt, d.pkesk ? Buffer.from(d.pkesk) : null,
      d.mail ? Buffer.from(d.mail, 'utf8') : null, now, now]);
    return Number(r!.id);
  }

  /**
   * Many rows in few statements (a fan-out page): one multi-row INSERT per
   * ADD_CHUNK rows, since each statement is a round trip on PostgreSQL.
   * Call inside a transaction. Ids are not returned (nobody needs them).
   */
  async addMany(rows: readonly NewDelivery[]): Promise<void> {
    const now = Date.now();
    for (let i = 0; i < rows.length; i += ADD_CHUNK) {
      const chunk = rows.slice(i, i + ADD_CHUNK);
      const params: SqlParam[] = [];
      for (const d of chunk) params.push(d.listId, d.postId, d.kind, d.rcpt, d.pkesk ? Buffer.from(d.pkesk) : null, d.mail ? Buffer.from(d.mail, 'utf8') : null, now, now);
      await this.sql.run(`${INSERT_MANY}${chunk.map(() => '(?,?,?,?,?,?,?,?)').join(',')}`, params);
    }
  }

  /** The rows due longest, marked 'sending', in id order. */
  async claim(now: number, limit: number): Promise<DeliveryRow[]> {
    // RETURNING gives no order: sort here (a small batch).
    return (await this.sql.all<DeliveryRow>(CLAIM, [now, limit])).sort((a, b) => a.id - b.id);
  }

  /**
   * Recorded within SENT_FLUSH_MS (sooner once SENT_FLUSH_ROWS are waiting), in one
   * commit with the other acceptances of that time. A crash before the commit leaves
   * the row 'sending': it is re-sent at the next start and counted, like any row in flight.
   */
  markSent(id: number): void {
    this.pendingSent.push(id);
    if (this.pendingSent.length >= SENT_FLUSH_ROWS) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flushDeferred());
      }
    } else if (!this.flushScheduled && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        void this.flushDeferred();
      }, SENT_FLUSH_MS);
    }
  }

  private flushTimer: NodeJS.Timeout | null = null;

  async flushSent(): Promise<void> {
    await this.flush(false);
  }

  private async flush(deferred: boolean): Promise<void> {
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const ids = this.pendingSent;
    if (ids.length === 0) return;
    this.pendingSent = [];
    const now = Date.now();
    try {
      // One statement per SENT_FLUSH_ROWS ids (a round trip each on PostgreSQL), in one commit.
      await this.sql.tx(async () => {
        for (let i = 0; i < ids.length; i += SENT_FLUSH_ROWS) {
          const chunk = ids.slice(i, i + SENT_FLUSH_ROWS);
          await this.sql.run(SENT_MANY + inList(chunk.length), [now, ...chunk]);
        }
      });
    } catch (e) {
      // Disk full or I/O error: keep the ids and try again shortly. A deferred
      // flush must never throw (it runs outside any caller that could catch it).
      this.pendingSent = ids.concat(this.pendingSent);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setTimeout(() => void this.flushDeferred(), 1000).unref();
      }
      if (!deferred) throw e;
    }
  }

  /** From the flush's own timer: errors are kept for the next attempt, not thrown. */
  private async flushDeferred(): Promise<void> {
    try {
      await this.flush(true);
    } catch { /* flush(true) keeps the ids; nothing to add */ }
  }

  /** Claimed rows never handed to the relay (clean stop): back to the queue, not counted. */
  async unclaim(ids: number[]): Promise<void> {
    for (let i = 0; i < ids.length; i += SENT_FLUSH_ROWS) {
      const chunk = ids.slice(i, i + SENT_FLUSH_ROWS);
      await this.sql.run(UNCLAIM_MANY + inList(chunk.length), chunk);
    }
  }

  async retryLater(id: number, nextAt: number, error: string): Promise<void> {
    await this.sql.run(RETRY, [nextAt, error.slice(0, 300), id]);
  }

  async markFailed(id: number, error: string, state: 'failed' | 'bounced' = 'failed'): Promise<void> {
    await this.sql.run(FAIL, [state, error.slice(0, 300), id]);
  }

  /** After a crash: rows that were in flight go back to the queue and are counted. */
  async recoverInFlight(): Promise<number> {
    return (await this.sql.run("UPDATE deliveries SET state = 'queued', resent_after_crash = resent_after_crash + 1 WHERE state = 'sending'")).changes;
  }

  async nextDueAt(): Promise<number | null> {
    const r = await this.sql.get<{ t: number | null }>("SELECT min(next_at) AS t FROM deliveries WHERE state = 'queued'");
    return r?.t ?? null;
  }

  async get(id: number): Promise<{ id: number; list_id: number; post_id: number | null; rcpt: string; state: string; kind: DeliveryKind } | null> {
    return (await this.sql.get<never>('SELECT id, list_id, post_id, rcpt, state, kind FROM deliveries WHERE id = ?', [id])) ?? null;
  }

  async stats(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const r of await this.sql.all<{ state: string; n: number }>('SELECT state, count(*) AS n FROM deliveries GROUP BY state')) out[r.state] = r.n;
    out.resent_after_crash = (await this.sql.get<{ n: number }>('SELECT coalesce(sum(resent_after_crash), 0) AS n FROM deliveries'))!.n;
    return out;
  }

  async addReport(listId: number, rcpt: string, postId: number | null, reason: string): Promise<void> {
    await this.sql.run('INSERT INTO owner_reports (list_id, rcpt, post_id, reason, created_at) VALUES (?,?,?,?,?)', [listId, rcpt, postId, reason.slice(0, 300), Date.now()]);
  }

  async unreportedByList(): Promise<Map<number, Array<{ id: number; rcpt: string; post_id: number | null; reason: string }>>> {
    const rows = await this.sql.all<{ id: number; list_id: number; rcpt: string; post_id: number | null; reason: string }>('SELECT id, list_id, rcpt, post_id, reason FROM owner_reports WHERE reported = 0 ORDER BY id LIMIT 5000');
    const out = new Map<number, Array<{ id: number; rcpt: string; post_id: number | null; reason: string }>>();
    for (const r of rows) {
      const l = out.get(r.list_id) ?? [];
      l.push(r);
      out.set(r.list_id, l);
    }
    return out;
  }

  async markReported(ids: number[]): Promise<void> {
    await this.sql.tx(async () => {
      for (let i = 0; i < ids.length; i += SENT_FLUSH_ROWS) {
        const chunk = ids.slice(i, i + SENT_FLUSH_ROWS);
        await this.sql.run(`UPDATE owner_reports SET reported = 1 WHERE id IN ${inList(chunk.length)}`, chunk);
      }
    });
  }

  /** Owner reports of one list in [since, now): how many, and up to `limit` groups by recipient and reason, largest first. */
  async reportsBetween(listId: number, since: number, now: number, limit: number): Promise<{ total: number; groups: Array<{ rcpt: string; reason: string; n: number }> }> {
    const total = (await this.sql.get<{ n: number }>('SELECT count(*) AS n FROM owner_reports WHERE list_id = ? AND created_at >= ? AND created_at < ?', [listId, since, now]))!.n;
    const groups = await this.sql.all<{ rcpt: string; reason: string; n: number }>(`SELECT rcpt, reason, count(*) AS n FROM owner_reports WHERE list_id = ? AND created_at >= ? AND created_at < ?
      GROUP BY rcpt, reason ORDER BY n DESC, rcpt LIMIT ?`, [listId, since, now, limit]);
    return { total, groups };
  }

  /** The newest failed or bounced rows of a list (the operator's /failures). */
  async failures(listId: number, limit: number): Promise<Array<{ id: number; post_id: number | null; rcpt: string; state: string; attempts: number; last_error: string | null }>> {
    return this.sql.all(`SELECT id, post_id, rcpt, state, attempts, last_error FROM deliveries
      WHERE list_id = ? AND state IN ('failed','bounced') ORDER BY id DESC LIMIT ?`, [listId, limit]);
  }

  /** Rows waiting (queued) and handed to the relay (sending), for the metrics. */
  async depth(): Promise<{ queued: number; sending: number }> {
    const counts = { queued: 0, sending: 0 };
    for (const r of await this.sql.all<{ state: string; n: number }>("SELECT state, count(*) AS n FROM deliveries WHERE state IN ('queued','sending','claimed') GROUP BY state")) {
      counts[r.state === 'queued' ? 'queued' : 'sending'] += r.n;
    }
    return counts;
  }

  /** Per state and retried-or-not, the copies of one post (status). */
  async copyStates(postId: number): Promise<Array<{ state: string; retried: number; n: number; last: number | null; next: number | null }>> {
    return this.sql.all(`SELECT state, CASE WHEN attempts > 0 THEN 1 ELSE 0 END AS retried, count(*) AS n, max(sent_at) AS last, max(next_at) AS next FROM deliveries
      WHERE post_id = ? AND kind = 'copy' GROUP BY state, CASE WHEN attempts > 0 THEN 1 ELSE 0 END`, [postId]);
  }
}
