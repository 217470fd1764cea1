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

type HeaderMail = Awaited<ReturnType<typeof PostalMime.parse>>;

/**
 * The signed content's leading header block, parsed: 'bare' when the content is
 * not MIME, null when its headers cannot be read within the bounds (the first
 * MAX_PROTECTED_HEADER_BYTES, and the encoded-word cap that keeps postal-mime's
 * cost linear, as at ingest).
 */
async function protectedHeaders(content: Uint8Array): Promise<HeaderMail | 'bare' | null> {
  if (!looksLikeMime(content)) return 'bare';
  const head = headerBlock(toBinaryString(content.subarray(0, MAX_PROTECTED_HEADER_BYTES)));
  const block = head ? fromBinaryString(`${head.headers}\r\n\r\n`) : null;
  if (!block || countEncodedWords(block, MIME_LIMITS.maxEncodedWords) > MIME_LIMITS.maxEncodedWords) return null;
  try {
    return await PostalMime.parse(block, { maxHeadersSize: MAX_PROTECTED_HEADER_BYTES });
  } catch {
    return null;
  }
}

function displayOf(mail: HeaderMail | 'bare' | null): InnerDisplay {
  if (mail === 'bare') return { isMime: false, subject: null, fromName: null };
  if (!mail) return { isMime: true, subject: null, fromName: null };
  return { isMime: true, subject: headerText(mail.subject), fromName: headerText(mail.from?.name) };
}

export async function innerDisplay(content: Uint8Array): Promise<InnerDisplay> {
  return displayOf(await protectedHeaders(content));
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
  return threadingOf(await protectedHeaders(content));
}

function threadingOf(mail: HeaderMail | 'bare' | null): ProtectedThreading | null {
  if (!mail || mail === 'bare') return null;
  const messageId = idsIn(mail.messageId)[0] ?? null;
  const inReplyTo = idsIn(mail.inReplyTo)[0] ?? null;
  const references = idsIn(mail.references).slice(-MAX_PROTECTED_REFERENCES);
  return messageId || inReplyTo || references.length ? { messageId, inReplyTo, references } : null;
}

/** Both readings of the signed header block from one parse (the server wants both for every post). */
export async function protectedFacts(content: Uint8Array): Promise<{ inner: InnerDisplay; threading: ProtectedThreading | null }> {
  const mail = await protectedHeaders(content);
  return { inner: displayOf(mail), threading: threadingOf(mail) };
}
