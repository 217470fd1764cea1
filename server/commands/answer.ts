// The answer to a request: a MIME entity (the text, and the fetched keys as an
// application/pgp-keys attachment) signed by the list key and encrypted to the
// member, in a PGP/MIME mail. It is encrypted before it is queued: the queue
// never holds an answer's plaintext.

import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { armorMessage, buildPgpMimeMail, domainOf, formatDate, newBoundary, newMessageId, type HeaderList } from '../../shared/index.ts';
import { listIdOf } from '../delivery/headers.ts';
import type { Answer } from './run.ts';
import { requestAddressOf } from './run.ts';

function crlf(lines: string[]): string {
  return lines.join('\r\n').replace(/\r?\n/g, '\r\n');
}

/** The inner entity, with the subject as a protected header (RFC 9788) so mail clients show it. */
function innerEntity(subject: string, answer: Answer): Uint8Array {
  const text = `${crlf(answer.lines)}\r\n`;
  const textPart = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}`;
  if (answer.keys.length === 0) {
    return new TextEncoder().encode(`Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nContent-Transfer-Encoding: 8bit\r\nSubject: ${subject}\r\n\r\n${text}`);
  }
  const boundary = newBoundary();
  const keys = answer.keys.map((k) => k.trim().replace(/\r?\n/g, '\r\n')).join('\r\n');
  return new TextEncoder().encode(
    `Content-Type: multipart/mixed; boundary="${boundary}"; protected-headers="v1"\r\nSubject: ${subject}\r\n\r\n` +
    `--${boundary}\r\n${textPart}` +
    `--${boundary}\r\nContent-Type: application/pgp-keys; name="keys.asc"\r\nContent-Disposition: attachment; filename="keys.asc"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${keys}\r\n` +
    `--${boundary}--\r\n`,
  );
}

/** Keys that can take an encrypted answer now (a key just revoked cannot). */
async function usable(armored: string[], date: Date): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const a of armored) {
    try {
      const k = await openpgp.readKey({ armoredKey: a });
      await k.getEncryptionKey(undefined, date);
      keys.push(k.isPrivate() ? k.toPublic() : (k as PublicKey));
    } catch {
      // not usable for encryption: skipped
    }
  }
  return keys;
}

/** The whole answer mail, or null when no key of the member can take it. */
export async function buildAnswerMail(listAddress: string, listKey: PrivateKey, to: string, inReplyTo: string | null, answer: Answer, date = new Date()): Promise<string | null> {
  const recipients = await usable(answer.recipients, date);
  if (recipients.length === 0) return null;
  const subject = `Answer from ${requestAddressOf(listAddress)}`;
  const message = await openpgp.createMessage({ binary: innerEntity(subject, answer) });
  const encrypted = await openpgp.encrypt({ message, encryptionKeys: recipients, signingKeys: listKey, format: 'binary', date });
  const headers: HeaderList = [
    ['From', `<${requestAddressOf(listAddress)}>`],
    ['To', `<${to}>`],
    ['Subject', subject],
    ['Date', formatDate(date)],
    ['Message-ID', newMessageId(domainOf(listAddress))],
    ...(inReplyTo && /^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$/.test(inReplyTo) ? [['In-Reply-To', inReplyTo] as [string, string]] : []),
    ['List-Id', listIdOf(listAddress)],
    ['Auto-Submitted', 'auto-replied'],
  ];
  return buildPgpMimeMail(headers, armorMessage(encrypted as Uint8Array));
}
