// The pipeline, step after step: parse -> open -> verify -> decide -> replay ->
// seal -> archive -> wrap -> deliver. Data flows one way. A refusal of a post that
// arrived over SMTP is returned to ingest, which answers 550 with the reason while
// the sender's MTA waits (no bounce, so no backscatter); only refusals made later
// (a moderator's rejection, a held post that fails on approval) become a
// content-free bounce, under the rules of backscatter.ts. A hold keeps the
// ciphertext as it arrived. A post is accepted (SMTP 250) once its archive record
// is committed; the fan-out (wrap + queue, page by page) then runs in the
// background and resumes after a crash.

import { domainOf, isLetterlockError, newMessageId, outerFactsOf, type ErrorCode, type OuterFacts } from '../../shared/index.ts';
import { bounceMail, heldMail, refusalsMail } from '../delivery/notices.ts';
import type { ListKeys } from '../lists/lists.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import type { Sql } from '../store/db.ts';
import { claimDecision, deleteHeld, getHeld, insertHeld, type HeldRecord } from '../store/held.ts';
import { getListById, type ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import { archive } from './archive.ts';
import { queueBounce } from './backscatter.ts';
import { decide } from './decide.ts';
import { open } from './open.ts';
import { parse } from './parse.ts';
import { Refusal, type ReasonCode } from './reasons.ts';
import { checkReplay, threadingOf } from './replay.ts';
import { seal } from './seal.ts';
import type { Incoming, Parsed } from './types.ts';
import type { OpenPool } from './pool.ts';
import { claimedSender } from './verify.ts';
import type { Fanout } from './wrap.ts';
import { RosterUnavailable, type MailmanService } from '../mailman/sync.ts';

export type Outcome =
  | { result: 'accepted'; postId: number; fanout: Promise<{ copies: number; notices: number }> }
  | { result: 'held'; heldId: number }
  /** The same outer Message-ID was accepted already (an MTA retry): success, no second post. */
  | { result: 'duplicate'; postId: number }
  /** Mailman's "discard" on a bound list: answered 250, not delivered. */
  | { result: 'discarded' }
  /** `outer`: the outer facts when the mail could be parsed (for a later bounce's rules). */
  | { result: 'refused'; code: ReasonCode; bounced: boolean; outer?: OuterFacts | null };

export interface PipelineDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  fanout: Fanout;
  /** Worker threads for the parse/open/verify work that input controls. */
  pool: OpenPool;
  /** Called after new rows were queued, to wake the delivery worker. */
  onQueued?(): void;
  /** Lists bound to Mailman: roster freshness before a post, and Mailman's policy (its moderators are told of holds by onHeld). */
  mailman?: Pick<MailmanService, 'ready' | 'policy'>;
  /** Called after a hold is committed (the moderators' notices, server/ops/held-notice.ts); must not throw. */
  onHeld?(list: ListRecord, heldId: number): void;
  /** This node's id (config.ts nodeId), recorded with a decision's claim on a held post. */
  nodeId?: string;
}

/**
 * A decision on a held post that cannot be made: the post is gone (decided
 * already), or another decision on it is under way (another moderator, the CLI,
 * another node). Nothing was done.
 */
export class HeldUnavailable extends Error {
  constructor(readonly heldId: number, readonly why: 'gone' | 'busy') {
    super(why === 'gone' ? `no held post ${heldId} (decided already?)` : `a decision on held post ${heldId} is under way`);
    this.name = 'HeldUnavailable';
  }
}

function refusalCode(e: unknown): ReasonCode | null {
  if (e instanceof Refusal) return e.code;
  if (isLetterlockError(e)) return e.code as ErrorCode;
  return null;
}

