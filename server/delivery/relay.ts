// Where copies go: an SMTP or LMTP relay (the operator's MTA) over persistent,
// pipelined connections, or, when no relay is configured, a local Maildir folder per
// recipient so a newcomer sees encrypted copies arrive without an MTA.

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import './data-stream.ts'; // the faster DATA encoder, same bytes on the wire

export interface Envelope {
  from: string; // '' for the null sender
  to: string;
}

export type SendResult =
  | { ok: true }
  | { ok: false; permanent: boolean; code: `SMTP_${number}` | `NET_${string}`; reason: string };

export interface Relay {
  send(envelope: Envelope, mail: string | Buffer): Promise<SendResult>;
  close(): void;
  readonly description: string;
}

/** Printable, short, and never more than the relay's own reply line. */
function cleanReply(text: string | undefined): string {
  return (text ?? '').replace(/[^\x20-\x7e]/g, ' ').slice(0, 200);
}

// Only a 5xx answer about this message or recipient is permanent. A 5xx during
// AUTH or TLS is the relay's configuration, not the recipient's: retrying keeps
// the copy until the operator fixes it, instead of dropping every copy at once.
const RELAY_LEVEL = new Set(['EAUTH', 'ETLS', 'ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EPROTOCOL', 'EDNS']);

export function classifySmtpError(e: unknown): Extract<SendResult, { ok: false }> {
  const err = e as { responseCode?: number; response?: string; code?: string };
  if (typeof err.responseCode === 'number') {
    const permanent = err.responseCode >= 500 && err.responseCode < 600 && !RELAY_LEVEL.has(err.code ?? '');
    return { ok: false, permanent, code: `SMTP_${err.responseCode}`, reason: cleanReply(err.response) };
  }
  // Connection refused, timeouts, TLS trouble: the relay may come back.
  return { ok: false, permanent: false, code: `NET_${(err.code ?? 'ERROR').replace(/[^A-Z0-9_]/g, '')}`, reason: 'connection problem' };
}

export interface SmtpRelayOptions {
  /** smtp://, smtps:// or lmtp:// (LMTP, RFC 2033: the next hop answers per recipient after DATA). */
  url: string;
  maxConnections: number;
  tlsRejectUnauthorized: boolean;
  requireTLS: boolean;
}

type SmtpOptions = ConstructorParameters<typeof SMTPConnection>[0];
type SmtpError = Error & { code?: string; responseCode?: number; response?: string };

/**
 * The message as the SMTP client reads it: the client calls pipe() with its DATA
 * encoder once the envelope was accepted, and this writes the whole copy at once.
 */
class OneShotSource {
  started = false;
  constructor(private readonly bytes: Buffer) {}
  pipe<T extends NodeJS.WritableStream>(destination: T): T {
    this.started = true;
    destination.end(this.bytes);
    return destination;
  }
}

/** One persistent connection: opened (and logged in) once, then one message after another. */
class PooledConnection {
  alive = true;
  sent = 0;
  private readonly ready: Promise<void>;

  constructor(options: SmtpOptions, auth: { user: string; pass: string } | null) {
    const c = new SMTPConnection(options);
    this.c = c;
    // A dropped connection (idle timeout, 421, reset) is replaced at the next send;
    // without a listener its 'error' would end the process. A send in flight then
    // fails (nodemailer completes it with the error; the 'end' hook is a backstop).
    const gone = (err: unknown) => {
      this.alive = false;
      this.abort?.(err ?? Object.assign(new Error('connection closed'), { code: 'ECONNECTION' }));
    };
    c.on('error', gone);
    c.on('end', () => gone(null));
    this.ready = new Promise<void>((resolve, reject) => {
      // Connecting reports its failures as 'error' events, not to connect()'s callback.
      this.abort = reject;
      c.connect((err) => {
        if (err) return reject(err);
        if (!auth) return resolve();
        c.login(auth, (e) => (e ? reject(e) : resolve()));
      });
    });
    this.ready.then(() => { this.abort = null; }, () => { this.alive = false; this.abort = null; });
  }

  /** Fails whatever waits on this connection (connecting, or a send in flight). */
  private abort: ((err: unknown) => void) | null = null;

  private readonly c: SMTPConnection;

  async send(envelope: Envelope, mail: Buffer): Promise<{ started: boolean }> {
    await this.ready;
    if (!this.alive) throw Object.assign(new Error('connection closed'), { code: 'ECONNECTION' });
    // The client pipes the message only once the relay accepted the envelope (354), so
    // a failure before that is known not to have started the message (then it may go
    // out over another connection without any chance of a duplicate). A minimal
    // source, not a Readable: a stream per copy was a measurable share of the fan-out.
    const body = new OneShotSource(mail);
    return new Promise<{ started: boolean }>((resolve, reject) => {
      this.abort = (err) => reject(Object.assign(err as object, { started: body.started }));
      this.c.send({ from: envelope.from, to: [envelope.to], size: mail.byteLength }, body as unknown as Readable, (err, info) => {
        this.sent++;
        if (err) return reject(Object.assign(err, { started: body.started }));
        // LMTP answers per recipient after the data: a refusal arrives in the result, not as an error.
        const refused = (info as { rejectedErrors?: SmtpError[] } | undefined)?.rejectedErrors?.[0];
        if (refused) return reject(Object.assign(refused, { started: true }));
        resolve({ started: true });
      });
    }).finally(() => { this.abort = null; });
  }

