// Logging that cannot carry a post's plaintext, by construction: the pipeline
// never hands the logger free text. Events have a fixed name and fields of fixed
// keys whose values are numbers, booleans, error codes or addresses. There is no
// `message` field and no way to log an Error object or a string of content.

import pino, { type Logger } from 'pino';
import type { ErrorCode } from '../../shared/index.ts';
import type { RefusalCode } from '../pipeline/reasons.ts';

export type EventName =
  | 'server.started' | 'server.stopping' | 'server.error'
  | 'smtp.listening' | 'smtp.rcpt_refused' | 'smtp.too_large' | 'smtp.busy' | 'smtp.bounce_received' | 'smtp.error'
  | 'http.listening'
  | 'post.received' | 'post.refused' | 'post.held' | 'post.accepted' | 'post.failed' | 'post.approved' | 'post.rejected'
  | 'delivery.sent' | 'delivery.retry' | 'delivery.failed' | 'delivery.recovered' | 'delivery.idle' | 'delivery.report'
  | 'member.missed'
  | 'request.received' | 'request.refused' | 'request.done' | 'request.answered' | 'request.unanswered';

/** Codes are the only strings that describe what happened. */
export type LogCode = ErrorCode | RefusalCode | `SMTP_${number}` | `NET_${string}` | 'NO_SUCH_LIST' | 'INTERNAL' | 'OK'
  | 'REQUEST_STALE' | 'REQUEST_REPLAYED' | 'REQUEST_LIMITED' | 'UNSUBSCRIBED' | 'KEY_REPLACED' | 'DELIVERY_CHANGED';

export interface EventFields {
  list?: string; // a list address
  post?: number;
  held?: number;
  delivery?: number;
  code?: LogCode;
  count?: number;
  bytes?: number;
  ms?: number;
  attempt?: number;
  port?: number;
  copies?: number;
  notices?: number;
  recovered?: number;
  pending?: number;
}

export interface EventLog {
  info(event: EventName, fields?: EventFields): void;
  warn(event: EventName, fields?: EventFields): void;
  error(event: EventName, fields?: EventFields): void;
}

/** Reduces any thrown value to a code: messages of foreign errors may quote input. */
export function codeOf(e: unknown): LogCode {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    const c = (e as { code: string }).code;
    if (/^[A-Z][A-Z0-9_]{1,40}$/.test(c)) return c.startsWith('E') ? (`NET_${c}` as LogCode) : (c as LogCode);
  }
  if (e && typeof e === 'object' && 'responseCode' in e && typeof (e as { responseCode: unknown }).responseCode === 'number') {
    return `SMTP_${(e as { responseCode: number }).responseCode}`;
  }
  return 'INTERNAL';
}

export function createEventLog(options: { file?: string; level?: string; stdout?: boolean }): EventLog {
  const streams: pino.StreamEntry[] = [];
  if (options.file) streams.push({ stream: pino.destination({ dest: options.file, mkdir: true, sync: true }) });
  if (options.stdout ?? true) streams.push({ stream: process.stdout });
  const logger: Logger = pino({ level: options.level ?? 'info', base: { pid: process.pid } }, pino.multistream(streams));
  return {
    info: (event, fields = {}) => logger.info({ event, ...fields }),
    warn: (event, fields = {}) => logger.warn({ event, ...fields }),
    error: (event, fields = {}) => logger.error({ event, ...fields }),
  };
}

export const silentLog: EventLog = { info() {}, warn() {}, error() {} };
