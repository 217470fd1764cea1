// Mail to a list's -request address (news-request@… for news@…): commands from
// members who use only an OpenPGP mail program or gpg. The mail is parsed and
// decrypted in the open pool like a post; it must be signed by the key
// registered for its From address. Every refusal is one and the same 550 within
// the SMTP transaction (no backscatter), whatever the reason and whether or not
// the sender is a member, so a refusal tells nobody who is subscribed. An
// accepted request gets one answer, signed by the list key and encrypted to the
// member, queued already encrypted.

import { createHash } from 'node:crypto';
import { isLetterlockError } from '../../shared/index.ts';
import type { ListKeys } from '../lists/lists.ts';
import { codeOf, type EventLog, type LogCode } from '../log/log.ts';
import type { OpenedMail, ParsedMail } from '../pipeline/open-worker.ts';
import type { OpenPool } from '../pipeline/pool.ts';
import type { Sql } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import { getMember } from '../store/members.ts';
import type { QueueStore } from '../store/queue.ts';
import { addRateEvent, rateWindow, recordNonce } from '../store/registry.ts';
import { buildAnswerMail } from './answer.ts';
import { MAX_CONTENT_BYTES, readContent } from './content.ts';
import { parseCommands } from './parse.ts';
import { runCommands } from './run.ts';

/** A request's signature must be this recent (and is remembered longer, see NONCE_KEEP_MS), so a captured request cannot be replayed. */
export const REQUEST_MAX_AGE_MS = 12 * 3_600_000;
const REQUEST_MAX_FUTURE_MS = 3_600_000;

export const REQUEST_REFUSAL =
  '5.7.1 Request refused, nothing was done: mail to this address must be encrypted to the list key and signed ' +
  'by the key registered for its From address, signed within the last 12 hours and sent only once. ' +
  'Write x-help in such a mail for the commands.';

/** The one refusal of a request, answered with SMTP 550 while the sender's MTA waits. */
export class RequestRefusal extends Error {
  override name = 'RequestRefusal';
  constructor(readonly reason: LogCode, readonly responseCode = 550, message = REQUEST_REFUSAL) {
    super(message);
  }
}

/** Answers one member may ask for per hour: each costs a signature and an encryption, and perhaps megabytes of keys. */
export const MAX_REQUESTS_PER_HOUR = 30;
const HOUR_MS = 3_600_000;

export interface RequestDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  pool: OpenPool;
  onQueued?(): void;
  now?(): number;
}

/** A coded refusal (bad input) becomes the request refusal; anything else is the server's problem (451). */
function codeOrThrow(e: unknown): LogCode {
  if (isLetterlockError(e)) return e.code;
  throw e;
}

export class RequestHandler {
  constructor(private readonly deps: RequestDeps) {}

  private refuse(list: ListRecord, reason: LogCode): never {
    this.deps.log.info('request.refused', { list: list.address, code: reason });
    throw new RequestRefusal(reason);
  }

  /** Runs one request; resolves with the SMTP reply text or throws RequestRefusal. Unknown errors propagate (451). */
  async handle(list: ListRecord, raw: Uint8Array): Promise<string> {
    const { sql, pool, log } = this.deps;
    const now = new Date(this.deps.now?.() ?? Date.now());
    log.info('request.received', { list: list.address, bytes: raw.byteLength });
    let parsed: ParsedMail;
    try {
      parsed = await pool.parse(raw, list.maxBytes);
    } catch (e) {
      this.refuse(list, codeOrThrow(e));
    }
    const member = parsed.outer.from ? await getMember(sql, list.id, parsed.outer.from) : null;
    const keys = await this.deps.keysFor(list);
    // Decrypted for members and strangers alike, so a failure here says nothing about membership.
    let opened: OpenedMail;
    try {
      opened = await pool.open(parsed.payload, list.maxBytes, keys.listKey, member?.keyState === 'valid' ? member.publicKey : null, now, MAX_CONTENT_BYTES);
    } catch (e) {
      this.refuse(list, codeOrThrow(e));
    }
    if (!opened.content) this.refuse(list, 'TOO_LARGE');
    const v = opened.verification;
    if (!member || member.keyState !== 'valid' || !v?.valid) this.refuse(list, v && !v.valid ? v.code : 'NOT_MEMBER');
    const signedAt = v.signedAt?.getTime() ?? 0;
    if (signedAt < now.getTime() - REQUEST_MAX_AGE_MS || signedAt > now.getTime() + REQUEST_MAX_FUTURE_MS) this.refuse(list, 'REQUEST_STALE');
    // Counted only once the signature holds (nobody else can use up a member's budget); a 451 lets the
    // sender's MTA try again later, within the signature's 12 hours.
    const bucketKey = `${list.id}:${member.address}`;
    // The signed packets differ with every signature: their digest marks this request as done.
    const digest = createHash('sha256').update(opened.innerPackets).digest('hex');
    // The hourly count, the replay mark and the new count in one transaction: two requests
    // at once cannot both pass the last free slot, nor both run as the first of a replay.
    await sql.tx(async () => {
      if ((await rateWindow(sql, 'request', bucketKey, now.getTime() - HOUR_MS, 0)).n >= MAX_REQUESTS_PER_HOUR) {
        log.warn('request.refused', { list: list.address, code: 'REQUEST_LIMITED' });
        throw new RequestRefusal('REQUEST_LIMITED', 451, `4.7.1 More than ${MAX_REQUESTS_PER_HOUR} requests in an hour from this address; try again later`);
      }
      if (!await recordNonce(sql, list.id, `request:${digest}`, now.getTime())) this.refuse(list, 'REQUEST_REPLAYED');
      await addRateEvent(sql, 'request', bucketKey, now.getTime(), now.getTime() + HOUR_MS);
    });

    // From here the request counts as done (its digest is recorded): a failure must not turn into a
    // 451 whose retry would then be refused as a replay.
    const content = await readContent(opened.content).catch(() => ({ text: '', keys: [] }));
    const commands = parseCommands(content.text);
    const answer = await runCommands(sql, list, member, commands, content, now);
    for (const code of answer.done) log.info('request.done', { list: list.address, code });
    let mail: string | null;
    try {
      mail = await buildAnswerMail(list.address, keys.listKey, member.address, parsed.outer.messageId, answer, now);
    } catch (e) {
      log.error('request.unanswered', { list: list.address, code: codeOf(e) });
      return 'OK: request done, but its answer could not be made; the server log has the code';
    }
    if (!mail) {
      log.warn('request.unanswered', { list: list.address, code: 'KEY_NO_ENCRYPTION' });
      return 'OK: request done; no key of yours can take the answer';
    }
    await this.deps.queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: member.address, mail });
    this.deps.onQueued?.();
    log.info('request.answered', { list: list.address, count: commands.commands.length, bytes: mail.length });
    return 'OK: request done; the answer is on its way, encrypted to your key';
  }
}
