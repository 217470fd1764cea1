// A service mail for a list's operators (moderators, owner), signed by the list
// key and encrypted to the one recipient's registered key, in PGP/MIME. The text
// is built only from metadata (addresses, ids, sizes, codes, dates), like the
// content-free notices of delivery/notices.ts; encrypting it keeps member
// addresses and failure details off the relay's disk too. It is encrypted before
// it is queued: the queue never holds its text.

import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { armorMessage, buildInnerMessage, buildPgpMimeMail, formatDate, type HeaderList } from '../../shared/index.ts';
import { listIdOf } from '../delivery/headers.ts';

/** A bound on one notice's text, whatever the data it lists. */
export const MAX_NOTICE_CHARS = 256 * 1024;

export interface SealedNotice {
  listAddress: string;
  listKey: PrivateKey;
  to: string;
  toKey: string;
  /** Shown only inside the encryption (a protected header); outside, `outerSubject`. */
  subject: string;
  outerSubject: string;
  lines: string[];
  date?: Date;
}

/** The whole mail, or null when the recipient's key cannot take an encryption now. */
export async function sealedNoticeMail(n: SealedNotice): Promise<string | null> {
  const date = n.date ?? new Date();
  let key: PublicKey;
  try {
    const read = await openpgp.readKey({ armoredKey: n.toKey });
    key = read.isPrivate() ? read.toPublic() : (read as PublicKey);
    await key.getEncryptionKey(undefined, date);
  } catch {
    return null;
  }
  let text = n.lines.join('\n');
  if (text.length > MAX_NOTICE_CHARS) text = `${text.slice(0, MAX_NOTICE_CHARS)}\n... (cut: this notice is limited to ${MAX_NOTICE_CHARS} characters)`;
  const inner = buildInnerMessage({ subject: n.subject, from: { address: n.listAddress }, to: [{ address: n.to }], text: `${text}\n`, date });
  const message = await openpgp.createMessage({ binary: inner.bytes, format: 'binary' });
  const encrypted = await openpgp.encrypt({ message, encryptionKeys: key, signingKeys: n.listKey, format: 'binary', date });
  const headers: HeaderList = [
    ['From', `<${n.listAddress}>`],
    ['To', `<${n.to}>`],
    ['Subject', n.outerSubject],
    ['Date', formatDate(date)],
    ['Message-ID', inner.messageId],
    ['List-Id', listIdOf(n.listAddress)],
    ['Auto-Submitted', 'auto-generated'],
  ];
  return buildPgpMimeMail(headers, armorMessage(encrypted as Uint8Array));
}
