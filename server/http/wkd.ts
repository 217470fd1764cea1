// Web Key Directory (draft-koch-openpgp-webkey-service), advanced method: the list
// key at /.well-known/openpgpkey/<domain>/hu/<z-base32(SHA-1(local part))>, so
// OpenPGP clients (gpg --locate-keys, Thunderbird, Mailvelope) find it by address.

import { createHash } from 'node:crypto';

const ZBASE32 = 'ybndrfg8ejkmcpqxot1uwisza345h769';

export function zbase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ZBASE32[(buffer << (5 - bits)) & 31];
  return out;
}

/** The WKD hash of an address's local part (lower-cased, as the draft says for ASCII). */
export function wkdHash(localPart: string): string {
  return zbase32(createHash('sha1').update(localPart.toLowerCase(), 'utf8').digest());
}

export function wkdPath(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  return `/.well-known/openpgpkey/${domain}/hu/${wkdHash(local)}?l=${encodeURIComponent(local)}`;
}
