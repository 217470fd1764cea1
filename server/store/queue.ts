// The durable outbound queue. Rows are claimed in small batches ('sending') and
// each is marked 'sent' right after the relay accepts it (acceptances within a
// few milliseconds share one commit: a commit per copy was a large share of the
// fan-out's CPU), so a crash re-sends at most the copies that were claimed and
// not yet marked; those are counted in resent_after_crash.

import type { Db } from './db.ts';

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

export class QueueStore {
  private readonly insertStmt;
  private readonly sentStmt;
  private readonly retryStmt;
  private readonly failStmt;
  private readonly claimStmt;
  private readonly unclaimStmt;
  private pendingSent: number[] = [];
  private flushScheduled = false;

  constructor(private readonly db: Db) {
    // A new row is due from its creation (next_at), so the claim below takes rows in the
    // order they fell due: fresh rows and due retries alike.
    this.insertStmt = db.prepare('INSERT INTO deliveries (list_id, post_id, kind, rcpt, pkesk, mail, created_at, next_at) VALUES (?,?,?,?,?,?,?,?)');
    this.sentStmt = db.prepare("UPDATE deliveries SET state = 'sent', sent_at = ?, pkesk = NULL, mail = NULL WHERE id = ?");
    this.retryStmt = db.prepare("UPDATE deliveries SET state = 'queued', attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?");
    this.failStmt = db.prepare("UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?, pkesk = NULL, mail = NULL WHERE id = ?");
    // One statement claims the batch (select and mark), instead of an UPDATE per row.
    // ORDER BY next_at, id walks the deliveries_due index (state, next_at, id) and stops
    // at the limit; ORDER BY id alone sorted every due row for each claim, which made a
    // fan-out quadratic in its size (1.5 ms per claim at 10,000 queued copies).
    this.claimStmt = db.prepare(`UPDATE deliveries SET state = 'sending' WHERE id IN (
      SELECT id FROM deliveries WHERE state = 'queued' AND next_at <= ? ORDER BY next_at, id LIMIT ?)
      RETURNING id, list_id, post_id, kind, rcpt, pkesk, mail, attempts, created_at,
        (SELECT delivery FROM member_prefs p WHERE p.list_id = deliveries.list_id AND p.address = deliveries.rcpt) AS form`);
    this.unclaimStmt = db.prepare("UPDATE deliveries SET state = 'queued' WHERE id = ? AND state = 'sending'");
  }

  /** Call inside a transaction with the rest of the post's records. */
  add(d: NewDelivery): number {
    const now = Date.now();
    return Number(this.insertStmt.run(d.listId, d.postId, d.kind, d.rcpt, d.pkesk ? Buffer.from(d.pkesk) : null,
      d.mail ? Buffer.from(d.mail, 'utf8') : null, now, now).lastInsertRowid);
  }

  /** The rows due longest, marked 'sending', in id order. */
  claim(now: number, limit: number): DeliveryRow[] {
    // RETURNING gives no order: sort here (a small batch).
    return (this.claimStmt.all(now, limit) as DeliveryRow[]).sort((a, b) => a.id - b.id);
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
        setImmediate(() => this.flushDeferred());
      }
    } else if (!this.flushScheduled && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.flushDeferred();
      }, SENT_FLUSH_MS);
    }
  }

  private flushTimer: NodeJS.Timeout | null = null;

  flushSent(): void {
    this.flushScheduled = false;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const ids = this.pendingSent;
    if (ids.length === 0) return;
    this.pendingSent = [];
    const now = Date.now();
    try {
      this.db.transaction(() => { for (const id of ids) this.sentStmt.run(now, id); })();
    } catch (e) {
      // Disk full or I/O error: keep the ids and try again shortly. A deferred
      // flush must never throw (it runs outside any caller that could catch it).
      this.pendingSent = ids.concat(this.pendingSent);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setTimeout(() => this.flushDeferred(), 1000).unref();
      }
      if (!this.deferred) throw e;
    }
  }

  /** True while flushSent runs from its own timer: errors are kept, not thrown. */
  private deferred = false;

  private flushDeferred(): void {
    this.deferred = true;
    try {
      this.flushSent();
    } finally {
      this.deferred = false;
    }
  }

  /** Claimed rows never handed to the relay (clean stop): back to the queue, not counted. */
  unclaim(ids: number[]): void {
    this.db.transaction(() => { for (const id of ids) this.unclaimStmt.run(id); })();
  }

  retryLater(id: number, nextAt: number, error: string): void {
    this.retryStmt.run(nextAt, error.slice(0, 300), id);
  }

  markFailed(id: number, error: string, state: 'failed' | 'bounced' = 'failed'): void {
    this.failStmt.run(state, error.slice(0, 300), id);
  }

  /** After a crash: rows that were in flight go back to the queue and are counted. */
  recoverInFlight(): number {
    return this.db.prepare("UPDATE deliveries SET state = 'queued', resent_after_crash = resent_after_crash + 1 WHERE state = 'sending'").run().changes;
  }

  nextDueAt(): number | null {
    const r = this.db.prepare("SELECT min(next_at) AS t FROM deliveries WHERE state = 'queued'").get() as { t: number | null };
    return r.t;
  }

  get(id: number): { id: number; list_id: number; post_id: number | null; rcpt: string; state: string; kind: DeliveryKind } | null {
    return (this.db.prepare('SELECT id, list_id, post_id, rcpt, state, kind FROM deliveries WHERE id = ?').get(id) as never) ?? null;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.db.prepare('SELECT state, count(*) AS n FROM deliveries GROUP BY state').all() as Array<{ state: string; n: number }>) out[r.state] = r.n;
    out.resent_after_crash = (this.db.prepare('SELECT coalesce(sum(resent_after_crash),0) AS n FROM deliveries').get() as { n: number }).n;
    return out;
  }

  addReport(listId: number, rcpt: string, postId: number | null, reason: string): void {
    this.db.prepare('INSERT INTO owner_reports (list_id, rcpt, post_id, reason, created_at) VALUES (?,?,?,?,?)').run(listId, rcpt, postId, reason.slice(0, 300), Date.now());
  }

  unreportedByList(): Map<number, Array<{ id: number; rcpt: string; post_id: number | null; reason: string }>> {
    const rows = this.db.prepare('SELECT id, list_id, rcpt, post_id, reason FROM owner_reports WHERE reported = 0 ORDER BY id LIMIT 5000').all() as Array<{ id: number; list_id: number; rcpt: string; post_id: number | null; reason: string }>;
    const out = new Map<number, Array<{ id: number; rcpt: string; post_id: number | null; reason: string }>>();
    for (const r of rows) {
      const l = out.get(r.list_id) ?? [];
      l.push(r);
      out.set(r.list_id, l);
    }
    return out;
  }

  markReported(ids: number[]): void {
    const stmt = this.db.prepare('UPDATE owner_reports SET reported = 1 WHERE id = ?');
    this.db.transaction(() => { for (const id of ids) stmt.run(id); })();
  }
}
