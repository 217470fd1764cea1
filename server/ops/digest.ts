// The owner's digest, once per interval (a day by default): delivery failures
// since the last digest (counts by reason code, and the addresses), member keys
// that expire within 14 days, and posts held waiting for a moderator. Signed by
// the list key and encrypted to the owner's registered key (sealed.ts); only
// metadata. Bounded: a fixed number of rows is read and listed, whatever the
// list's size. A digest with nothing to say is not sent. When each list's last
// digest went out is kept in the database, so restarts neither repeat nor skip one.

import { runOnce } from '../store/coordination.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import type { ListKeys } from '../lists/lists.ts';
import { getMeta, setMeta, type Sql } from '../store/db.ts';
import { allLists, type ListRecord } from '../store/lists.ts';
import { getNotifySettings, registeredKeyOf } from '../store/notify.ts';
import { QueueStore } from '../store/queue.ts';
import { expiringKeys } from '../store/members.ts';
import { countHeld } from '../store/held.ts';
import { sealedNoticeMail } from './sealed.ts';

export const EXPIRY_HORIZON_MS = 14 * 86_400_000;
/** A digest never looks back further than this, however long the server was off. */
export const MAX_LOOKBACK_MS = 7 * 86_400_000;
/** Rows listed in one digest, per section. */
export const MAX_LISTED = 200;
/** Failure rows read per list and digest (grouped by address and reason). */
const MAX_FAILURE_GROUPS = 5000;
const MAX_CODES = 50;

export interface DigestContent {
  failures: {
    total: number;
    byCode: Array<{ code: string; count: number }>;
    addresses: Array<{ rcpt: string; code: string; count: number }>;
    /** Addresses not listed (beyond MAX_LISTED). */
    more: number;
  };
  expiring: Array<{ address: string; fingerprint: string; expiresAt: number }>;
  moreExpiring: number;
  heldWaiting: number;
}

/** The stable code at the start of a recorded reason ("SMTP_550: ..." -> SMTP_550). */
export function reasonCode(reason: string): string {
  return /^[A-Z][A-Z0-9_]{1,40}/.exec(reason)?.[0] ?? 'OTHER';
}

export async function gatherDigest(sql: Sql, listId: number, since: number, now: number): Promise<DigestContent> {
  const { total, groups } = await new QueueStore(sql).reportsBetween(listId, since, now, MAX_FAILURE_GROUPS);
  const codes = new Map<string, number>();
  const perAddress = new Map<string, { rcpt: string; code: string; count: number }>();
  for (const g of groups) {
    const code = reasonCode(g.reason);
    codes.set(code, (codes.get(code) ?? 0) + g.n);
    const key = `${g.rcpt}\0${code}`;
    const a = perAddress.get(key) ?? { rcpt: g.rcpt, code, count: 0 };
    a.count += g.n;
    perAddress.set(key, a);
  }
  const byCode = [...codes].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || a.code.localeCompare(b.code)).slice(0, MAX_CODES);
  const addresses = [...perAddress.values()].sort((a, b) => b.count - a.count || a.rcpt.localeCompare(b.rcpt));
  const horizon = now + EXPIRY_HORIZON_MS;
  const { rows: expiring, total: expiringTotal } = await expiringKeys(sql, listId, horizon, MAX_LISTED);
  const heldWaiting = await countHeld(sql, listId);
  return {
    failures: { total, byCode, addresses: addresses.slice(0, MAX_LISTED), more: Math.max(0, addresses.length - MAX_LISTED) },
    expiring, moreExpiring: Math.max(0, expiringTotal - expiring.length), heldWaiting,
  };
}

export function isEmpty(c: DigestContent): boolean {
  return c.failures.total === 0 && c.expiring.length === 0 && c.heldWaiting === 0;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function digestLines(list: ListRecord, c: DigestContent, since: number, now: number): string[] {
  const lines = [`Digest for ${list.address}, ${day(since)} to ${day(now)}.`, ''];
  lines.push(`Delivery failures: ${c.failures.total}`);
  if (c.failures.total > 0) {
    lines.push('', '  By reason:');
    for (const r of c.failures.byCode) lines.push(`    ${r.code.padEnd(24)} ${r.count}`);
    lines.push('', '  Recipients:');
    for (const a of c.failures.addresses) lines.push(`    ${a.rcpt} (${a.code}${a.count > 1 ? `, ${a.count} times` : ''})`);
    if (c.failures.more > 0) lines.push(`    ... and ${c.failures.more} more`);
    lines.push('', '  Details: GET /v1/admin/lists/{list}/failures on the operator API.');
  }
  lines.push('', `Member keys that expire within 14 days: ${c.expiring.length + c.moreExpiring}`);
  for (const e of c.expiring) {
    lines.push(`    ${e.address} ${e.fingerprint} ${e.expiresAt > now ? 'expires' : 'expired'} ${day(e.expiresAt)}`);
  }
  if (c.moreExpiring > 0) lines.push(`    ... and ${c.moreExpiring} more`);
  lines.push('', `Posts held for a moderator: ${c.heldWaiting}${c.heldWaiting > 0 ? ' (letterlock held list)' : ''}`);
  lines.push('', `This digest is turned off with: letterlock list set ${list.address} --no-digest`);
  return lines;
}

export type DigestOutcome = 'sent' | 'empty' | 'off' | 'no-owner' | 'no-key' | 'not-due' | 'baseline' | 'failed';

export interface DigestDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  intervalMs: number;
  onQueued?(): void;
  /** Recorded in job_runs beside each timed pass (several nodes). */
  nodeId?: string;
  now?: () => number;
}

