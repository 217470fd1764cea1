// A recipient's mail: their copy (PKESK ‖ shared body) armored and framed as
// PGP/MIME, or inline for subscribers who read list mail in webmail.

import * as openpgp from 'openpgp';
import type { HeaderList } from '../mime/encode.ts';
import { buildInlineMail, buildPgpMimeMail } from '../mime/pgpmime.ts';

export type DeliveryForm = 'pgp-mime' | 'inline';

/**
 * With the CRC24 line: RFC 9580 makes it optional, but GnuPG 2.2 (Debian 12's)
 * misreads armor without it whenever the last base64 line has no '=' padding
 * ("invalid radix64 character 2D skipped") and exits 2.
 */
export function armorMessage(bytes: Uint8Array): string {
  return openpgp.armor(openpgp.enums.armor.message, bytes, undefined, undefined, undefined, true);
}

export function buildCopyMail(headers: HeaderList, copy: Uint8Array, form: DeliveryForm = 'pgp-mime'): string {
  const armored = armorMessage(copy);
  return form === 'inline' ? buildInlineMail(headers, armored) : buildPgpMimeMail(headers, armored);
}
