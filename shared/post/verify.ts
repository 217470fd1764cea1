// Signature checking shared by the list (is this post from the member in From?)
// and the subscriber (did the original sender write this?). The outcome is data,
// not an exception, so each caller applies its own policy.

import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import type { PgpMessage } from './decrypt.ts';
import { ERROR_MESSAGES } from '../errors.ts';
import { splitMultipartSigned } from '../mime/signed.ts';

export type VerificationFailure = 'UNSIGNED' | 'SIGNER_UNKNOWN' | 'BAD_SIGNATURE' | 'SIGNER_KEY_INVALID';

export type Verification =
  | { valid: true; signerFingerprint: string; signerKeyId: string; signedAt: Date | null }
  | { valid: false; code: VerificationFailure; reason: string; signerKeyId: string | null };

function invalid(code: VerificationFailure, signerKeyId: string | null): Verification {
  return { valid: false, code, reason: ERROR_MESSAGES[code], signerKeyId };
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
      const created = signature.packets[0]?.created ?? null;
      return { valid: true, signerFingerprint: signer.getFingerprint().toUpperCase(), signerKeyId: keyId, signedAt: created };
    } catch (e) {
      const text = e instanceof Error ? e.message : '';
      const keyProblem = /expired|revoked|not yet valid|no valid|created after/i.test(text);
      firstFailure ??= invalid(keyProblem ? 'SIGNER_KEY_INVALID' : 'BAD_SIGNATURE', keyId);
    }
  }
  return firstFailure ?? invalid('UNSIGNED', null);
}
