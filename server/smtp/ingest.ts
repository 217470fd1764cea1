// SMTP ingest (smtp-server): accepts mail only for the list addresses served and
// their VERP bounce addresses (anything else is refused at RCPT), enforces the
// size limit both in the SIZE extension and while streaming, and bounds work
// with maxClients and the pipeline's work queue. The message is collected in
// memory only: it never touches the disk.

import { RosterUnavailable } from '../mailman/sync.ts';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { EventLog } from '../log/log.ts';
import { codeOf } from '../log/log.ts';
import type { Tokens } from '../delivery/tokens.ts';
import type { Sql } from '../store/db.ts';
import { getList, type ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import type { Pipeline } from '../pipeline/run.ts';
import { Busy, type WorkQueue } from '../pipeline/workqueue.ts';
import { ConnectionGuard, type HygieneOptions } from './hygiene.ts';
import { reasonSentence, type ReasonCode } from '../pipeline/reasons.ts';
import type { OuterFacts } from '../../shared/index.ts';
import { RequestRefusal, type RequestHandler } from '../commands/request.ts';

export interface IngestOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  maxClients: number;
  /** Per-address caps and deadlines (hygiene.ts); absent: none beyond maxClients and the idle timeout. */
  hygiene?: HygieneOptions;
  sql: Sql;
  queue: QueueStore;
  pipeline: Pipeline;
  work: WorkQueue;
  tokens: Tokens;
  log: EventLog;
  /** Commands mailed to a list's -request address (server/commands); absent: those addresses are not served. */
  requests?: RequestHandler;
}

type Target =
  | { kind: 'list'; list: ListRecord }
  | { kind: 'bounce'; list: ListRecord; deliveryId: number }
  | { kind: 'request'; list: ListRecord };

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

async function resolveTarget(sql: Sql, tokens: Tokens, address: string, requests: boolean): Promise<Target | null> {
  const a = address.toLowerCase();
  const direct = await getList(sql, a);
  if (direct) return { kind: 'list', list: direct };
  const r = requests ? /^([^+@]+)-request@(.+)$/.exec(a) : null;
  const commandsFor = r ? await getList(sql, `${r[1]}@${r[2]}`) : null;
  if (commandsFor) return { kind: 'request', list: commandsFor };
  const m = /^([^+@]+)\+bounces-[^@]+@(.+)$/.exec(a);
  if (!m) return null;
  const list = await getList(sql, `${m[1]}@${m[2]}`);
  if (!list) return null;
  const id = tokens.parseBounceAddress(list.address, a);
  return id === null ? null : { kind: 'bounce', list, deliveryId: id };
}

export function createIngest(o: IngestOptions): SMTPServer {
  const targets = new WeakMap<SMTPServerSession, Target[]>();
  const guard = o.hygiene ? new ConnectionGuard(o.hygiene, o.log) : null;
  const server = new SMTPServer({
    name: 'letterlock',
    banner: 'Letterlock list server',
    size: o.maxMessageBytes,
    maxClients: o.maxClients,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    socketTimeout: 60_000,
    closeTimeout: 5_000,
    // The list has no use for the client's DNS name, and a slow resolver would hold the slot.
    disableReverseLookup: true,
    onConnect(session, callback) {
      if (guard) guard.onConnect(session, callback);
      else callback();
    },
    onClose(session) {
      guard?.onClose(session);
    },
    onMailFrom(_address, session, callback) {
      targets.set(session, []);
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback) {
      resolveTarget(o.sql, o.tokens, address.address, o.requests !== undefined).then((t) => {
        if (!t) {
          o.log.info('smtp.rcpt_refused', { code: 'NO_SUCH_LIST' });
          return callback(smtpError('No such list here', 550));
        }
        const list = targets.get(session) ?? [];
        // A request is answered (or refused) on its own: its reply must not mix with a post's.
        if (list.length > 0 && (t.kind === 'request' || list.some((x) => x.kind === 'request'))) {
          if (list.some((x) => x.kind === t.kind && x.list.id === t.list.id)) return callback();
          return callback(smtpError('Send requests to a -request address in a mail of their own', 452));
        }
        if (list.length >= 10) return callback(smtpError('Too many list recipients in one message', 452));
        // The same list named twice (e.g. To and Cc) is one post, not two.
        const same = list.some((x) => x.kind === t.kind && x.list.id === t.list.id && (t.kind !== 'bounce' || (x.kind === 'bounce' && x.deliveryId === t.deliveryId)));
        if (!same) list.push(t);
        targets.set(session, list);
        callback();
      }, (e: unknown) => {
        // The database failed (disk, connection): a temporary refusal, the sender retries.
        o.log.error('smtp.error', { code: codeOf(e) });
        callback(smtpError('Temporary local problem, try again later', 451));
      });
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      let answered = false;
      const answer: typeof callback = (err, reply) => {
        if (answered) return;
        answered = true;
        callback(err, reply);
      };
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > o.maxMessageBytes) over = true; // stop buffering; keep draining the socket
        else chunks.push(chunk);
      });
      stream.on('error', () => answer(smtpError('Error while receiving the message', 451)));
      stream.on('end', () => {
        if (over || stream.sizeExceeded) {
          o.log.info('smtp.too_large', { bytes: size });
          return answer(smtpError(`Message too large: this server accepts at most ${o.maxMessageBytes} bytes`, 552));
        }
        const raw = Buffer.concat(chunks, size);
        chunks.length = 0;
        const envelopeFrom = session.envelope.mailFrom ? (session.envelope.mailFrom.address || null) : null;
        handle(o, targets.get(session) ?? [], envelopeFrom, raw).then(
          (reply) => answer(null, reply),
          (e) => {
            if (e instanceof SmtpRefusal) return answer(e);
            if (e instanceof RequestRefusal) return answer(smtpError(e.message, e.responseCode));
            if (e instanceof RosterUnavailable) return answer(smtpError(e.message, 451)); // a bound list's roster is unreadable and too old
            if (e instanceof Busy) {
              o.log.warn('smtp.busy', o.work.load.waiting ? { pending: o.work.load.waiting } : {});
              return answer(smtpError('Busy, try again later', 451));
            }
            o.log.error('smtp.error', { code: codeOf(e) });
            answer(smtpError('Temporary local problem, try again later', 451));
          },
        );
      });
    },
  });
  guard?.attach(server);
  return server;
}

