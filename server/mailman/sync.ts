// Roster sync for lists bound to a Mailman 3 Core, and the hooks the pipeline,
// fan-out and registry use. Mailman is the authority on who is on a list (regular
// members with their delivery status, nonmembers, owners, moderators) and on the
// posting policy; Letterlock's key registry (the members table) holds the keys.
//
// When: every syncIntervalSeconds for every bound list, and before each post
// (unless a sync finished within postSyncMinAgeMs), waiting at most postSyncWaitMs
// when the stored roster is young enough to fall back on, else syncTimeoutMs.
// Staleness bound: if the Core cannot be read, a post goes on with the last
// roster only while that roster is younger than maxRosterAgeSeconds; otherwise
// it waits (SMTP 451, the sending MTA retries). Log lines say which.
// A reader removed in Mailman loses their archive sessions in the sync that sees it.

import { runOnce } from '../store/coordination.ts';
import type { Config } from '../config/config.ts';
import { serviceMail } from '../delivery/notices.ts';
import { codeOf, type EventLog, type LogCode } from '../log/log.ts';
import type { Sql } from '../store/db.ts';
import { allLists, getListById, type ListRecord } from '../store/lists.ts';
import type { MemberRecord } from '../store/members.ts';
import type { QueueStore } from '../store/queue.ts';
import { deleteSessions } from '../store/registry.ts';
import { policyFacts, type MailmanPolicyFacts } from './policy.ts';
import { MailmanError, type MailmanRest } from './rest.ts';
import {
  deliverableAmong, doneOutbox, failedOutbox, getState, KEY_NOTICE_EVERY_MS, keylessUnnoticed, pendingOutbox, recordAttempt, recordKeyNotice,
  replaceRoster, type RosterEntry,
} from '../store/mailman.ts';

export type MailmanSettings = Pick<NonNullable<Config['mailman']>, 'syncIntervalSeconds' | 'maxRosterAgeSeconds' | 'syncTimeoutMs' | 'postSyncMinAgeMs' | 'postSyncWaitMs' | 'maxRoster'>;

export const DEFAULT_MAILMAN_SETTINGS: MailmanSettings = {
  syncIntervalSeconds: 60, maxRosterAgeSeconds: 600, syncTimeoutMs: 10_000, postSyncMinAgeMs: 2_000, postSyncWaitMs: 3_000, maxRoster: 200_000,
};

/** A post to a bound list whose roster cannot be read and is too old to use: SMTP 451, the sender retries. */
export class RosterUnavailable extends Error {
  override name = 'RosterUnavailable';
  readonly responseCode = 451;
  readonly code = 'MAILMAN_ROSTER_UNAVAILABLE';
  constructor(listAddress: string) {
    super(`4.4.3 The membership of ${listAddress} cannot be read from Mailman right now; try again later`);
  }
}

/** An outbox row that keeps failing for a reason other than the Core being down is dropped after this many tries. */
const MAX_OUTBOX_ATTEMPTS = 20;

export interface MailmanServiceDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  rest: MailmanRest;
  settings?: Partial<MailmanSettings>;
  /** Where members register keys (the HTTP API's public URL), read when a notice is written. */
  publicUrl(): string;
  onQueued?(): void;
  now?(): number;
}

function errorCode(e: unknown): LogCode {
  return e instanceof MailmanError ? `MAILMAN_${e.code}` : codeOf(e);
}

