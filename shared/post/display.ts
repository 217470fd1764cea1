// What a reader's mail client should show before a copy is opened, taken from
// the signed content of a post: is it a MIME entity at all (bare text from
// inline clients is not), and its protected Subject and author name, if any.
// Only the leading header block is read, within a bound, with postal-mime (the
// encoded-word cap applies as at ingest).

import PostalMime from 'postal-mime';
import { looksLikeMime } from '../mime/parse-inner.ts';
import { headerText } from '../mime/encode.ts';
import { MIME_LIMITS } from '../mime/payload.ts';
import { MAX_PROTECTED_HEADER_BYTES } from './signed-facts.ts';

export interface InnerDisplay {
  /** The signed content is a MIME entity (else: bare text, as inline clients sign it). */
  isMime: boolean;
  /** The protected Subject (RFC 9788 / protected-headers "v1"), decoded; null if the content has none. */
  subject: string | null;
  /** The display name of the protected From; null if none. */
  fromName: string | null;
}

function headerBlock(content: Uint8Array): Uint8Array | null {
  const head = content.subarray(0, MAX_PROTECTED_HEADER_BYTES);
  for (let i = 0; i + 1 < head.length; i++) {
    if (head[i] !== 0x0a) continue;
    if (head[i + 1] === 0x0a) return head.subarray(0, i + 2);
    if (head[i + 1] === 0x0d && head[i + 2] === 0x0a) return head.subarray(0, i + 3);
  }
  return null;
}

function countEncodedWords(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(0x3d); i >= 0; i = bytes.indexOf(0x3d, i + 1)) if (bytes[i + 1] === 0x3f) n++;
  return n;
}

export async function innerDisplay(content: Uint8Array): Promise<InnerDisplay> {
  if (!looksLikeMime(content)) return { isMime: false, subject: null, fromName: null };
  const block = headerBlock(content);
  if (!block || countEncodedWords(block) > MIME_LIMITS.maxEncodedWords) return { isMime: true, subject: null, fromName: null };
  try {
    const mail = await PostalMime.parse(block, { maxHeadersSize: MAX_PROTECTED_HEADER_BYTES });
    return { isMime: true, subject: headerText(mail.subject), fromName: headerText(mail.from?.name) };
  } catch {
    return { isMime: true, subject: null, fromName: null };
  }
}