/** A refusal decided within DATA: answered with this 5xx while the sending MTA waits, so it tells its own user. */
export class SmtpRefusal extends Error {
  override name = 'SmtpRefusal';
  readonly responseCode = 550;
}

/** RFC 3463 enhanced status for a refusal: size, format, cryptography, else policy. */
function enhancedStatus(code: ReasonCode): string {
  if (code === 'TOO_LARGE' || code === 'DECOMPRESSED_TOO_LARGE') return '5.3.4';
  if (['MIME_MALFORMED', 'NO_PAYLOAD', 'MULTIPLE_PAYLOADS', 'OPENPGP_MALFORMED', 'NOT_ENCRYPTED', 'TOO_MANY_PACKETS', 'LEGACY_UNPROTECTED'].includes(code)) return '5.6.0';
  if (code === 'WRONG_KEY' || code === 'DECRYPTION_FAILED') return '5.7.5';
  return '5.7.1';
}

const MAX_REPLY_CHARS = 480; // one reply line stays under RFC 5321's 512 octets

function refusalReply(refusals: ReadonlyArray<{ list: ListRecord; code: ReasonCode }>): SmtpRefusal {
  const statuses = new Set(refusals.map((r) => enhancedStatus(r.code)));
  const status = statuses.size === 1 ? [...statuses][0]! : '5.7.1';
  const text = refusals.length === 1
    ? `${status} ${refusals[0]!.code}: ${reasonSentence(refusals[0]!.code)}`
    : `${status} Refused by every list: ${refusals.map((r) => `${r.list.address} ${r.code}: ${reasonSentence(r.code)}`).join(' | ')}`;
  return new SmtpRefusal(text.length > MAX_REPLY_CHARS ? `${text.slice(0, MAX_REPLY_CHARS - 3)}...` : text);
}

/**
 * Runs the message for each target. Every refusal is decided here, within DATA:
 * if every list refuses, the reply is one 550 with the reasons and no bounce is
 * sent; if some lists take it and others refuse, the reply is 250 (the reply is
 * per message, not per list) and one bounce names each refused list.
 */
async function handle(o: IngestOptions, targets: Target[], envelopeFrom: string | null, raw: Buffer): Promise<string> {
  const replies: string[] = [];
  const request = targets[0]?.kind === 'request' ? targets[0] : null;
  if (request) return await o.work.run(() => o.requests!.handle(request.list, raw));
  const refused: Array<{ list: ListRecord; code: ReasonCode; outer: OuterFacts | null }> = [];
  let taken = 0;
  for (const t of targets) {
    if (t.kind === 'bounce') {
      // A bounce for one copy: record it and tell the owner; the bounce's content
      // (which may quote the encrypted copy) is not kept.
      await o.sql.tx(async () => {
        const row = await o.queue.get(t.deliveryId);
        if (row && row.list_id === t.list.id) {
          await o.queue.markFailed(row.id, 'BOUNCED: the recipient\'s mail system returned the copy', 'bounced');
          await o.queue.addReport(row.list_id, row.rcpt, row.post_id, 'BOUNCED: the recipient\'s mail system returned the copy');
        }
      });
      o.log.info('smtp.bounce_received', { list: t.list.address, delivery: t.deliveryId });
      replies.push('bounce recorded');
      taken++;
      continue;
    }
    const outcome = await o.work.run(() => o.pipeline.process({ list: t.list, envelopeFrom, raw }));
    if (outcome.result === 'refused') {
      refused.push({ list: t.list, code: outcome.code, outer: outcome.outer ?? null });
      replies.push(`${t.list.address} refused (${outcome.code})`);
    } else {
      taken++;
      replies.push(outcome.result === 'duplicate' ? 'accepted before (duplicate Message-ID)' : outcome.result);
    }
  }
  if (refused.length > 0 && taken === 0) throw refusalReply(refused);
  if (refused.length > 0) await o.pipeline.bounceRefusals(envelopeFrom, refused);
  const ok = `OK: ${replies.join('; ')}`;
  return ok.length > MAX_REPLY_CHARS ? `${ok.slice(0, MAX_REPLY_CHARS - 3)}...` : ok;
}
