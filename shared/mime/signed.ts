// RFC 3156 §5 and §6.1: a multipart/signed entity (what gpgme-based clients such
// as Evolution, KMail and Mutt encrypt when they "sign, then encrypt") holds the
// signed MIME entity and a detached signature over its exact bytes. This finds
// both without re-encoding anything: the signature covers the first part byte
// for byte (in canonical CRLF form), so it is sliced out, never re-serialised.

import { fromBase64, fromBinaryString, toBinaryString } from '../bytes.ts';

export interface MimeSigned {
  /** The signed entity (headers and body of the first part), line endings made CRLF. */
  content: Uint8Array;
  /** The detached signature, armored. */
  signature: string;
}

const MAX_HEADER_BYTES = 64 * 1024;

/** The header block of an entity (a binary string) and where its body starts; null if there is none within the bound. */
export function headerBlock(text: string): { headers: string; bodyStart: number } | null {
  const m = /\r?\n\r?\n/.exec(text.slice(0, MAX_HEADER_BYTES));
  if (!m) return null;
  return { headers: text.slice(0, m.index), bodyStart: m.index + m[0].length };
}

/** The value of one header (unfolded), lower-cased name match; null if absent. */
function headerValue(headers: string, name: string): string | null {
  const unfolded = headers.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return null;
}

function parameter(value: string, name: string): string | null {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]{1,200})"|([^\\s;"]{1,200}))`, 'i').exec(value);
  return m ? (m[1] ?? m[2]!) : null;
}

function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** Splits a decrypted multipart/signed entity; null when the bytes are not one. */
export function splitMultipartSigned(bytes: Uint8Array): MimeSigned | null {
  const text = toBinaryString(bytes); // byte-exact: 8-bit parts must reach the signature check unchanged
  const top = headerBlock(text);
  if (!top) return null;
  const type = headerValue(top.headers, 'content-type');
  if (!type || !/^multipart\/signed\s*;/i.test(type)) return null;
  if (!/application\/pgp-signature/i.test(parameter(type, 'protocol') ?? '')) return null;
  const boundary = parameter(type, 'boundary');
  if (!boundary) return null;
  const delimiter = `--${boundary}`;
  // The first delimiter line opens the signed part; the signed bytes end before
  // the line break that precedes the next delimiter (RFC 2046 §5.1.1).
  const body = text.slice(top.bodyStart);
  const first = body.startsWith(delimiter) ? 0 : body.indexOf(`\n${delimiter}`) + 1;
  if (first <= 0 && !body.startsWith(delimiter)) return null;
  const contentStart = body.indexOf('\n', first) + 1;
  if (contentStart <= 0) return null;
  const next = body.indexOf(`\n${delimiter}`, contentStart - 1);
  if (next < 0) return null;
  const contentEnd = body[next - 1] === '\r' ? next - 1 : next;
  const content = body.slice(contentStart, contentEnd);
  const sigStart = body.indexOf('\n', next + 1) + 1;
  const sigEnd = body.indexOf(`\n${delimiter}`, sigStart);
  if (sigStart <= 0 || sigEnd < 0) return null;
  const sigPart = body.slice(sigStart, sigEnd);
  const sigHead = headerBlock(sigPart);
  if (!sigHead || !/^application\/pgp-signature/i.test(headerValue(sigHead.headers, 'content-type') ?? '')) return null;
  let signature = sigPart.slice(sigHead.bodyStart);
  if (/^base64$/i.test(headerValue(sigHead.headers, 'content-transfer-encoding') ?? '')) {
    try {
      signature = toBinaryString(fromBase64(signature.replace(/[^A-Za-z0-9+/=]/g, '')));
    } catch {
      return null;
    }
  }
  return { content: fromBinaryString(toCrlf(content)), signature };
}
