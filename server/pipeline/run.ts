// The pipeline, step after step: parse -> open -> verify -> decide -> seal ->
// archive -> wrap -> deliver. Data flows one way. A refusal at any step becomes a
// content-free bounce; a hold keeps the ciphertext as it arrived. A post is
// accepted (SMTP 250) once its archive record is committed; the fan-out (wrap +
// queue, page by page) then runs in the background and resumes after a crash.

import { domainOf, isLetterlockError, newMessageId, type ErrorCode } from '../../shared/index.ts';
import { bounceMail, heldMail } from '../delivery/notices.ts';
import type { ListKeys } from '../lists/lists.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import type { Db } from '../store/db.ts';
import { deleteHeld, getHeld, insertHeld } from '../store/held.ts';
import { getListById, type ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import { archive } from './archive.ts';
import { decide } from './decide.ts';
import { open } from './open.ts';
import { parse } from './parse.ts';
import { Refusal, type ReasonCode } from './reasons.ts';
import { seal } from './seal.ts';
import type { Incoming, Parsed } from './types.ts';
import type { OpenPool } from './pool.ts';
import { claimedSender } from './verify.ts';
import type { Fanout } from './wrap.ts';

export type Outcome =
  | { result: 'accepted'; postId: number; fanout: Promise<{ copies: number; notices: number }> }
  | { result: 'held'; heldId: number }
  | { result: 'refused'; code: ReasonCode; bounced: boolean };

export interface PipelineDeps {
  db: Db;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  fanout: Fanout;
  /** Worker threads for the parse/open/verify work that input controls. */
  pool: OpenPool;
  /** Called after new rows were queued, to wake the delivery worker. */
  onQueued?(): void;
}

function refusalCode(e: unknown): ReasonCode | null {
  if (e instanceof Refusal) return e.code;
  if (isLetterlockError(e)) return e.code as ErrorCode;
  return null;
}

export class Pipeline {
  constructor(private readonly deps: PipelineDeps) {}

  /** Runs a post that just arrived over SMTP. Unknown errors propagate (SMTP answers 451). */
  async process(incoming: Incoming): Promise<Outcome> {
    const { log } = this.deps;
    log.info('post.received', { list: incoming.list.address, bytes: incoming.raw.byteLength });
    let parsed: Parsed;
    try {
      parsed = await parse(incoming, this.deps.pool);
    } catch (e) {
      const code = refusalCode(e);
      if (!code) throw e;
      return this.refuse(incoming.list, incoming.envelopeFrom, null, code);
    }
    return this.fromParsed(parsed, false);
  }

  /** A moderator's approval runs the held ciphertext through the pipeline again, from open. */
  async approve(heldId: number): Promise<Outcome> {
    const h = getHeld(this.deps.db, heldId);
    if (!h) throw new Error(`no held post ${heldId}`);
    const list = getListById(this.deps.db, h.listId)!;
    const parsed: Parsed = { list, envelopeFrom: h.envelopeFrom, size: h.size, form: 'pgp-mime', payload: h.payload, outer: h.outer };
    const outcome = await this.fromParsed(parsed, true);
    deleteHeld(this.deps.db, heldId);
    this.deps.log.info('post.approved', { list: list.address, held: heldId });
    return outcome;
  }

  reject(heldId: number): Outcome {
    const h = getHeld(this.deps.db, heldId);
    if (!h) throw new Error(`no held post ${heldId}`);
    const list = getListById(this.deps.db, h.listId)!;
    const outcome = this.refuse(list, h.envelopeFrom, h.outer.messageId, 'REJECTED_BY_MODERATOR');
    deleteHeld(this.deps.db, heldId);
    this.deps.log.info('post.rejected', { list: list.address, held: heldId });
    return outcome;
  }

  private async fromParsed(parsed: Parsed, approved: boolean): Promise<Outcome> {
    const { db, queue, log } = this.deps;
    const list = parsed.list;
    try {
      const keys = await this.deps.keysFor(list);
      const verified = await open(parsed, keys.listKey, claimedSender(parsed, db), this.deps.pool);
      const decision = decide(verified, { approved });
      if (decision.action === 'refuse') throw new Refusal(decision.code);
      if (decision.action === 'hold') {
        // Keep only the payload as it arrived (ciphertext to the list key).
        const heldId = db.transaction(() => {
          const id = insertHeld(db, {
            listId: list.id, sender: parsed.outer.from, envelopeFrom: parsed.envelopeFrom, payload: parsed.payload,
            outer: parsed.outer, size: parsed.size, reason: decision.reason,
          });
          const to = parsed.envelopeFrom ?? parsed.outer.from;
          if (to) queue.add({ listId: list.id, postId: null, kind: 'bounce', rcpt: to, mail: heldMail(list.address, to, parsed.outer.messageId) });
          return id;
        })();
        log.info('post.held', { list: list.address, held: heldId });
        this.deps.onQueued?.();
        return { result: 'held', heldId };
      }
      const sealed = await seal(verified);
      const messageId = parsed.outer.messageId ?? newMessageId(domainOf(list.address));
      const postId = await archive(sealed, keys, messageId, db);
      const fanout = this.deps.fanout.run(postId, sealed.sealed.sessionKey);
      fanout.catch(() => {}); // logged by the fan-out; resumed on restart
      return { result: 'accepted', postId, fanout };
    } catch (e) {
      const code = refusalCode(e);
      if (!code) {
        log.error('post.failed', { list: list.address, code: codeOf(e) });
        throw e;
      }
      return this.refuse(list, parsed.envelopeFrom, parsed.outer.messageId, code);
    }
  }

  private refuse(list: ListRecord, envelopeFrom: string | null, messageId: string | null, code: ReasonCode): Outcome {
    const { queue, log } = this.deps;
    // Bounces go to the envelope sender (where mail systems expect them): never to
    // the null sender <> (a bounce must not bounce) nor to the list's own
    // addresses (no loops).
    const own = splitLocal(list.address);
    const to = envelopeFrom?.toLowerCase() ?? null;
    const ownAddress = to !== null && (to === list.address || (to.startsWith(`${own.local}+`) && to.endsWith(`@${own.domain}`)));
    const bounced = to !== null && !ownAddress;
    if (bounced) {
      queue.add({ listId: list.id, postId: null, kind: 'bounce', rcpt: to, mail: bounceMail(list.address, to, code, messageId) });
      this.deps.onQueued?.();
    }
    log.info('post.refused', { list: list.address, code });
    return { result: 'refused', code, bounced };
  }
}

function splitLocal(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}
