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
import { countEncodedWords, MIME_LIMITS } from '../mime/payload.ts';
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
