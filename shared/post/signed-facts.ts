// Facts about a post's signed content that the list's replay protection needs,
// computed as plain data right where the post is decrypted and verified (so the
// work can run in a worker thread and only these values cross back):
// - signatureDigest: SHA-256 (hex) of the verified signature packet's signed
//   part (verify.ts, signedPartOf: without the unhashed subpackets and the
//   signature value, which can be altered without breaking it). A post whose
//   signature was accepted before is a replay, whatever envelope it came in.
// - protectedRecipients: the lower-cased bare addresses of the To and Cc headers
//   inside the signed content (protected headers, as our composer and
//   Thunderbird write them), or null when the signed content has no MIME header
//   block (bare text from inline clients) or its To/Cc name no address at all:
//   then nothing signed says which list the post was meant for.
// Only the first MAX_PROTECTED_HEADER_BYTES of the content are read, line by line.

import { fromUtf8, toHex } from '../bytes.ts';
import type { PgpMessage } from './decrypt.ts';
import type { Verification } from './verify.ts';

export const MAX_PROTECTED_HEADER_BYTES = 64 * 1024;
/** How far ahead of the list's clock a signature may be dated (the sender's clock may run fast). */
export const SIGNATURE_CLOCK_SKEW_MS = 15 * 60 * 1000;
const MAX_RECIPIENTS = 1000;

export interface SignedContentFacts {
  signatureDigest: string | null;
  protectedRecipients: string[] | null;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const copy = new Uint8Array(bytes); // subtle.digest wants a plain ArrayBuffer view
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', copy)));
}

export async function signedContentFacts(message: PgpMessage, verification: Verification | null): Promise<SignedContentFacts> {
  const packet = verification?.valid ? verification.signedPart : undefined;
  const signatureDigest = packet ? await sha256Hex(packet) : null;
  let content: unknown = null;
  try {
    content = message.getLiteralData();
  } catch {
    content = null;
  }
  const protectedRecipients = content instanceof Uint8Array ? protectedRecipientsOf(content) : null;
  return { signatureDigest, protectedRecipients };
}

const HEADER_NAME = /^[!-9;-~]+$/;

/** The To and Cc addresses of the content's leading header block, or null (see above). */
export function protectedRecipientsOf(content: Uint8Array): string[] | null {
  const head = fromUtf8(content.subarray(0, MAX_PROTECTED_HEADER_BYTES));
  const lines = head.split('\n');
  // A line cut by the byte bound is not read.
  if (content.length > MAX_PROTECTED_HEADER_BYTES) lines.pop();
  const fields: Array<[string, string]> = [];
  let ended = false;
  for (const rawLine of lines) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') {
      ended = true;
      break;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      const last = fields.at(-1);
      if (!last) return null;
      last[1] += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 1 || !HEADER_NAME.test(line.slice(0, colon))) return null; // not a header block: bare text
    fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1)]);
  }
  if (!ended && content.length <= MAX_PROTECTED_HEADER_BYTES) return null; // no blank line after the headers
  if (!fields.some(([k]) => k === 'content-type')) return null;
  const named = fields.filter(([k]) => k === 'to' || k === 'cc');
  if (named.length === 0) return null;
  const out = new Set<string>();
  for (const [, value] of named) {
    for (const a of addressesIn(value)) {
      if (out.size >= MAX_RECIPIENTS) break;
      out.add(a);
    }
  }
  // "To: undisclosed-recipients:;" names nobody: no statement about the list either way.
  return out.size > 0 ? [...out] : null;
}

/**
 * Bare addresses in an address-list header value, in one linear pass: entries
 * are split at commas outside quotes, comments and angle brackets; an entry's
 * address is its <...> part, else the entry itself (group names and
 * comments dropped). Entries without an @ are skipped.
 */
export function addressesIn(value: string): string[] {
  const entries: string[] = [];
  let angle = '';
  let bare = '';
  let inQuote = false;
  let inAngle = false;
  let hasAngle = false;
  let comment = 0;
  const flush = () => {
    const a = (hasAngle ? angle : bare).trim().toLowerCase();
    if (a.includes('@') && a.length <= 254 && !/\s/.test(a)) entries.push(a);
    angle = '';
    bare = '';
    hasAngle = false;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === '"') inQuote = false;
      continue;
    }
    if (comment > 0) {
      if (c === '\\') i++;
      else if (c === '(') comment++;
      else if (c === ')') comment--;
      continue;
    }
    if (inAngle) {
      if (c === '>') inAngle = false;
      else angle += c;
      continue;
    }
    if (c === '"') inQuote = true;
    else if (c === '(') comment = 1;
    else if (c === '<') {
      inAngle = true;
      hasAngle = true;
      angle = '';
    } else if (c === ',' || c === ';') flush();
    else if (c === ':') bare = ''; // "group: a@b, c@d;": the group name is not an address
    else bare += c;
  }
  flush();
  return entries;
}
