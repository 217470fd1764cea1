// A recipient's mail: their copy (PKESK ‖ shared body) armored and framed as
// PGP/MIME, or inline for subscribers who read list mail in webmail.

import * as openpgp from 'openpgp';
import type { HeaderList } from '../mime/encode.ts';
import { buildInlineMail, buildPgpMimeMail } from '../mime/pgpmime.ts';

export type DeliveryForm = 'pgp-mime' | 'inline';

export function armorMessage(bytes: Uint8Array): string {
  return openpgp.armor(openpgp.enums.armor.message, bytes);
}

export function buildCopyMail(headers: HeaderList, copy: Uint8Array, form: DeliveryForm = 'pgp-mime'): string {
  const armored = armorMessage(copy);
  return form === 'inline' ? buildInlineMail(headers, armored) : buildPgpMimeMail(headers, armored);
}
