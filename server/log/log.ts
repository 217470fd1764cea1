// Logging that cannot carry a post's plaintext, by construction: the pipeline
// never hands the logger free text. Events have a fixed name and fields of fixed
// keys whose values are numbers, booleans, error codes or addresses. There is no
// `message` field and no way to log an Error object or a string of content.

import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isatty } from 'node:tty';
import pino, { type Logger } from 'pino';
import type { ErrorCode } from '../../shared/index.ts';
import type { RefusalCode } from '../pipeline/reasons.ts';

export type EventName =
  | 'server.started' | 'server.stopping' | 'server.error'
  | 'smtp.listening' | 'smtp.rcpt_refused' | 'smtp.too_large' | 'smtp.busy' | 'smtp.bounce_received' | 'smtp.error'
  | 'http.listening'
  | 'server.start_failed' | 'log.dropped' | 'log.reopened' | 'delivery.error' | 'smtp.client_refused' | 'smtp.client_cut' // robustness (issue 10)
  | 'post.received' | 'post.refused' | 'post.held' | 'post.accepted' | 'post.failed' | 'post.approved' | 'post.rejected'
  | 'post.duplicate' | 'bounce.queued' | 'bounce.suppressed'
  | 'delivery.sent' | 'delivery.retry' | 'delivery.failed' | 'delivery.recovered' | 'delivery.idle' | 'delivery.report'
  | 'member.missed'
  | 'request.received' | 'request.refused' | 'request.done' | 'request.answered' | 'request.unanswered'
  | 'notice.queued' | 'notice.suppressed' | 'notice.failed' | 'digest.queued' | 'digest.failed' // operators told (server/ops/)
  | 'ops.owner_unreachable' // an owner's report or summary not sent: no registered key to seal it to (never in clear)
  // Beside Mailman (issue 11, server/mailman/)
  | 'mailman.synced' | 'mailman.sync_failed' | 'mailman.stale_roster_used' | 'mailman.post_waits' | 'mailman.member_removed'
  | 'mailman.outbox_sent' | 'mailman.outbox_failed' | 'mailman.key_notice' | 'post.discarded'
  | 'mailman.imported' | 'mailman.invited' | 'mailman.settings_fixed';

/** Codes are the only strings that describe what happened. */
export type LogCode = ErrorCode | RefusalCode | `SMTP_${number}` | `NET_${string}` | `SQLITE_${string}` | 'NO_SUCH_LIST' | 'INTERNAL' | 'OK'
  | 'RENDER_FAILED' | 'PER_IP_LIMIT' | 'FLOOD' | 'DATA_DEADLINE' | 'TOO_MANY_COMMANDS' | 'UNHANDLED_REJECTION' | 'UNCAUGHT_EXCEPTION'
  | 'NULL_SENDER' | 'AUTOMATIC_SENDER' | 'AUTO_SUBMITTED' | 'LIST_ADDRESS' | 'RATE_RECIPIENT' | 'RATE_LIST' | 'UNKNOWN_SENDER'
  | 'REQUEST_STALE' | 'REQUEST_REPLAYED' | 'REQUEST_LIMITED' | 'UNSUBSCRIBED' | 'KEY_REPLACED' | 'DELIVERY_CHANGED'
  | 'NO_KEY' | 'NOTIFY_OFF' | 'BUSY' | 'LEASE_LOST'
  | `MAILMAN_${string}`;

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
  /** Present when the log writes a file: closes it and opens the path again (after logrotate moved it). */
  reopen?(): void;
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

/**
 * An append-only log file that never throws and never emits 'error': a full
 * disk (ENOSPC) or an I/O error must not stop the server. Lines are dropped and
 * counted while writes fail; the first line that fits again is preceded by a
 * log.dropped line with the count. Writes are synchronous, so a line is on disk
 * (or counted as dropped) before the next event is logged.
 */
export class SafeLogFile {
  private fd = -1;
  private dropped = 0;
  private midLine = false;

  constructor(readonly path: string) {
    // At start a log that cannot be opened is a configuration error: say so.
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a', 0o600);
  }

  get droppedLines(): number {
    return this.dropped;
  }

  write(line: string): boolean {
    let text = line;
    if (this.dropped > 0 || this.midLine) {
      const note = `{"level":40,"time":${Date.now()},"pid":${process.pid},"event":"log.dropped","count":${this.dropped}}\n`;
      text = `${this.midLine ? '\n' : ''}${note}${line}`;
    }
    const bytes = Buffer.from(text, 'utf8');
    let off = 0;
    try {
      if (this.fd < 0) this.fd = openSync(this.path, 'a', 0o600);
      while (off < bytes.length) off += writeSync(this.fd, bytes, off);
      this.dropped = 0;
      this.midLine = false;
    } catch {
      this.dropped++;
      if (off > 0) this.midLine = true; // a torn line: the next write starts a fresh one
    }
    return true;
  }

  /**
   * Closes the file and opens its path again: after logrotate renamed it, lines
   * go to a new file rather than on into the rotated one. A path that cannot be
   * opened now is retried at each write (lines are counted as dropped meanwhile).
   */
  reopen(): void {
    this.close();
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a', 0o600);
    } catch { /* write() tries again */ }
  }

  close(): void {
    if (this.fd >= 0) {
      try { closeSync(this.fd); } catch { /* already gone */ }
      this.fd = -1;
    }
  }
}

export function createEventLog(options: { file?: string; level?: string; stdout?: boolean }): EventLog {
  const streams: pino.StreamEntry[] = [];
  const file = options.file ? new SafeLogFile(options.file) : null;
  if (file) streams.push({ stream: file });
  if (options.stdout ?? true) {
    // stdout may be a pipe that closed or a file on a full disk: an 'error' there
    // must not become an uncaught exception. Lines that cannot be written are lost.
    if (!process.stdout.listenerCount('error')) process.stdout.on('error', () => {});
    streams.push({ stream: { write: (line: string) => { try { process.stdout.write(line); } catch { /* dropped */ } return true; } } });
  }
  const logger: Logger = pino({ level: options.level ?? 'info', base: { pid: process.pid } }, pino.multistream(streams));
  const log: EventLog = {
    info: (event, fields = {}) => logger.info({ event, ...fields }),
    warn: (event, fields = {}) => logger.warn({ event, ...fields }),
    error: (event, fields = {}) => logger.error({ event, ...fields }),
  };
  if (file) {
    log.reopen = () => {
      file.reopen();
      log.info('log.reopened', {});
    };
  }
  return log;
}

/**
 * SIGHUP reopens the log file (logrotate's postrotate, or systemctl reload with
 * ExecReload=kill -HUP). Only for a log with a file, and only when not run from
 * a terminal: there SIGHUP means the terminal closed, and the server (or the
 * demo) should stop as before rather than run on unseen. Returns the function
 * that removes the handler.
 */
export function reopenOnSighup(log: EventLog): () => void {
  const reopen = log.reopen;
  if (!reopen || isatty(0)) return () => {};
  const onHup = () => reopen();
  process.on('SIGHUP', onHup);
  return () => { process.off('SIGHUP', onHup); };
}

export const silentLog: EventLog = { info() {}, warn() {}, error() {} };
