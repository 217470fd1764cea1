// Compose a post on the sender's side: the inner MIME entity (with protected
// headers) is signed by the sender and encrypted to the list key and to the
// sender's own key (so the Sent copy stays readable), as one OpenPGP message,
// then framed as PGP/MIME for mail clients or inline for webmail text boxes.

import * as openpgp from 'openpgp';
import { armorMessage } from '../envelope/copy.ts';
import type { PrivateKey, PublicKey } from 'openpgp';
import { formatAddress, formatDate, type HeaderList } from '../mime/encode.ts';
import { buildInnerMessage, type InnerMessageInput } from '../mime/inner.ts';
import { buildInlineMail, buildPgpMimeMail } from '../mime/pgpmime.ts';

/** The subject shown outside the encryption; the real one is a protected header. */
export const PLACEHOLDER_SUBJECT = '...';

export interface ComposeOptions {
  message: InnerMessageInput;
  /** The sender's unlocked private key: signs, and its public part is a recipient. */
  senderKey: PrivateKey;
  listKey: PublicKey;
}

export interface ComposedPost {
  /** The one OpenPGP message (ASCII armor): what a webmail text box receives. */
  armored: string;
  /** A complete RFC 5322 mail in PGP/MIME form. */
  pgpMime: string;
  /** A complete RFC 5322 mail with the armored block as its text/plain body. */
  inline: string;
  messageId: string;
}

export async function encryptInner(inner: Uint8Array, senderKey: PrivateKey, listKey: PublicKey): Promise<string> {
  const message = await openpgp.createMessage({ binary: inner, format: 'binary' });
  const encrypted = await openpgp.encrypt({
    message,
    encryptionKeys: [listKey, senderKey.toPublic()],
    signingKeys: senderKey,
    format: 'binary',
  });
  return armorMessage(encrypted); // with the CRC line GnuPG 2.2 needs (envelope/copy.ts)
}

export async function composePost(options: ComposeOptions): Promise<ComposedPost> {
  const { message } = options;
  const inner = buildInnerMessage(message);
  const armored = await encryptInner(inner.bytes, options.senderKey, options.listKey);
  const headers: HeaderList = [
    ['From', formatAddress(message.from.address, message.from.name)],
    ['To', message.to.map((m) => formatAddress(m.address, m.name)).join(', ')],
    ['Subject', PLACEHOLDER_SUBJECT],
    ['Date', formatDate(inner.date)],
    ['Message-ID', inner.messageId],
  ];
  if (message.inReplyTo) headers.push(['In-Reply-To', message.inReplyTo]);
  if (message.references?.length) headers.push(['References', message.references.join(' ')]);
  return {
    armored,
    pgpMime: buildPgpMimeMail(headers, armored),
    inline: buildInlineMail(headers, armored),
    messageId: inner.messageId,
  };
}