  /** After a refusal of this message only (5xx/4xx to MAIL, RCPT or DATA): RSET and keep the connection. */
  reset(): Promise<void> {
    return new Promise((resolve) => {
      this.c.reset((err) => {
        if (err) this.close();
        resolve();
      });
    });
  }

  close(): void {
    this.alive = false;
    try {
      this.c.quit();
    } catch {
      this.c.close();
    }
  }
}

/**
 * Copies go out over at most `maxConnections` persistent connections to the relay
 * (nodemailer's SMTP client, without its message composer: every copy is already
 * complete bytes). Each connection pipelines a message's MAIL, RCPT and DATA
 * (RFC 2920) when the relay offers PIPELINING, and speaks LMTP for lmtp:// URLs.
 */
export class SmtpRelay implements Relay {
  readonly description: string;
  private readonly options: SmtpOptions;
  private readonly auth: { user: string; pass: string } | null;
  private readonly idle: PooledConnection[] = [];
  /** Senders waiting for a free connection; null: the relay closed meanwhile. */
  private readonly waiting: Array<(c: PooledConnection | null) => void> = [];
  private open = 0;
  private closed = false;

  constructor(private readonly o: SmtpRelayOptions) {
    const u = new URL(o.url);
    const lmtp = u.protocol === 'lmtp:';
    const port = Number(u.port || (u.protocol === 'smtps:' ? 465 : lmtp ? 24 : 25));
    this.description = `${u.protocol}//${u.hostname}:${port}`;
    this.auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : null;
    this.options = {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port,
      secure: u.protocol === 'smtps:',
      requireTLS: o.requireTLS,
      lmtp,
      tls: { rejectUnauthorized: o.tlsRejectUnauthorized },
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 60_000,
      logger: false,
      debug: false,
    };
  }

  private acquire(): Promise<PooledConnection | null> {
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.alive) return Promise.resolve(c);
      this.open--;
    }
    if (this.open < this.o.maxConnections) {
      this.open++;
      return Promise.resolve(new PooledConnection(this.options, this.auth));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(c: PooledConnection): void {
    if (!c.alive || this.closed) {
      this.open--;
      if (!this.closed) c.close();
      // A waiting sender gets a fresh connection in the freed place.
      const next = this.waiting.shift();
      if (next) {
        this.open++;
        next(new PooledConnection(this.options, this.auth));
      }
      return;
    }
    const next = this.waiting.shift();
    if (next) next(c);
    else this.idle.push(c);
  }

  async send(envelope: Envelope, mail: string | Buffer): Promise<SendResult> {
    const bytes = Buffer.isBuffer(mail) ? mail : Buffer.from(mail, 'utf8');
    // A connection the relay closed while idle fails before the message starts:
    // that message goes out over a fresh connection (once), not back to the queue.
    for (let attempt = 0; ; attempt++) {
      if (this.closed) return { ok: false, permanent: false, code: 'NET_ECONNECTION', reason: 'relay closed' };
      const c = await this.acquire();
      if (!c) return { ok: false, permanent: false, code: 'NET_ECONNECTION', reason: 'relay closed' };
      const reused = c.sent > 0;
      try {
        await c.send(envelope, bytes);
        this.release(c);
        return { ok: true };
      } catch (e) {
        const err = e as SmtpError & { started?: boolean };
        const transient = err.responseCode === 421 || err.code === 'ECONNECTION' || err.code === 'ESOCKET' || err.code === 'ETIMEDOUT';
        if ((err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && err.responseCode !== 421 && c.alive) {
          await c.reset(); // the relay refused this message; the connection itself is fine
        } else {
          c.close();
        }
        this.release(c);
        if (reused && transient && !err.started && attempt === 0) continue;
        return classifySmtpError(err);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.close();
    for (const w of this.waiting.splice(0)) w(null); // nobody waits forever on a closed relay
    this.open = 0;
  }
}

/** Maildir delivery (tmp/ then rename into new/), one folder per recipient. */
export class MaildirRelay implements Relay {
  private seq = 0;
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `maildir ${root}`;
  }

  async send(envelope: Envelope, mail: string | Buffer): Promise<SendResult> {
    const safe = envelope.to.toLowerCase().replace(/[^a-z0-9@._+-]/g, '_');
    const dir = join(this.root, safe);
    try {
      for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
      const name = `${Date.now()}.${process.pid}_${++this.seq}_${randomBytes(4).toString('hex')}.${hostname()}`;
      const returnPath = `Return-Path: <${envelope.from}>\r\nDelivered-To: ${safe}\r\n`;
      writeFileSync(join(dir, 'tmp', name), Buffer.concat([Buffer.from(returnPath), Buffer.isBuffer(mail) ? mail : Buffer.from(mail)]));
      renameSync(join(dir, 'tmp', name), join(dir, 'new', name));
      return { ok: true };
    } catch (e) {
      return { ok: false, permanent: false, code: `NET_${String((e as { code?: string }).code ?? 'EIO')}`, reason: 'maildir write failed' };
    }
  }

  close(): void {}
}
