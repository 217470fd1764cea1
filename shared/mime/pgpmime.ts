// The two outer forms of an encrypted mail: PGP/MIME (RFC 3156
// multipart/encrypted), which mail clients read, and an inline ASCII-armored
// block in a text/plain body, which is all a webmail text box can carry.

import { writeHeaders, newBoundary, type HeaderList } from './encode.ts';

/** Headers that the builders write themselves and callers must not pass. */
const RESERVED = new Set(['content-type', 'content-transfer-encoding', 'mime-version']);

function outerHeaders(headers: HeaderList): string {
  for (const [name] of headers) {
    if (RESERVED.has(name.toLowerCase())) throw new Error(`outer header ${name} is set by the builder`);
  }
  return writeHeaders(headers);
}

function normalizeArmor(armored: string): string {
  return armored.replace(/\r?\n/g, '\r\n').replace(/(\r\n)*$/, '\r\n');
}

/**
 * The MIME around an armored OpenPGP message, without the outer headers: `head`
 * goes before the armor, `tail` after it. One definition serves the builders
 * below and the server's per-copy renderer, which armors a body once per post.
 */
export function encryptedBodyFrame(form: 'pgp-mime' | 'inline', boundary: string = newBoundary()): { head: string; tail: string } {
  if (form === 'inline') {
    return { head: 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n', tail: '' };
  }
  return {
    head:
      `MIME-Version: 1.0\r\n` +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"\r\n` +
      `\r\n` +
      `This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n` +
      `--${boundary}\r\n` +
      `Content-Type: application/pgp-encrypted\r\n` +
      `Content-Description: PGP/MIME version identification\r\n` +
      `\r\n` +
      `Version: 1\r\n` +
      `\r\n` +
      `--${boundary}\r\n` +
      `Content-Type: application/octet-stream; name="encrypted.asc"\r\n` +
      `Content-Description: OpenPGP encrypted message\r\n` +
      `Content-Disposition: inline; filename="encrypted.asc"\r\n` +
      `\r\n`,
    tail: `\r\n--${boundary}--\r\n`,
  };
}

export function buildPgpMimeMail(headers: HeaderList, armoredMessage: string): string {
  const frame = encryptedBodyFrame('pgp-mime');
  return `${outerHeaders(headers)}\r\n${frame.head}${normalizeArmor(armoredMessage)}${frame.tail}`;
}

export function buildInlineMail(headers: HeaderList, armoredMessage: string): string {
  const frame = encryptedBodyFrame('inline');
  return `${outerHeaders(headers)}\r\n${frame.head}${normalizeArmor(armoredMessage)}${frame.tail}`;
}
