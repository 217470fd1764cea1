// The delivery worker: takes due rows from the durable queue in batches, renders
// each copy from the shared body and the row's PKESK, hands it to the relay with
// bounded concurrency, and records the outcome right away. Temporary failures
// (4xx, connection) are retried with exponential backoff; permanent ones (5xx, or
// too old) are recorded and reported to the list owner, encrypted to the owner's key.

import { toHex, randomBytes } from '../../shared/index.ts';
import type { Config } from '../config/config.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import { isStorageError, type Sql } from '../store/db.ts';
import { runOnce } from '../store/coordination.ts';
import { getListById, type ListRecord } from '../store/lists.ts';
import { getPost, getPostMessageId } from '../store/posts.ts';
import type { DeliveryRow, QueueStore } from '../store/queue.ts';
import { displayHeaders, openDisplay } from './display.ts';
import { ListHeaderTemplate, postHeaders, unsubscribeUrl } from './headers.ts';
import type { ListKeys } from '../lists/lists.ts';
import { ownerReportLines } from './notices.ts';
import { sealedNoticeMail } from '../ops/sealed.ts';
import { registeredKeyOf } from '../store/notify.ts';
import type { Envelope, Relay, SendResult } from './relay.ts';
import { PostRender } from './render.ts';
import { autocryptHeader } from './autocrypt.ts';
import { getDeliveryPreference } from '../store/registry.ts';
import type { Tokens } from './tokens.ts';
import type { DeliveryEvent } from '../metrics/metrics.ts';

/** The reason recorded for a row that could not be made into mail: content-free. */
export const RENDER_FAILED = 'RENDER_FAILED: the copy could not be written as mail';
const STORAGE_RETRY_MS = 1000;

export interface WorkerOptions {
  sql: Sql;
  queue: QueueStore;
  relay: Relay;
  tokens: Tokens;
  log: EventLog;
  delivery: Config['delivery'];
  publicUrl: string;
  /**
   * The list's unlocked keys: the list key opens a post's sealed display (display.ts)
   * and signs the owner's failure reports. Absent: copies show the list alone, and no
   * report can be sealed (none is sent; the log says ops.owner_unreachable).
   */
  keysFor?(list: ListRecord): Promise<ListKeys>;
  /** Told each row's outcome (metrics, the relay's readiness); must not throw. */
  observe?(e: DeliveryEvent): void;
  /**
   * Several nodes (coordination.ts): how often this node renews the leases of its
   * rows in flight and takes back rows whose node let its lease run out. Default:
   * a third of the queue's lease.
   */
  leaseTickMs?: number;
}

interface CachedPost {
  render: PostRender;
  list: ListRecord;
  messageId: string | null;
  /** Bare-text content (inline clients) goes inline to everyone: see render(). */
  bareText: boolean;
  /** The list headers, written once; only List-Unsubscribe is filled per copy. */
  listHeaders: ListHeaderTemplate;
}

export class DeliveryWorker {
  private running = false;
  private buffer: DeliveryRow[] = [];
  private idleWait: Promise<void> | null = null;
  private wakeIdle: (() => void) | null = null;
  private lanes: Promise<void> | null = null;
  private readonly posts = new Map<number, Promise<CachedPost | null>>();
  private lastReport = 0;
  /** The report pass in progress (reports are sealed in the background). */
  private reporting: Promise<void> | null = null;
  /** Outcome writes the database refused, retried in order before new work. */
  private unrecorded: Array<() => unknown> = [];
  /** The claim in progress: lanes that find the batch empty at once share it (two claims would overwrite each other's rows). */
  private claiming: Promise<void> | null = null;
  /** The retry of unrecorded writes in progress (one at a time, in order). */
  private retrying: Promise<boolean> | null = null;
  sent = 0;

  constructor(private readonly o: WorkerOptions) {}

  private leaseTimer: NodeJS.Timeout | null = null;
  private leaseTick: Promise<void> | null = null;

  async start(): Promise<number> {
    const recovered = await this.o.queue.recoverInFlight();
    if (recovered > 0) this.o.log.warn('delivery.recovered', { recovered });
    this.running = true;
    // Renewed well within the lease, so a live node keeps its rows however long the relay takes.
    const tick = this.o.leaseTickMs ?? Math.max(100, Math.floor(this.o.queue.leaseMs / 3));
    this.leaseTimer = setInterval(() => { this.leaseTick ??= this.tickLeases().finally(() => { this.leaseTick = null; }); }, tick);
    this.leaseTimer.unref();
    // `concurrency` lanes, each taking the next due row from a shared batch.
    this.lanes = Promise.all(Array.from({ length: this.o.delivery.concurrency }, () => this.lane())).then(() => undefined);
    return recovered;
  }

