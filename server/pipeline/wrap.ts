// Step 7, wrap: K is wrapped once per member key (one PKESK each), a page of
// members at a time. Each page's rows are committed to the queue with the
// fan-out cursor, so delivery starts with the first page while later pages are
// still being wrapped, memory stays bounded by the page size, and a crash
// resumes at the next page (K is recovered from its wrap to the list key).
// The key policy ran when each key was registered; a wrap only parses the stored
// encryption key packet. A member whose key expired or was revoked gets a
// notice instead of a copy.

import { KeyIdentity, wrapMany, type SessionKey } from '../../shared/index.ts';
import type { ListKeys } from '../lists/lists.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import { isStorageError, type Sql } from '../store/db.ts';
import { getListById, type ListRecord } from '../store/lists.ts';
import { iterateMembers, type MemberRecord } from '../store/members.ts';
import { advanceWrap, claimWrap, finishWrap, releaseWrap, takeableWraps, WrapLeaseLost } from '../store/posts.ts';
import type { QueueStore } from '../store/queue.ts';
import { deliver } from './deliver.ts';
import { PacketRecipient } from './recipient.ts';
import type { WrappedPage } from './types.ts';
import { RosterUnavailable, type MailmanService } from '../mailman/sync.ts';
import type { FanoutObserver } from '../metrics/metrics.ts';
import type { WrapPool } from './wrap-pool.ts';

function missedCode(m: MemberRecord, now: number): 'KEY_EXPIRED' | 'KEY_REVOKED' | null {
  if (m.keyState === 'revoked') return 'KEY_REVOKED';
  if (m.expiresAt !== null && m.expiresAt <= now) return 'KEY_EXPIRED';
  return null;
}

/**
 * Wraps K to one page of members: on the wrap pool's threads when one is given
 * and the page is large enough to gain from it, else here.
 */
export async function wrapPage(sessionKey: SessionKey, page: readonly MemberRecord[], now = Date.now(), pool?: WrapPool | null): Promise<WrappedPage> {
  const copies: WrappedPage['copies'] = [];
  const missed: WrappedPage['missed'] = [];
  if (pool && pool.worthIt(page.length)) {
    const wanted: MemberRecord[] = [];
    for (const m of page) {
      const code = missedCode(m, now);
      if (code) missed.push({ rcpt: m.address, code });
      else wanted.push(m);
    }
    const pkesks = await pool.wrap(sessionKey, wanted.map((m) => m.encryptionKey));
    for (let i = 0; i < wanted.length; i++) {
      const pkesk = pkesks[i];
      if (pkesk) copies.push({ rcpt: wanted[i]!.address, pkesk });
      else missed.push({ rcpt: wanted[i]!.address, code: 'KEY_NO_ENCRYPTION' });
    }
    return { copies, missed, last: page[page.length - 1]!.address };
  }
  const recipients: PacketRecipient[] = [];
  const addresses: string[] = [];
  for (const m of page) {
    const code = missedCode(m, now);
    if (code) {
      missed.push({ rcpt: m.address, code });
      continue;
    }
    try {
      recipients.push(await PacketRecipient.fromPacket(m.fingerprint, m.encryptionKey));
      addresses.push(m.address);
    } catch {
      missed.push({ rcpt: m.address, code: 'KEY_NO_ENCRYPTION' });
    }
  }
  const pkesks = await wrapMany(sessionKey, recipients);
  for (let i = 0; i < pkesks.length; i++) copies.push({ rcpt: addresses[i]!, pkesk: pkesks[i]! });
  return { copies, missed, last: page[page.length - 1]!.address };
}

/** The slow path of a page whose batch wrap threw: a member whose wrap fails gets a notice. */
async function wrapEach(sessionKey: SessionKey, page: readonly MemberRecord[]): Promise<WrappedPage> {
  const out: WrappedPage = { copies: [], missed: [], last: page[page.length - 1]!.address };
  for (const m of page) {
    try {
      const one = await wrapPage(sessionKey, [m]);
      out.copies.push(...one.copies);
      out.missed.push(...one.missed);
    } catch {
      out.missed.push({ rcpt: m.address, code: 'KEY_NO_ENCRYPTION' });
    }
  }
  return out;
}

