// Header and body encoding for the MIME that Letterlock writes. Parsing (the
// hostile side) is postal-mime's job; writing is kept here because PGP/MIME and
// protected headers need exact control over structure that general builders lack.

import { randomBytes, toBase64, toHex, utf8 } from '../bytes.ts';

export type HeaderList = Array<[name: string, value: string]>;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Refuses CR/LF and NUL in a header value: header injection is never possible. */
function assertSafeValue(name: string, value: string): void {
  if (/[\r\n\0]/.test(value)) throw new Error(`header ${name} contains a line break`);
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new Error(`invalid header name`);
}

/** RFC 2047 B-encoded words, each at most 75 characters, split on character boundaries. */
function encodedWords(text: string): string[] {
  const words: string[] = [];
  let chunk = '';
  let chunkBytes = 0;
  for (const ch of text) {
    const n = utf8(ch).length;
    if (chunkBytes + n > 45) {
      words.push(`=?UTF-8?B?${toBase64(utf8(chunk))}?=`);
      chunk = '';
      chunkBytes = 0;
    }
    chunk += ch;
    chunkBytes += n;
  }
  if (chunk.length > 0 || words.length === 0) words.push(`=?UTF-8?B?${toBase64(utf8(chunk))}?=`);
  return words;
}

/** An unstructured header value (Subject, Content-Description) ready to write. */
export function encodeUnstructured(text: string): string {
  if (PRINTABLE_ASCII.test(text) && !/=\?/.test(text)) return text;
  return encodedWords(text).join(' ');
}

/** "Name <addr>" with the display name quoted or encoded as needed. */
export function formatAddress(address: string, name?: string): string {
  if (/[\s<>",;]/.test(address)) throw new Error('invalid email address');
  if (!name) return `<${address}>`;
  if (PRINTABLE_ASCII.test(name)) {
    const quoted = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ .]*$/.test(name) && !name.includes('..') ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
    return `${quoted} <${address}>`;
  }
  return `${encodedWords(name).join(' ')} <${address}>`;
}

/** RFC 2231 parameter, for file names that are not plain ASCII. */
export function mimeParameter(key: string, value: string): string {
  if (/^[\x20-\x7e]*$/.test(value) && !/["\\]/.test(value)) return `${key}="${value}"`;
  const encoded = Array.from(utf8(value), (b) =>
    /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
  ).join('');
  return `${key}*=UTF-8''${encoded}`;
}

/** Folds one header line at spaces so no line exceeds 78 characters where possible. */
function foldHeader(line: string): string {
  if (line.length <= 78) return line;
  const out: string[] = [];
  let current = '';
  for (const token of line.split(/(?= )/)) {
    if (current.length > 0 && current.length + token.length > 78) {
      out.push(current);
      current = token.startsWith(' ') ? token : ` ${token}`;
    } else {
      current += token;
    }
  }
  out.push(current);
  return out.join('\r\n');
}

export function writeHeaders(headers: HeaderList): string {
  return headers
    .map(([name, value]) => {
      assertSafeValue(name, value);
      return foldHeader(`${name}: ${value}`);
    })
    .join('\r\n');
}

/** RFC 5322 date-time in UTC. */
export function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

export function newBoundary(): string {
  return `=_ll_${toHex(randomBytes(12))}`;
}

export function newMessageId(domain: string): string {
  return `<${toHex(randomBytes(16))}@${domain}>`;
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1) : 'localhost';
}

const MAX_SHOWN_CHARS = 500;

/** Printable, one line, bounded: text from a post that goes into a header of every copy. */
export function headerText(value: string | null | undefined): string | null {
  if (!value) return null;
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, MAX_SHOWN_CHARS);
  return clean === '' ? null : clean;
}
