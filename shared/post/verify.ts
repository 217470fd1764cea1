// Signature checking shared by the list (is this post from the member in From?)
// and the subscriber (did the original sender write this?). The outcome is data,
// not an exception, so each caller applies its own policy.

import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import type { PgpMessage } from './decrypt.ts';
import { concatBytes } from '../bytes.ts';
import { ERROR_MESSAGES } from '../errors.ts';
import { splitMultipartSigned } from '../mime/signed.ts';

export type VerificationFailure = 'UNSIGNED' | 'SIGNER_UNKNOWN' | 'BAD_SIGNATURE' | 'SIGNER_KEY_INVALID' | 'SIGNATURE_FROM_FUTURE';

export type Verification =
  | {
    valid: true; signerFingerprint: string; signerKeyId: string; signedAt: Date | null;
    /** The parts of the verified signature packet that it covers itself (public data): what replay protection digests. */
    signedPart?: Uint8Array;
  }
  | { valid: false; code: VerificationFailure; reason: string; signerKeyId: string | null };

function invalid(code: VerificationFailure, signerKeyId: string | null): Verification {
  return { valid: false, code, reason: ERROR_MESSAGES[code], signerKeyId };
}

/**
 * The bytes that identify one signature and that nobody can change without
 * breaking it: the hashed part (version, type, algorithms, hashed subpackets
 * with the creation time, issuer and any salt notation), the left 16 bits of
 * the signed hash, and a v6 salt. Left out: the unhashed subpackets, which
 * anyone may edit, and the signature value, which for ECDSA has a second valid
 * form. A replay with either changed is still the same signature.
 */
function signedPartOf(packet: { signatureData: Uint8Array | null; signedHashValue: Uint8Array | null; salt?: Uint8Array | null }): Uint8Array {
  return concatBytes([packet.signatureData ?? new Uint8Array(0), packet.signedHashValue ?? new Uint8Array(0), packet.salt ?? new Uint8Array(0)]);
}

type SignatureResults = Awaited<ReturnType<PgpMessage['verify']>>;

/**
 * RFC 3156 §6.1 (sign, then encrypt, as gpgme-based clients do): the encrypted
 * content is a multipart/signed MIME entity whose detached signature covers its
 * first part. Null when the content is not one.
 */
async function detachedMimeSignatures(message: PgpMessage, keys: readonly PublicKey[], date: Date): Promise<SignatureResults | null> {
  const data = message.getLiteralData();
  if (!(data instanceof Uint8Array)) return null;
  const signed = splitMultipartSigned(data);
  if (!signed) return null;
  try {
    const signature = await openpgp.readSignature({ armoredSignature: signed.signature });
    const content = await openpgp.createMessage({ binary: signed.content });
    return (await openpgp.verify({ message: content, signature, verificationKeys: [...keys], date, format: 'binary' })).signatures;
  } catch {
    return null;
  }
}

/**
 * Verifies every signature on `message` (inline signature packets, or the
 * detached signature of an RFC 3156 §6.1 multipart/signed inside) against
 * `keys`; valid if any of those keys' signatures holds, so a post signed by
 * several people passes when one of them is the member.
 */
export async function verifyAgainst(message: PgpMessage, keys: readonly PublicKey[], date: Date = new Date()): Promise<Verification> {
  let results: SignatureResults;
  try {
    results = await message.verify([...keys], date);
  } catch {
    return invalid('UNSIGNED', null);
  }
  if (results.length === 0) results = (await detachedMimeSignatures(message, keys, date)) ?? [];
  if (results.length === 0) return invalid('UNSIGNED', null);

  let firstFailure: Verification | null = null;
  for (const result of results) {
    const keyId = result.keyID.toHex().toUpperCase();
    const signer = keys.find((k) => k.getKeys(result.keyID).length > 0);
    if (!signer) {
      firstFailure ??= invalid('SIGNER_UNKNOWN', keyId);
      continue;
    }
    try {
      await result.verified;
      const signature = await result.signature;
      const packet = signature.packets[0];
      const created = packet?.created ?? null;
      return {
        valid: true, signerFingerprint: signer.getFingerprint().toUpperCase(), signerKeyId: keyId, signedAt: created,
        ...(packet ? { signedPart: signedPartOf(packet) } : {}),
      };
    } catch (e) {
      const text = e instanceof Error ? e.message : '';
      // Dated after `date`: refused with its own code, so a sender with a wrong clock is told so.
      const created = await result.signature.then((s) => s.packets[0]?.created ?? null, () => null);
      if (created && created.getTime() > date.getTime() && /in the future/i.test(text)) {
        firstFailure ??= invalid('SIGNATURE_FROM_FUTURE', keyId);
        continue;
      }
      const keyProblem = /expired|revoked|not yet valid|no valid|created after/i.test(text);
      firstFailure ??= invalid(keyProblem ? 'SIGNER_KEY_INVALID' : 'BAD_SIGNATURE', keyId);
    }
  }
  return firstFailure ?? invalid('UNSIGNED', null);
}