export interface FanoutDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  onQueued?(): void;
  pageSize?: number;
  /** Lists bound to Mailman: copies only to members Mailman delivers to; keyless members told once how to register a key. */
  mailman?: Pick<MailmanService, 'ready' | 'deliverable' | 'keyNotices'>;
  /** Told each page's wrap time and each finished fan-out's (metrics). */
  observe?: FanoutObserver;
  /** Worker threads for the wrap step (wrap-pool.ts); absent: every page is wrapped on the main thread. */
  wrapPool?: WrapPool | null;
  /** This node's id: a post's fan-out is done under its lease (several nodes on one database). Default 'local'. */
  nodeId?: string;
  /** The fan-out lease, renewed with each page and on a timer (config cluster.leaseMs). */
  leaseMs?: number;
}

const DEFAULT_WRAP_LEASE_MS = 120_000;

/** Runs fan-out jobs one post at a time, in order. */
export class Fanout {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly nodeId: string;
  private readonly leaseMs: number;
  /** Posts waiting in the chain or running: a takeover scan does not queue them twice. */
  private readonly queued = new Set<number>();

  constructor(private readonly d: FanoutDeps) {
    this.nodeId = d.nodeId ?? 'local';
    this.leaseMs = d.leaseMs ?? DEFAULT_WRAP_LEASE_MS;
  }

