// What a reader's mail client should show before a copy is opened, taken from
// the signed content of a post: is it a MIME entity at all (bare text from
// inline clients is not), and its protected Subject and author name, if any.
// Only the leading header block is read, within a bound, with postal-mime (the
// encoded-word cap applies as at ingest).

import PostalMime from 'postal-mime';
import { looksLikeMime } from '../mime/parse-inner.ts';
import { fromBinaryString, toBinaryString } from '../bytes.ts';
import { headerText } from '../mime/encode.ts';
import { headerBlock } from '../mime/signed.ts';
import { countEncodedWords, isPlainMessageId, MIME_LIMITS } from '../mime/payload.ts';
import { MAX_PROTECTED_HEADER_BYTES } from './signed-facts.ts';

export interface InnerDisplay {
  /** The signed content is a MIME entity (else: bare text, as inline clients sign it). */
  isMime: boolean;
  /** The protected Subject (RFC 9788 / protected-headers "v1"), decoded; null if the content has none. */
  subject: string | null;
  /** The display name of the protected From; null if none. */
  fromName: string | null;
}

export async function innerDisplay(content: Uint8Array): Promise<InnerDisplay> {
  if (!looksLikeMime(content)) return { isMime: false, subject: null, fromName: null };
  const head = headerBlock(toBinaryString(content.subarray(0, MAX_PROTECTED_HEADER_BYTES)));
  const block = head ? fromBinaryString(`${head.headers}\r\n\r\n`) : null;
  if (!block || countEncodedWords(block, MIME_LIMITS.maxEncodedWords) > MIME_LIMITS.maxEncodedWords) return { isMime: true, subject: null, fromName: null };
  try {
    const mail = await PostalMime.parse(block, { maxHeadersSize: MAX_PROTECTED_HEADER_BYTES });
    return { isMime: true, subject: headerText(mail.subject), fromName: headerText(mail.from?.name) };
  } catch {
    return { isMime: true, subject: null, fromName: null };
  }
}

/** The signed (protected) threading headers of a post: the sender's own, under their signature. */
export interface ProtectedThreading {
  messageId: string | null;
  inReplyTo: string | null;
  /** At most MAX_PROTECTED_REFERENCES ids, the nearest ancestors kept. */
  references: string[];
}

export const MAX_PROTECTED_REFERENCES = 100;

function idsIn(value: string | undefined): string[] {
  // Bounded: the header block is at most MAX_PROTECTED_HEADER_BYTES.
  return value ? (value.match(/<[^<>\s]{1,300}>/g) ?? []).filter(isPlainMessageId) : [];
}

/**
 * Message-ID, In-Reply-To and References from the signed content's leading
 * header block; null when the content is not MIME or states none of them. A
 * webmail gives the outer mail ids of its own: these are the ones readers see
 * inside the encryption, so they are what replies name.
 */
export async function protectedThreading(content: Uint8Array): Promise<ProtectedThreading | null> {
  if (!looksLikeMime(content)) return null;
  const head = headerBlock(toBinaryString(content.subarray(0, MAX_PROTECTED_HEADER_BYTES)));
  if (!head) return null;
  try {
    const mail = await PostalMime.parse(fromBinaryString(`${head.headers}\r\n\r\n`), { maxHeadersSize: MAX_PROTECTED_HEADER_BYTES });
    const messageId = idsIn(mail.messageId)[0] ?? null;
    const inReplyTo = idsIn(mail.inReplyTo)[0] ?? null;
    const references = idsIn(mail.references).slice(-MAX_PROTECTED_REFERENCES);
    return messageId || inReplyTo || references.length ? { messageId, inReplyTo, references } : null;
  } catch {
    return null;
  }
}
