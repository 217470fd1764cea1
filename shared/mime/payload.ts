// Finds the one OpenPGP payload of an incoming mail, in either form a sender may
// use: PGP/MIME (RFC 3156) or an inline armored block in a text body. Also returns
// the outer envelope facts the list needs (From and the threading headers), never
// the outer Subject: a webmail user may have typed a real subject there.

import PostalMime from 'postal-mime';
import { fromUtf8 } from '../bytes.ts';
import { fail } from '../errors.ts';
import { isAutomatic } from './automatic.ts';

export type PayloadForm = 'pgp-mime' | 'inline';

export interface OuterFacts {
  from: string | null; // bare address, lower-cased
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: Date | null;
  /** Sent by a program (RFC 3834 Auto-Submitted other than "no", or Precedence bulk/junk/list): never answered with a bounce. */
  autoSubmitted: boolean;
}

export interface FoundPayload {
  form: PayloadForm;
  /** Armored text or binary OpenPGP, exactly as found. */
  armored: string | null;
  binary: Uint8Array | null;
  outer: OuterFacts;
}

// An armored message begins at the start of a line; a quoted one ("> -----BEGIN")
// in a reply is history, not a payload.
const ARMORED_BLOCK = /^-----BEGIN PGP MESSAGE-----\r?$[\s\S]*?^-----END PGP MESSAGE-----\r?$/gm;

function armoredBlocks(text: string | undefined): string[] {
  return text ? Array.from(text.matchAll(ARMORED_BLOCK), (m) => m[0]) : [];
}

function contentTypeOf(headers: Array<{ key: string; value: string }>): string {
  return (headers.find((h) => h.key === 'content-type')?.value ?? 'text/plain').toLowerCase();
}

function messageIds(value: string | undefined): string[] {
  return value ? (value.match(/<[^<>\s]+>/g) ?? []) : [];
}

export async function findPayload(raw: Uint8Array | string, maxBytes: number): Promise<FoundPayload> {
  const size = typeof raw === 'string' ? raw.length : raw.byteLength;
  if (size > maxBytes) fail('TOO_LARGE', `${size} bytes, limit ${maxBytes}`);

  let mail;
  try {
    mail = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' });
  } catch (e) {
    fail('MIME_MALFORMED', undefined, e);
  }

  const outer: OuterFacts = {
    from: mail.from?.address ? mail.from.address.toLowerCase() : null,
    messageId: messageIds(mail.messageId)[0] ?? null,
    inReplyTo: messageIds(mail.inReplyTo)[0] ?? null,
    references: messageIds(mail.references).slice(0, 100),
    date: mail.date && !Number.isNaN(Date.parse(mail.date)) ? new Date(mail.date) : null,
    autoSubmitted: isAutomatic(mail.headers),
  };

  const topType = contentTypeOf(mail.headers);
  if (topType.startsWith('multipart/encrypted')) {
    if (!/protocol\s*=\s*"?application\/pgp-encrypted"?/.test(topType)) fail('NO_PAYLOAD', 'multipart/encrypted with an unknown protocol');
    const parts = mail.attachments.filter((a) => a.mimeType.toLowerCase() === 'application/octet-stream');
    if (parts.length === 0) fail('NO_PAYLOAD', 'PGP/MIME without an encrypted part');
    if (parts.length > 1) fail('MULTIPLE_PAYLOADS');
    const bytes = new Uint8Array(parts[0]!.content as ArrayBuffer);
    const asText = fromUtf8(bytes.subarray(0, 64)).trimStart();
    if (asText.startsWith('-----BEGIN PGP')) {
      const blocks = armoredBlocks(fromUtf8(bytes));
      if (blocks.length > 1) fail('MULTIPLE_PAYLOADS');
      if (blocks.length === 0) fail('NO_PAYLOAD', 'the encrypted part is not an armored message');
      return { form: 'pgp-mime', armored: blocks[0]!, binary: null, outer };
    }
    return { form: 'pgp-mime', armored: null, binary: bytes, outer };
  }

  // Inline: prefer the plain-text body; an HTML alternative usually repeats it.
  let blocks = armoredBlocks(mail.text);
  if (blocks.length === 0 && mail.html) {
    blocks = armoredBlocks(mail.html.replace(/<br\s*\/?>/gi, '\n').replace(/<[^>]*>/g, '').replace(/&#43;/g, '+').replace(/&#x2b;/gi, '+'));
  }
  const encryptedAttachments = mail.attachments.filter((a) => a.mimeType.toLowerCase() === 'application/pgp-encrypted' || /\.(pgp|gpg)$/i.test(a.filename ?? ''));
  if (blocks.length + encryptedAttachments.length > 1) fail('MULTIPLE_PAYLOADS');
  if (blocks.length === 1) return { form: 'inline', armored: blocks[0]!, binary: null, outer };
  if (encryptedAttachments.length === 1) fail('NO_PAYLOAD', 'encrypted attachments are not posts; send PGP/MIME or an inline encrypted body');
  fail('NO_PAYLOAD');
}
