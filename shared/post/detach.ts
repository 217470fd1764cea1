// Two kinds of signature that some readers refuse inside an encrypted message,
// though the post is sound:
// - RFC 9580 §5.2.3.36: a signature may name the keys its message was encrypted to
//   (Intended Recipient Fingerprint, subpacket 35). Sequoia (sq 0.27, sqop) adds one
//   naming the list key, the only recipient its user chose, and as a reader it
//   refuses a signature that does not name the key it decrypted with ("Not an
//   intended recipient"). Every subscriber decrypts with their own key, so a copy
//   that kept the signature inline would fail for every Sequoia reader.
// - A v6 signature (RFC 9580, from a v6 member key): GnuPG 2.2 meets its v6
//   one-pass-signature packet, stops ("onepass_sig with unknown version 6") and
//   prints nothing, so a v4 member on gpg could not even read the post.
// The list cannot change a signature. Both failures apply only to signatures
// inside the encrypted message, so such a post
// (RFC 3156 §6.2, signed and encrypted in one) is delivered in the §6.1 form that
// gpgme-based clients send: the same signature packets, byte for byte, as the
// detached signature of a multipart/signed whose first part is the signed MIME
// entity, byte for byte. A detached signature over those bytes is the same
// signature: OpenPGP hashes the literal content and the signature's trailer, not
// the packet framing. The result is used only when it verifies exactly as the post
// did, so a post this cannot carry (not a MIME entity, a binary signature over
// bytes that are not in canonical CRLF form) stays as it came.

import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { fromBinaryString, randomBytes, toBinaryString, toHex } from '../bytes.ts';
import { headerBlock } from '../mime/signed.ts';
import type { PgpMessage } from './decrypt.ts';
import { verifyAgainst } from './verify.ts';

/** RFC 9580 §5.2.3.36. */
export const INTENDED_RECIPIENT_SUBPACKET = 35;

type SignaturePacket = openpgp.SignaturePacket & { unknownSubpackets?: { type: number }[] };

function inlineSignatures(message: PgpMessage): SignaturePacket[] {
  const packets = message.unwrapCompressed().packets;
  return [...packets.filterByTag(openpgp.enums.packet.signature)] as SignaturePacket[];
}

/** True when a signature inside the message names intended recipients. */
export function namesIntendedRecipients(message: PgpMessage): boolean {
  return inlineSignatures(message).some((s) => (s.unknownSubpackets ?? []).some((u) => u.type === INTENDED_RECIPIENT_SUBPACKET));
}

/** True when a signature inside the message is a v6 one (RFC 9580), which GnuPG 2.2 cannot parse inline. */
export function hasV6Signature(message: PgpMessage): boolean {
  return inlineSignatures(message).some((s) => s.version === 6);
}

const HEADER_LINE = /^[\x21-\x39\x3b-\x7e]{1,76}:/;

/** A MIME entity: a header block of header lines, one of them Content-Type. */
function isMimeEntity(bytes: Uint8Array): boolean {
  const text = toBinaryString(bytes.subarray(0, 64 * 1024));
  const block = headerBlock(text);
  if (!block || block.headers.length === 0) return false;
  const lines = block.headers.split(/\r?\n/).filter((l) => !/^[ \t]/.test(l));
  return lines.every((l) => HEADER_LINE.test(l)) && lines.some((l) => /^content-type:/i.test(l));
}

function micalgOf(signature: SignaturePacket): string {
  const name = Object.entries(openpgp.enums.hash).find(([, id]) => id === signature.hashAlgorithm)?.[0] ?? 'sha256';
  return `pgp-${name.toLowerCase()}`;
}

/** The multipart/signed entity carrying `content` and its detached signatures (RFC 3156 §5). */
export function multipartSigned(content: Uint8Array, signatures: readonly SignaturePacket[]): Uint8Array {
  const list = new openpgp.PacketList<openpgp.AnyPacket>();
  list.push(...signatures);
  // With the CRC line, as copies have it: GnuPG 2.2 misreads some armor without it.
  const armored = openpgp.armor(openpgp.enums.armor.signature, list.write() as Uint8Array, undefined, undefined, undefined, true);
  const text = toBinaryString(content);
  let boundary: string;
  do boundary = `letterlock-signed-${toHex(randomBytes(12))}`; while (text.includes(boundary));
  const head = [
    `Content-Type: multipart/signed; micalg=${micalgOf(signatures[0]!)};`,
    ' protocol="application/pgp-signature";',
    ` boundary="${boundary}"`,
    '',
    'This is an OpenPGP/MIME signed message (RFC 3156).',
    `--${boundary}`,
    '',
  ].join('\r\n');
  const tail = [
    '',
    `--${boundary}`,
    'Content-Type: application/pgp-signature; name="signature.asc"',
    'Content-Description: OpenPGP digital signature',
    'Content-Disposition: attachment; filename="signature.asc"',
    '',
    armored.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, ''),
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return fromBinaryString(head + text + tail);
}

/**
 * The inner packets to seal instead of the sender's, when the post's signatures
 * name intended recipients or are v6 ones: one literal data packet holding the §6.1 form (and
 * that form's bytes, the new literal content). Null
 * when the post has no such signature or cannot be carried so; then the sender's
 * packets are sealed as they came.
 */
export async function detachedForm(message: PgpMessage, signerKeys: readonly PublicKey[], date: Date): Promise<{ innerPackets: Uint8Array; content: Uint8Array } | null> {
  if (!namesIntendedRecipients(message) && !hasV6Signature(message)) return null;
  const content = message.getLiteralData();
  if (!(content instanceof Uint8Array) || !isMimeEntity(content)) return null;
  const before = await verifyAgainst(message, signerKeys, date);
  if (!before.valid) return null;

  const entity = multipartSigned(content, inlineSignatures(message));
  const inner = (await openpgp.createMessage({ binary: entity, format: 'binary' })).packets.write() as Uint8Array;

  // Only what verifies as the post did: same signer, same signature.
  const reread = await openpgp.readMessage({ binaryMessage: inner });
  const after = await verifyAgainst(reread, signerKeys, date);
  if (!after.valid || after.signerFingerprint !== before.signerFingerprint || after.signerKeyId !== before.signerKeyId) return null;
  return { innerPackets: inner, content: entity };
}