export class MailmanService {
  readonly settings: MailmanSettings;
  private readonly inflight = new Map<number, Promise<void>>();
  private timers: NodeJS.Timeout[] = [];
  private flushing: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly d: MailmanServiceDeps) {
    this.settings = { ...DEFAULT_MAILMAN_SETTINGS, ...d.settings };
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /** Syncs every bound list now and then on the interval; flushes the outbox every second. */
  start(): void {
    // Several nodes on one database: the roster sync and the outbox run on one node at a time (runOnce).
    const tick = () => { void runOnce(this.d.sql, 'mailman-sync', () => this.syncAll()).catch(() => {}); };
    tick();
    this.timers.push(setInterval(tick, this.settings.syncIntervalSeconds * 1000));
    this.timers.push(setInterval(() => { void runOnce(this.d.sql, 'mailman-outbox', () => this.flushOutbox()).catch(() => {}); }, 1000));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // A read from a hanging Core may take several REST timeouts: waited for 3 s at most;
    // what it reads later is not stored (the store may be closed by then).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inflight.values(), this.flushing ?? Promise.resolve()]),
      new Promise<void>((r) => { timer = setTimeout(r, 3000); }),
    ]);
    clearTimeout(timer);
  }

  /** One pass over the bound lists, one at a time; a failure is logged and left to the next pass. */
  async syncAll(): Promise<void> {
    for (const list of await allLists(this.d.sql)) {
      if (this.stopped) return;
      if (!list.mailmanListId) continue;
      await this.sync(list).catch(() => {});
    }
  }

  /** Reads the list's roster and settings from the Core and stores them; concurrent calls share one read. */
  sync(list: ListRecord): Promise<void> {
    let p = this.inflight.get(list.id);
    if (!p) {
      p = this.readRoster(list).finally(() => this.inflight.delete(list.id));
      this.inflight.set(list.id, p);
    }
    return p;
  }

  private async readRoster(list: ListRecord): Promise<void> {
    const { sql, rest, log } = this.d;
    const id = list.mailmanListId;
    if (!id) return;
    const started = this.now();
    try {
      // Changes made through Letterlock reach the Core before its roster is read back.
      await this.flushOutbox(list.id);
      const config = await rest.listConfig(id);
      const members = await rest.findMembers({ list_id: id, role: 'member' });
      const enabled = new Set((await rest.findMembers({ list_id: id, role: 'member', delivery_status: 'enabled' })).map((m) => m.email.toLowerCase()));
      const owners = await rest.roster(id, 'owner');
      const moderators = await rest.roster(id, 'moderator');
      const nonmembers = await rest.findMembers({ list_id: id, role: 'nonmember' });
      if (this.stopped) throw new MailmanError('TIMEOUT', 'stopping: the roster read is not stored');
      const total = members.length + owners.length + moderators.length + nonmembers.length;
      if (total > this.settings.maxRoster) throw new MailmanError('TOO_LARGE', `roster of ${total} entries exceeds mailman.maxRoster`);
      const entries: RosterEntry[] = [
        ...members.map((m) => ({ address: m.email, role: 'member' as const, deliveryEnabled: enabled.has(m.email.toLowerCase()), moderationAction: m.moderation_action ?? null })),
        ...owners.map((m) => ({ address: m.email, role: 'owner' as const, deliveryEnabled: true, moderationAction: null })),
        ...moderators.map((m) => ({ address: m.email, role: 'moderator' as const, deliveryEnabled: true, moderationAction: null })),
        ...nonmembers.map((m) => ({ address: m.email, role: 'nonmember' as const, deliveryEnabled: false, moderationAction: m.moderation_action ?? null })),
      ];
      const removed = await replaceRoster(sql, list.id, entries, {
        defaultMemberAction: config.default_member_action,
        defaultNonmemberAction: config.default_nonmember_action,
        subscriptionPolicy: config.subscription_policy,
        emergency: config.emergency ?? false,
        nonmemberLists: {
          accept: config.accept_these_nonmembers ?? [], hold: config.hold_these_nonmembers ?? [],
          reject: config.reject_these_nonmembers ?? [], discard: config.discard_these_nonmembers ?? [],
        },
      }, this.now());
      // Removed in Mailman (Postorius, REST, bounce processing): their archive sessions end now.
      let ended = 0;
      for (const a of removed) ended += await deleteSessions(sql, list.id, a);
      if (removed.length) log.info('mailman.member_removed', { list: list.address, count: removed.length, pending: ended });
      log.info('mailman.synced', { list: list.address, count: entries.length, ms: this.now() - started });
    } catch (e) {
      if (this.stopped) throw e;
      await recordAttempt(sql, list.id, this.now(), errorCode(e));
      log.warn('mailman.sync_failed', { list: list.address, code: errorCode(e), ms: this.now() - started });
      throw e;
    }
  }

  /**
   * Before a post to a bound list is decided: a fresh roster, or one young
   * enough, or RosterUnavailable (SMTP 451). Standalone lists pass at once.
   */
  async ready(list: ListRecord): Promise<void> {
    if (!list.mailmanListId) return;
    const before = await getState(this.d.sql, list.id);
    const ageBefore = before?.syncedAt != null ? this.now() - before.syncedAt : null;
    if (ageBefore !== null && ageBefore < this.settings.postSyncMinAgeMs) return;
    // With a roster young enough to fall back on, a post waits only postSyncWaitMs for
    // its sync (a large roster on a slow Core takes long; the sync goes on and the
    // fan-out, which starts later, reads what it stored); otherwise up to syncTimeoutMs.
    const young = ageBefore !== null && ageBefore <= this.settings.maxRosterAgeSeconds * 1000;
    const waitMs = young ? Math.min(this.settings.postSyncWaitMs, this.settings.syncTimeoutMs) : this.settings.syncTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.sync(list),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new MailmanError('TIMEOUT', `roster sync took longer than ${waitMs} ms`)), waitMs);
        }),
      ]);
    } catch (e) {
      const state = await getState(this.d.sql, list.id);
      const age = state?.syncedAt != null ? this.now() - state.syncedAt : null;
      if (age !== null && age <= this.settings.maxRosterAgeSeconds * 1000) {
        this.d.log.warn('mailman.stale_roster_used', { list: list.address, code: errorCode(e), ms: age });
        return;
      }
      this.d.log.warn('mailman.post_waits', { list: list.address, code: errorCode(e), ...(age === null ? {} : { ms: age }) });
      throw new RosterUnavailable(list.address);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Mailman's moderation facts for a post's sender (the stored roster; ready() ran first). */
  async policy(list: ListRecord, sender: string | null): Promise<MailmanPolicyFacts | undefined> {
    return list.mailmanListId ? await policyFacts(this.d.sql, list.id, sender) : undefined;
  }

  /** Of a page of key holders, those Mailman has as regular members with delivery enabled. */
  async deliverable(list: ListRecord, page: readonly MemberRecord[]): Promise<MemberRecord[]> {
    if (!list.mailmanListId) return [...page];
    const ok = await deliverableAmong(this.d.sql, list.id, page.map((m) => m.address));
    return page.filter((m) => ok.has(m.address));
  }

  /**
   * After a post's copies are queued: each deliverable member without a registered
   * key who was never told gets one short notice saying how to register a key
   * (never the post). Bounded per post; the rest are told at the next posts.
   */
  async keyNotices(list: ListRecord, max = 5000): Promise<number> {
    if (!list.mailmanListId) return 0;
    const { sql, queue } = this.d;
    const url = this.d.publicUrl();
    let sent = 0;
    let after = '';
    while (sent < max) {
      // Read and recorded in one transaction: two fan-outs at once do not both tell a member.
      const page = await sql.tx(async () => {
        const keyless = await keylessUnnoticed(sql, list.id, after, Math.min(500, max - sent), this.now() - KEY_NOTICE_EVERY_MS);
        for (const address of keyless) {
          await queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: address, mail: keyNoticeMail(list.address, address, url) });
          await recordKeyNotice(sql, list.id, address, this.now());
        }
        return keyless;
      });
      if (page.length === 0) break;
      sent += page.length;
      after = page[page.length - 1]!;
    }
    if (sent) {
      this.d.log.info('mailman.key_notice', { list: list.address, count: sent });
      this.d.onQueued?.();
    }
    return sent;
  }

  /**
   * Sends queued subscription changes to the Core (of one list, or all). Stops at
   * the first sign the Core is down (rethrown when syncing one list, so the sync fails too).
   */
  async flushOutbox(listId?: number): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => {});
    const run = this.flushRows(listId);
    this.flushing = run.finally(() => { this.flushing = null; });
    await run;
  }

  private async flushRows(listId?: number): Promise<void> {
    const { sql, rest, log } = this.d;
    for (const row of await pendingOutbox(sql, 100)) {
      if (this.stopped) return;
      if (listId !== undefined && row.listId !== listId) continue;
      const list = await getListById(sql, row.listId);
      if (!list?.mailmanListId) {
        await doneOutbox(sql, row.id);
        continue;
      }
      try {
        if (row.op === 'subscribe') {
          // Letterlock confirmed the address (an encrypted confirmation): verified and
          // confirmed; approval stays with Mailman's moderators where its policy wants one.
          const policy = (await getState(sql, list.id))?.subscriptionPolicy ?? (await rest.listConfig(list.mailmanListId)).subscription_policy;
          await rest.subscribe({ listId: list.mailmanListId, address: row.address, preVerified: true, preConfirmed: true, preApproved: policy === 'open' || policy === 'confirm' });
        } else {
          await rest.unsubscribe(list.mailmanListId, row.address);
        }
        await doneOutbox(sql, row.id);
        log.info('mailman.outbox_sent', { list: list.address, code: row.op === 'subscribe' ? 'MAILMAN_SUBSCRIBE' : 'MAILMAN_UNSUBSCRIBE' });
      } catch (e) {
        log.warn('mailman.outbox_failed', { list: list.address, code: errorCode(e), attempt: row.attempts + 1 });
        const down = e instanceof MailmanError && (e.code === 'UNREACHABLE' || e.code === 'TIMEOUT' || (e.status ?? 0) >= 500);
        if (down) throw e;
        if (row.attempts + 1 >= MAX_OUTBOX_ATTEMPTS) await doneOutbox(sql, row.id);
        else await failedOutbox(sql, row.id);
      }
    }
  }
}

export function keyNoticeMail(listAddress: string, to: string, publicUrl: string): string {
  return serviceMail(listAddress, to, `Posts on ${listAddress} need your OpenPGP key`, [
    `You are a member of ${listAddress}, an encrypted list. Its posts are encrypted to each`,
    'member\'s own OpenPGP key, and there is no key registered for your address, so a post',
    'was not sent to you. Posts are never sent unencrypted.',
    '',
    'To receive posts, register a key once:',
    `- with the Letterlock browser extension: subscribe to ${listAddress} with your key;`,
    `- or send your public key to ${publicUrl}/v1/lists/${encodeURIComponent(listAddress)}/subscriptions`,
    '  and confirm with the encrypted mail you then receive.',
    '',
    'This notice is sent once.',
  ]);
}