export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  /**
   * Runs a post that just arrived over SMTP. A refusal is returned, not bounced:
   * ingest answers it with a 550. Unknown errors propagate (SMTP answers 451).
   */
  async process(incoming: Incoming): Promise<Outcome> {
    const { log } = this.deps;
    log.info('post.received', { list: incoming.list.address, bytes: incoming.raw.byteLength });
    let parsed: Parsed;
    try {
      parsed = await parse(incoming, this.deps.pool);
    } catch (e) {
      const code = refusalCode(e);
      if (!code) throw e;
      log.info('post.refused', { list: incoming.list.address, code });
      return { result: 'refused', code, bounced: false, outer: outerFactsOf(e) };
    }
    return this.fromParsed(parsed, { approved: false });
  }

  /**
   * One bounce for a message some of its lists accepted and others refused
   * (ingest answered 250 for the whole message): it names each refused list.
   */
  async bounceRefusals(envelopeFrom: string | null, refusals: ReadonlyArray<{ list: ListRecord; code: ReasonCode; outer: OuterFacts | null }>): Promise<boolean> {
    const first = refusals[0];
    if (!first) return false;
    const outer = refusals.find((r) => r.outer)?.outer ?? null;
    if (!outer) {
      // Unparsed everywhere it was refused: whether it was automatic is unknown, so no bounce.
      this.deps.log.info('bounce.suppressed', { list: first.list.address, code: 'UNKNOWN_SENDER' });
      return false;
    }
    const items = refusals.map((r) => ({ list: r.list.address, code: r.code }));
    return await queueBounce(this.deps, first.list, envelopeFrom, outer.autoSubmitted, (to) => refusalsMail(first.list.address, to, items, outer.messageId));
  }

  /**
   * One decision per held post at a time (claimDecision): two moderators, or a
   * moderator and the CLI, deciding at once would otherwise both run it: the post
   * delivered and its sender told it was rejected, or a second approval bounced as
   * a duplicate.
   */
  private async decideOnce<T>(heldId: number, decision: (h: HeldRecord) => Promise<T>): Promise<T> {
    const release = await claimDecision(this.deps.sql, heldId, this.deps.nodeId ?? null);
    if (!release) throw new HeldUnavailable(heldId, 'busy');
    try {
      const h = await getHeld(this.deps.sql, heldId);
      if (!h) throw new HeldUnavailable(heldId, 'gone');
      return await decision(h);
    } finally {
      await release().catch(() => undefined); // an old claim is taken over after its lease anyway
    }
  }

  /** A moderator's approval runs the held ciphertext through the pipeline again, from open. */
  approve(heldId: number): Promise<Outcome> {
    return this.decideOnce(heldId, async (h) => {
      const list = (await getListById(this.deps.sql, h.listId))!;
      const parsed: Parsed = { list, envelopeFrom: h.envelopeFrom, size: h.size, form: 'pgp-mime', payload: h.payload, outer: h.outer, clear: null };
      // Replay rules judge the post as of when it was held: a moderator may approve it after the window.
      const outcome = await this.fromParsed(parsed, { approved: true, heldAt: h.receivedAt });
      await deleteHeld(this.deps.sql, heldId);
      this.deps.log.info('post.approved', { list: list.address, held: heldId });
      return outcome;
    });
  }

  reject(heldId: number): Promise<Outcome> {
    return this.decideOnce(heldId, async (h) => {
      const list = (await getListById(this.deps.sql, h.listId))!;
      // The held row is taken and the bounce queued in one transaction.
      const outcome = await this.deps.sql.tx(async () => {
        if (!await deleteHeld(this.deps.sql, heldId)) throw new HeldUnavailable(heldId, 'gone');
        return this.refuse(list, h.envelopeFrom, h.outer, 'REJECTED_BY_MODERATOR', true);
      });
      this.deps.log.info('post.rejected', { list: list.address, held: heldId });
      return outcome;
    });
  }

  /** `approved`: a moderator's approval of a held post (bounces are then asynchronous); `heldAt`: when it was held. */
  private async fromParsed(parsed: Parsed, how: { approved: boolean; heldAt?: number }): Promise<Outcome> {
    const { sql, log } = this.deps;
    const list = parsed.list;
    // A bound list's roster must be fresh enough before anything is decided; else RosterUnavailable (SMTP 451).
    // Without the roster service (no "mailman" configured) a bound list's post waits: never the standalone policy.
    if (list.mailmanListId && !this.deps.mailman) throw new RosterUnavailable(list.address);
    await this.deps.mailman?.ready(list);
    try {
      const keys = await this.deps.keysFor(list);
      const verified = await open(parsed, keys.listKey, await claimedSender(parsed, sql), this.deps.pool);
      const mailman = await this.deps.mailman?.policy(list, parsed.outer.from);
      const decision = decide(verified, { approved: how.approved, ...(mailman ? { mailman } : {}) });
      if (decision.action === 'refuse') throw new Refusal(decision.code);
      if (decision.action === 'discard') {
        log.info('post.discarded', { list: list.address });
        return { result: 'discarded' };
      }
      const replay = await checkReplay(verified, sql, how.heldAt === undefined ? {} : { heldAt: how.heldAt });
      if (replay.action === 'duplicate') return this.duplicate(list, replay.postId);
      if (decision.action === 'hold') {
        // Keep only the payload as it arrived (ciphertext to the list key).
        const heldId = await sql.tx(async () => {
          const id = await insertHeld(sql, {
            listId: list.id, sender: parsed.outer.from, envelopeFrom: parsed.envelopeFrom, payload: parsed.payload,
            outer: parsed.outer, size: parsed.size, reason: decision.reason,
          });
          await queueBounce(this.deps, list, parsed.envelopeFrom, parsed.outer.autoSubmitted, (to) => heldMail(list.address, to, parsed.outer.messageId));
          return id;
        });
        log.info('post.held', { list: list.address, held: heldId });
        this.deps.onHeld?.(list, heldId);
        return { result: 'held', heldId };
      }
      const sealed = await seal(verified);
      const messageId = threadingOf(verified).messageId ?? newMessageId(domainOf(list.address));
      let archived;
      try {
        archived = await archive(sealed, keys, messageId, sql);
      } catch (e) {
        sealed.sealed.sessionKey.data.fill(0); // no fan-out will take K
        throw e;
      }
      if (archived.duplicate) {
        sealed.sealed.sessionKey.data.fill(0);
        return this.duplicate(list, archived.postId);
      }
      const postId = archived.postId;
      const fanout = this.deps.fanout.run(postId, sealed.sealed.sessionKey);
      fanout.catch(() => {}); // logged by the fan-out; resumed on restart
      return { result: 'accepted', postId, fanout };
    } catch (e) {
      const code = refusalCode(e);
      if (!code) {
        log.error('post.failed', { list: list.address, code: codeOf(e) });
        throw e;
      }
      return await this.refuse(list, parsed.envelopeFrom, parsed.outer, code, how.approved);
    }
  }

  private duplicate(list: ListRecord, postId: number): Outcome {
    this.deps.log.info('post.duplicate', { list: list.address, post: postId });
    return { result: 'duplicate', postId };
  }

  /** `bounce`: only for refusals made after the SMTP session (moderation); SMTP refusals are answered with a 550. */
  private async refuse(list: ListRecord, envelopeFrom: string | null, outer: OuterFacts, code: ReasonCode, bounce: boolean): Promise<Outcome> {
    const bounced = bounce && await queueBounce(this.deps, list, envelopeFrom, outer.autoSubmitted, (to) => bounceMail(list.address, to, code, outer.messageId));
    this.deps.log.info('post.refused', { list: list.address, code });
    // The outer facts go back to ingest only (for the one bounce of a multi-list message).
    return bounce ? { result: 'refused', code, bounced } : { result: 'refused', code, bounced, outer };
  }
}
