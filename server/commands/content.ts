// The readable parts of a request's decrypted, signed content: the text that
// holds the commands, and any public key the member sends along (attached, or
// pasted as an armored block). The content is plaintext: it stays in memory
// and is never logged. Its size was bounded in the open pool (contentMax).

import PostalMime from 'postal-mime';
import { fromUtf8, looksLikeMime } from '../../shared/index.ts';
import { htmlToText } from '../../shared/mime/armor-scan.ts';
import { splitMultipartSigned } from '../../shared/mime/signed.ts';

/** Decrypted content read at most: a request is a few lines and perhaps one key. */
export const MAX_CONTENT_BYTES = 256 * 1024;
const MAX_KEYS = 4;
const MAX_ATTACHMENTS = 16;

export interface RequestContent {
  text: string;
  /** Public keys found, armored or binary, at most MAX_KEYS. */
  keys: Array<string | Uint8Array>;
}

const KEY_BLOCK = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]{1,200000}?-----END PGP PUBLIC KEY BLOCK-----/g;

function keyBlocks(text: string): string[] {
  return [...text.matchAll(KEY_BLOCK)].slice(0, MAX_KEYS).map((m) => m[0]);
}

function isKeyAttachment(a: { mimeType?: string; filename?: string | null }): boolean {
  const type = (a.mimeType ?? '').toLowerCase();
  return type === 'application/pgp-keys' || /\.(asc|pub|gpg|key|pgp)$/i.test(a.filename ?? '');
}

// A "legacy display part" (the draft protected-headers form: Subject and such
// repeated as the first lines of the text) comes before the commands; it is skipped.
const LEGACY_DISPLAY = /^(?:[ \t]*\r?\n)*(?:(?:Subject|From|To|Cc|Date|Reply-To|Message-ID|Followup-To|Newsgroups): [^\r\n]{0,998}\r?\n){1,16}\r?\n/i;

function withoutLegacyDisplay(text: string): string {
  return text.replace(LEGACY_DISPLAY, '');
}

export async function readContent(literal: Uint8Array): Promise<RequestContent> {
  // RFC 3156 §6.1: the signed entity is the first part of a multipart/signed.
  const entity = splitMultipartSigned(literal)?.content ?? literal;
  if (!looksLikeMime(entity)) {
    const text = fromUtf8(entity);
    return { text, keys: keyBlocks(text) };
  }
  const mail = await PostalMime.parse(entity, { attachmentEncoding: 'arraybuffer' });
  const text = withoutLegacyDisplay(mail.text ?? (mail.html ? htmlToText(mail.html) : ''));
  const keys: Array<string | Uint8Array> = [];
  for (const a of (mail.attachments ?? []).slice(0, MAX_ATTACHMENTS)) {
    if (keys.length >= MAX_KEYS) break;
    const bytes = new Uint8Array(a.content as ArrayBuffer);
    const asText = fromUtf8(bytes.subarray(0, 200_000));
    const armored = keyBlocks(asText);
    if (armored.length) keys.push(...armored.slice(0, MAX_KEYS - keys.length));
    else if (isKeyAttachment(a) && bytes.byteLength > 0) keys.push(bytes);
  }
  if (keys.length === 0) keys.push(...keyBlocks(text));
  return { text, keys };
}
