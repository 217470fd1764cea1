// Where copies go: an SMTP relay (the operator's MTA) over a pooled nodemailer
// transport, or, when no relay is configured, a local Maildir folder per
// recipient so a newcomer sees encrypted copies arrive without an MTA.

import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';

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
  url: string;
  maxConnections: number;
  tlsRejectUnauthorized: boolean;
  requireTLS: boolean;
}

export class SmtpRelay implements Relay {
  private readonly transport;
  readonly description: string;

  constructor(o: SmtpRelayOptions) {
    const u = new URL(o.url);
    this.description = `${u.protocol}//${u.hostname}:${u.port || (u.protocol === 'smtps:' ? 465 : 25)}`;
    this.transport = nodemailer.createTransport({
      pool: true,
      host: u.hostname,
      port: Number(u.port || (u.protocol === 'smtps:' ? 465 : 25)),
      secure: u.protocol === 'smtps:',
      requireTLS: o.requireTLS,
      ...(u.username ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } } : {}),
      tls: { rejectUnauthorized: o.tlsRejectUnauthorized },
      maxConnections: o.maxConnections,
      maxMessages: Infinity,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 60_000,
      logger: false,
      debug: false,
    });
  }

  async send(envelope: Envelope, mail: string | Buffer): Promise<SendResult> {
    try {
      await this.transport.sendMail({ envelope: { from: envelope.from, to: [envelope.to] }, raw: mail });
      return { ok: true };
    } catch (e) {
      return classifySmtpError(e);
    }
  }

  close(): void {
    this.transport.close();
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