const lastKey = (listId: number) => `digest_at:${listId}`;

export class DigestJob {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<Array<{ list: string; outcome: DigestOutcome }>> | null = null;

  constructor(private readonly d: DigestDeps) {}

  /** Checks every min(interval, an hour) which lists are due. */
  start(): void {
    const every = Math.min(this.d.intervalMs, 3600_000);
    // Several nodes on one database: one pass at a time across them, and at most one
    // per half period (each list's digest_at decides what is due).
    this.timer = setInterval(() => {
      void runOnce(this.d.sql, 'digest', () => this.run(), { minIntervalMs: Math.floor(every / 2), ...(this.d.nodeId ? { nodeId: this.d.nodeId } : {}) }).catch(() => {});
    }, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Resolves when a pass in progress is done. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /**
   * One pass over the lists. `force`: send now to every list whose switch is on,
   * due or not (the operator's "send it now", and tests). Runs do not overlap.
   */
  run(options: { force?: boolean } = {}): Promise<Array<{ list: string; outcome: DigestOutcome }>> {
    this.running ??= this.pass(options.force ?? false).finally(() => { this.running = null; });
    return this.running;
  }

  private async pass(force: boolean): Promise<Array<{ list: string; outcome: DigestOutcome }>> {
    const out: Array<{ list: string; outcome: DigestOutcome }> = [];
    for (const list of await allLists(this.d.sql)) {
      let outcome: DigestOutcome;
      try {
        outcome = await this.one(list, force);
      } catch (e) {
        // One list's failure stays with that list; the next pass tries again.
        this.d.log.error('digest.failed', { list: list.address, code: codeOf(e) });
        outcome = 'failed';
      }
      out.push({ list: list.address, outcome });
      await new Promise((r) => setImmediate(r)); // many lists: let the loop breathe
    }
    return out;
  }

  private async one(list: ListRecord, force: boolean): Promise<DigestOutcome> {
    const { sql, log } = this.d;
    const now = this.d.now?.() ?? Date.now();
    const lastRaw = await getMeta(sql, lastKey(list.id));
    const last = Number(lastRaw ?? NaN);
    const known = Number.isFinite(last);
    if (!force) {
      if (!known) {
        // First sight of this list: the first digest covers from now on.
        await setMeta(sql, lastKey(list.id), String(now));
        return 'baseline';
      }
      if (now - last < this.d.intervalMs) return 'not-due';
    }
    if (!(await getNotifySettings(sql, list.id)).digest) return 'off';
    if (!list.owner) return 'no-owner';
    const since = Math.max(known ? last : now - this.d.intervalMs, now - MAX_LOOKBACK_MS);
    const content = await gatherDigest(sql, list.id, since, now);
    let outcome: DigestOutcome = 'empty';
    if (!isEmpty(content)) {
      const key = await registeredKeyOf(sql, list.id, list.owner, now);
      const mail = key && await sealedNoticeMail({
        listAddress: list.address, listKey: (await this.d.keysFor(list)).listKey, to: list.owner, toKey: key.publicKey,
        subject: `Digest for ${list.address}: ${content.failures.total} failed, ${content.expiring.length + content.moreExpiring} keys expiring`,
        outerSubject: `Digest for ${list.address}`, lines: digestLines(list, content, since, now), date: new Date(now),
      });
      if (!mail) {
        log.warn('digest.failed', { list: list.address, code: 'NO_KEY' });
        outcome = 'no-key';
      } else {
        // Queued only if no other process sent this digest since it was read (several nodes on one database).
        const queued = await sql.tx(async () => {
          if (!force && await getMeta(sql, lastKey(list.id)) !== lastRaw) return false;
          await this.d.queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: list.owner!, mail });
          await setMeta(sql, lastKey(list.id), String(now));
          return true;
        });
        if (!queued) return 'not-due';
        this.d.onQueued?.();
        log.info('digest.queued', { list: list.address, count: content.failures.total });
        return 'sent';
      }
    }
    await setMeta(sql, lastKey(list.id), String(now));
    return outcome;
  }
}