  /** Queues the fan-out of a post; `sessionKey` (if given) saves unwrapping K again. */
  run(postId: number, sessionKey?: SessionKey): Promise<{ copies: number; notices: number }> {
    this.queued.add(postId);
    const job = this.chain.then(() => this.wrapAll(postId, sessionKey)).finally(() => this.queued.delete(postId));
    this.chain = job.catch((e: unknown) => {
      if (e instanceof WrapLeaseLost) {
        // Another node took the post over after this one stalled past its lease: it finishes it.
        this.d.log.warn('post.failed', { post: postId, code: 'LEASE_LOST' });
        return;
      }
      // The post stays unfinished (its cursor is committed page by page); the
      // next post's fan-out runs anyway. A storage error (disk full) is retried
      // soon; anything else at the next start.
      this.d.log.error('post.failed', { post: postId, code: codeOf(e) });
      // A bound list whose roster is too old to use (the Core is down) is retried like a full disk.
      if (isStorageError(e) || e instanceof RosterUnavailable) this.retrySoon();
    });
    return job;
  }

  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  private retrySoon(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = null;
      if (this.stopped) return;
      try {
        // A post already waiting in the chain runs twice at most: the second run reads its cursor and does nothing.
        for (const id of await takeableWraps(this.d.sql, this.nodeId, this.leaseClock())) this.run(id).catch(() => {});
      } catch (e) {
        this.d.log.error('post.failed', { code: codeOf(e) });
        this.retrySoon();
      }
    }, 5_000);
    this.retryTimer.unref();
  }

  /**
   * The time leases are judged by. SQLite has one node, so every unfinished
   * fan-out is this process's to finish whatever node id its previous run had
   * (the default id changes with the SMTP port): any lease counts as run out.
   */
  private leaseClock(): number {
    return this.d.sql.dialect === 'postgres' ? Date.now() : Number.MAX_SAFE_INTEGER;
  }

  /** No more retries; then wait for idle(). */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.takeoverTimer) clearInterval(this.takeoverTimer);
    this.takeoverTimer = null;
  }

  /** After a restart: finish every fan-out a crash interrupted (this node's, unowned, or expired). */
  async resumeAll(): Promise<void> {
    const jobs = (await takeableWraps(this.d.sql, this.nodeId, this.leaseClock())).map((id) => this.run(id));
    return Promise.allSettled(jobs).then(() => undefined);
  }

  private takeoverTimer: NodeJS.Timeout | null = null;

  /**
   * Several nodes: every `everyMs`, takes over the fan-outs whose node let its
   * lease run out (it died mid-post) and the ones a node released at a clean stop.
   */
  watchTakeovers(everyMs: number): void {
    if (this.takeoverTimer || this.stopped) return;
    let scanning = false;
    this.takeoverTimer = setInterval(() => {
      if (scanning || this.stopped) return;
      scanning = true;
      void takeableWraps(this.d.sql, this.nodeId, this.leaseClock(), 100).then((ids) => {
        for (const id of ids) if (!this.queued.has(id)) this.run(id).catch(() => {});
      }, (e: unknown) => this.d.log.error('post.failed', { code: codeOf(e) })).finally(() => { scanning = false; });
    }, everyMs);
    this.takeoverTimer.unref();
  }

  idle(): Promise<unknown> {
    return this.chain;
  }

  private async wrapAll(postId: number, given?: SessionKey): Promise<{ copies: number; notices: number }> {
    const { sql, queue, log } = this.d;
    const lease = () => Date.now() + this.leaseMs;
    // Null: finished, or another node holds the post's lease (it finishes it; this node takes over if that lease runs out).
    const state = await claimWrap(sql, postId, this.nodeId, this.leaseClock(), lease());
    if (!state) {
      given?.data.fill(0);
      return { copies: 0, notices: 0 };
    }
    const list = await getListById(sql, state.listId);
    if (!list) throw new Error('list gone');
    // A bound list (e.g. a fan-out resumed after a restart): never wrapped to a roster older than the bound.
    if (list.mailmanListId) {
      try {
        if (!this.d.mailman) throw new RosterUnavailable(list.address);
        await this.d.mailman.ready(list);
      } catch (e) {
        given?.data.fill(0); // the retry unwraps K again from its wrap to the list key
        throw e;
      }
    }
    const keys = await this.d.keysFor(list);
    const sessionKey = given ?? (await new KeyIdentity(keys.listKey).unwrap(state.listPkesk));
    let copies = 0;
    let notices = 0;
    let cursor = state.wrapAfter;
    const started = performance.now();
    // Renewed with each page, and on this timer too: a page can take long (a large page on busy cores).
    const renew = setInterval(() => {
      void sql.run('UPDATE posts SET wrap_until = ? WHERE id = ? AND wrap_owner = ? AND wrap_done = 0', [lease(), postId, this.nodeId]).catch(() => {});
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    renew.unref();
    try {
      const wrap = async (page: readonly MemberRecord[]): Promise<WrappedPage> => {
        // A bound list: a registered key alone is not membership; Mailman's roster says who gets copies.
        const members = this.d.mailman ? await this.d.mailman.deliverable(list, page) : page;
        const last = page[page.length - 1]!.address;
        const pageStarted = performance.now();
        let wrapped: WrappedPage;
        try {
          wrapped = members.length ? await wrapPage(sessionKey, members, Date.now(), this.d.wrapPool) : { copies: [], missed: [], last };
        } catch (e) {
          // One bad key (or a failed pool thread) must not stop the page, nor the post: wrap member by member, here.
          log.error('post.failed', { list: list.address, post: postId, code: codeOf(e), count: members.length });
          wrapped = await wrapEach(sessionKey, members);
        }
        wrapped.last = last; // the cursor moves past the whole page, also past members Mailman does not deliver to
        this.d.observe?.wrapPage((performance.now() - pageStarted) / 1000, wrapped.copies.length);
        return wrapped;
      };
      // With a pool, the next page is wrapped on the worker threads while this
      // one is committed here: one page ahead at most, so memory stays bounded.
      const pages = iterateMembers(sql, list.id, this.d.pageSize ?? 500, state.wrapAfter);
      const ahead = (): Promise<WrappedPage | null> => {
        const p = pages.next().then((r) => (r.done ? null : wrap(r.value)));
        p.catch(() => {}); // awaited below; a stop may leave it unawaited
        return p;
      };
      let pending: Promise<WrappedPage | null> | null = ahead();
      while (pending) {
        // Stopping: leave the rest to the next start (the cursor is committed).
        if (this.stopped) {
          await pending.catch(() => {}); // K stays alive until no worker still needs this job's copy
          await releaseWrap(sql, postId, this.nodeId).catch(() => {}); // another node may go on at once
          return { copies, notices };
        }
        const wrapped: WrappedPage | null = await pending;
        if (!wrapped) break;
        // The next page's members are read now, before the transaction below takes the connection.
        pending = this.d.wrapPool ? ahead() : null;
        // Only statements inside: the wrapping (crypto) of this page is done, the next one runs on the pool.
        try {
          await sql.tx(async () => {
            await deliver(wrapped, list, postId, state.messageId, queue);
            // Compare-and-set on the cursor under this node's lease: a page is never queued twice, even by a node that paused past its lease.
            await advanceWrap(sql, postId, cursor, wrapped.last, this.nodeId, lease());
          });
        } catch (e) {
          await pending?.catch(() => {}); // the page ahead may still use K on the pool: zeroed only after it
          throw e;
        }
        cursor = wrapped.last;
        copies += wrapped.copies.length;
        notices += wrapped.missed.length;
        this.d.onQueued?.();
        pending ??= ahead();
      }
      if (this.d.mailman) notices += await this.d.mailman.keyNotices(list);
      await finishWrap(sql, postId, this.nodeId, cursor);
      this.d.observe?.fanout((performance.now() - started) / 1000, copies, notices);
    } finally {
      clearInterval(renew);
      sessionKey.data.fill(0); // K leaves memory with the job
    }
    log.info('post.accepted', { list: list.address, post: postId, copies, notices });
    return { copies, notices };
  }
}