  kick(): void {
    this.wakeIdle?.();
  }

  /** Renews this node's leases; takes back rows another node left when its lease ran out. */
  private async tickLeases(): Promise<void> {
    try {
      await this.o.queue.renew();
      // SQLite has one node: its rows in flight are its own, taken back at its next start.
      if (this.o.sql.dialect !== 'postgres') return;
      const reclaimed = await this.o.queue.reclaimExpired();
      if (reclaimed > 0) {
        this.o.log.warn('delivery.recovered', { recovered: reclaimed });
        this.kick();
      }
    } catch (e) {
      this.o.log.error('delivery.error', { code: codeOf(e) }); // tried again at the next tick
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.leaseTimer = null;
    await this.leaseTick;
    this.kick();
    await this.lanes;
    await this.reporting; // it writes to the database: let it end first
    try {
      await this.retryUnrecorded();
      await this.o.queue.flushSent();
      await this.o.queue.unclaim(this.buffer.map((r) => r.id));
    } catch (e) {
      // Rows left 'sending' go back to the queue at the next start (counted as possibly re-sent).
      this.o.log.error('delivery.error', { code: codeOf(e) });
    }
    this.buffer = [];
    this.o.relay.close();
  }

  private async nextRow(): Promise<DeliveryRow | undefined> {
    while (this.buffer.length === 0) {
      if (this.claiming) {
        await this.claiming;
        continue;
      }
      let got = 0;
      this.claiming = this.o.queue.claim(Date.now(), this.o.delivery.batch).then((rows) => {
        this.buffer.push(...rows);
        got = rows.length;
      }).finally(() => { this.claiming = null; });
      await this.claiming;
      if (got === 0) break;
    }
    return this.buffer.shift();
  }

  /** All idle lanes share one wait, ended by kick() or by the next due retry. */
  private async waitForWork(): Promise<void> {
    // stop() may have kicked before this lane came to wait (its claim was still in
    // flight): waiting now would hold the stop up to the full idle timer.
    if (!this.running) return;
    if (!this.idleWait) {
      // Made at once (before the query), so lanes arriving meanwhile share this wait and kick() ends it.
      let timer: NodeJS.Timeout | null = null;
      let woken = false;
      this.idleWait = new Promise<void>((resolve) => {
        const done = () => {
          woken = true;
          if (timer) clearTimeout(timer);
          this.idleWait = null;
          this.wakeIdle = null;
          resolve();
        };
        this.wakeIdle = done;
        this.o.queue.nextDueAt().then((next) => next, () => null).then((next) => {
          if (woken) return;
          timer = setTimeout(done, Math.max(20, Math.min(1000, next === null ? 1000 : next - Date.now())));
        });
      });
    }
    return this.idleWait;
  }

  private async lane(): Promise<void> {
    while (this.running) {
      // A lane never ends on an error: one row's failure stays with that row, and
      // a failing database (disk full) pauses the lane and is retried.
      try {
        if (!await this.retryUnrecorded()) {
          await this.pause();
          continue;
        }
        const row = await this.nextRow();
        if (!row) {
          void this.flushReports(false);
          await this.waitForWork();
          continue;
        }
        await this.deliverOne(row);
      } catch (e) {
        this.o.log.error('delivery.error', { code: codeOf(e) });
        await this.pause();
      }
    }
  }

  /** After a storage error: wait a little, then try again. */
  private pause(): Promise<void> {
    return new Promise<void>((resolve) => setTimeout(resolve, STORAGE_RETRY_MS));
  }

  /**
   * Records an outcome; if the database refuses (disk full, I/O error) the write
   * is kept in memory and retried before any new row is claimed. It stays
   * bounded: no new rows are claimed while writes are pending.
   */
  private async record(write: () => unknown): Promise<void> {
    try {
      await write();
    } catch (e) {
      this.o.log.error('delivery.error', { code: codeOf(e) });
      this.unrecorded.push(write);
    }
  }

  /** True when no recorded outcome is waiting for the database. */
  private retryUnrecorded(): Promise<boolean> | boolean {
    if (this.unrecorded.length === 0) return true; // the usual case: no promise per row
    this.retrying ??= (async () => {
      while (this.unrecorded.length > 0) {
        try {
          await this.unrecorded[0]!();
        } catch {
          return false;
        }
        this.unrecorded.shift();
      }
      return true;
    })().finally(() => { this.retrying = null; });
    return this.retrying;
  }

  /** The shared parts of one post's copies, made once (lanes asking at once share the promise). */
  private cachedPost(postId: number): Promise<CachedPost | null> {
    let c = this.posts.get(postId);
    if (!c) {
      c = this.loadPost(postId);
      if (this.posts.size >= 4) this.posts.delete(this.posts.keys().next().value!);
      this.posts.set(postId, c);
      c.catch(() => this.posts.delete(postId));
    }
    return c;
  }

  private async loadPost(postId: number): Promise<CachedPost | null> {
    const post = await getPost(this.o.sql, postId);
    if (!post) return null;
    const list = await getListById(this.o.sql, post.listId);
    if (!list) return null;
    // The author's name and a clear subject are opened in memory only; a post
    // from before they were kept shows the list alone.
    const display = post.display && this.o.keysFor ? await openDisplay(post.display, (await this.o.keysFor(list)).listKey) : null;
    const headers = postHeaders({
      listAddress: list.address, messageId: post.messageId, inReplyTo: post.inReplyTo, references: post.references, date: post.date,
      autocrypt: autocryptHeader(list.address, list.listPublic),
      shown: displayHeaders(list.address, display, { replyTo: list.replyTo, hideSubjects: list.hideSubjects }),
    });
    return {
      render: new PostRender(post.body, headers, toHex(randomBytes(12))), list, messageId: post.messageId, bareText: post.bareText,
      listHeaders: new ListHeaderTemplate(list.address, this.o.publicUrl),
    };
  }

  private async render(row: DeliveryRow): Promise<{ envelope: Envelope; mail: string | Buffer } | null> {
    const { tokens, publicUrl } = this.o;
    if (row.kind === 'copy') {
      const c = await this.cachedPost(row.post_id!);
      if (!c || !row.pkesk) return null;
      const rcptHeaders = c.listHeaders.fill(unsubscribeUrl(publicUrl, c.list.address, row.rcpt, tokens.unsubscribeToken(c.list.address, row.rcpt)));
      // Each subscriber chose PGP/MIME (mail clients) or an inline body (webmail) at
      // subscription. A post whose signed content is bare text (inline clients sign
      // text, not a MIME entity) goes inline to everyone: in PGP/MIME it would
      // decrypt to something that is not a MIME entity (RFC 3156 §4), while inline
      // every client shows the text and verifies the sender's signature on it.
      // (The claim read the member's choice with the row; one query per copy fewer.)
      const form = c.bareText ? 'inline' : row.form !== undefined ? (row.form ?? 'pgp-mime') : await getDeliveryPreference(this.o.sql, row.list_id, row.rcpt);
      return { envelope: { from: tokens.bounceAddress(c.list.address, row.id), to: row.rcpt }, mail: c.render.mailWithHeaderText(row.pkesk, rcptHeaders, form) };
    }
    if (!row.mail) return null;
    const list = await getListById(this.o.sql, row.list_id);
    if (!list) return null;
    // Bounces go out with the null sender so they can never bounce back (RFC 5321 6.1).
    const from = row.kind === 'bounce' ? '' : tokens.bounceAddress(list.address, row.id);
    return { envelope: { from, to: row.rcpt }, mail: row.mail };
  }

  private async deliverOne(row: DeliveryRow): Promise<void> {
    const { queue, log, delivery } = this.o;
    let out: Awaited<ReturnType<DeliveryWorker['render']>>;
    try {
      out = await this.render(row);
    } catch (e) {
      // The row cannot be written as mail (e.g. a header the writer refuses): it
      // alone fails, with a reason that quotes nothing; delivery goes on.
      if (isStorageError(e)) throw e; // the disk, not the row: retried
      log.error('delivery.failed', { delivery: row.id, code: 'RENDER_FAILED' });
      this.o.observe?.({ kind: row.kind, outcome: 'failed', code: 'RENDER_FAILED' });
      await this.record(async () => {
        await queue.markFailed(row.id, RENDER_FAILED);
        if (row.kind === 'copy' || row.kind === 'notice') await queue.addReport(row.list_id, row.rcpt, row.post_id, RENDER_FAILED);
      });
      return;
    }
    if (!out) {
      await this.record(() => queue.markFailed(row.id, 'INTERNAL: post or list no longer exists'));
      this.o.observe?.({ kind: row.kind, outcome: 'failed', code: 'INTERNAL' });
      return;
    }
    let result: SendResult;
    try {
      result = await this.o.relay.send(out.envelope, out.mail);
    } catch (e) {
      // A relay that throws instead of answering: a temporary failure of this row.
      result = { ok: false, permanent: false, code: 'NET_ERROR', reason: 'relay error' };
      log.error('delivery.error', { delivery: row.id, code: codeOf(e) });
    }
    if (result.ok) {
      queue.markSent(row.id); // in memory until the batched flush (queue.ts): it cannot fail here
      this.sent++;
      this.o.observe?.({ kind: row.kind, outcome: 'sent' });
      return;
    }
    const tooOld = Date.now() - row.created_at > delivery.giveUpAfterMs;
    if (result.permanent || tooOld) {
      const reason = `${result.code}${tooOld && !result.permanent ? ' (gave up after retries)' : ''}: ${result.reason}`;
      await this.record(async () => {
        await queue.markFailed(row.id, reason);
        if (row.kind === 'copy' || row.kind === 'notice') await queue.addReport(row.list_id, row.rcpt, row.post_id, reason);
      });
      log.warn('delivery.failed', { delivery: row.id, code: result.code, attempt: row.attempts + 1 });
      this.o.observe?.({ kind: row.kind, outcome: 'failed', code: result.code });
      return;
    }
    const backoff = Math.min(delivery.retryMaxMs, delivery.retryBaseMs * 2 ** Math.min(row.attempts, 20));
    const nextAt = Date.now() + Math.round(backoff * (0.75 + Math.random() * 0.5));
    await this.record(() => queue.retryLater(row.id, nextAt, `${result.code}: ${result.reason}`));
    log.info('delivery.retry', { delivery: row.id, code: result.code, attempt: row.attempts + 1 });
    this.o.observe?.({ kind: row.kind, outcome: 'deferred', code: result.code });
  }

  /**
   * One report mail per list owner for the failures gathered since the last one,
   * signed by the list key and sealed to the owner's registered key. The sealing
   * runs in the background, one pass at a time, so lanes keep claiming rows.
   */
  flushReports(force: boolean): Promise<void> {
    const now = Date.now();
    if (this.reporting || (!force && now - this.lastReport < this.o.delivery.reportDelayMs)) return this.reporting ?? Promise.resolve();
    this.lastReport = now;
    // Several nodes on one database: one report pass at a time across them, so a failure is reported once.
    this.reporting = runOnce(this.o.sql, 'owner-reports', () => this.reportPass()).then(() => undefined).catch((e: unknown) => {
      // A storage error leaves the rows unreported: the next flush tries again.
      this.o.log.error('delivery.error', { code: codeOf(e) });
    }).finally(() => { this.reporting = null; });
    return this.reporting;
  }

  private async reportPass(): Promise<void> {
    const { sql, queue, log } = this.o;
    const byList = await queue.unreportedByList();
    for (const [listId, entries] of byList) {
      const ids = entries.map((e) => e.id);
      try {
        const list = await getListById(sql, listId);
        if (!list?.owner) {
          await queue.markReported(ids);
          log.info('delivery.report', { list: list?.address ?? String(listId), count: entries.length });
          continue;
        }
        const key = await registeredKeyOf(sql, listId, list.owner);
        const withIds = [];
        for (const e of entries) withIds.push({ rcpt: e.rcpt, reason: e.reason, messageId: e.post_id ? await getPostMessageId(sql, e.post_id) : null });
        const mail = key && this.o.keysFor && await sealedNoticeMail({
          listAddress: list.address, listKey: (await this.o.keysFor(list)).listKey, to: list.owner, toKey: key.publicKey,
          subject: `Delivery problems on ${list.address} (${entries.length})`, outerSubject: `Delivery report for ${list.address}`,
          lines: ownerReportLines(list.address, withIds),
        });
        if (!mail) {
          // Never in clear: addresses and reasons are member data. The owner without a
          // usable key is told nothing; the rows stay in /failures and `letterlock queue`.
          await queue.markReported(ids);
          log.warn('ops.owner_unreachable', { list: list.address, count: entries.length, code: 'NO_KEY' });
          continue;
        }
        await sql.tx(async () => {
          await queue.add({ listId, postId: null, kind: 'report', rcpt: list.owner!, mail });
          await queue.markReported(ids);
        });
        this.kick();
        log.info('delivery.report', { list: list.address, count: entries.length });
      } catch (e) {
        if (isStorageError(e)) throw e; // kept unreported; the next flush tries again
        // A report that cannot be written is dropped, not retried forever.
        log.error('delivery.error', { code: codeOf(e), count: entries.length });
        await this.record(() => queue.markReported(ids));
      }
    }
  }
}
