// Signature checking shared by the list (is this post from the member in From?)
// and the subscriber (did the original sender write this?). The outcome is data,
// not an exception, so each caller applies its own policy.

import type { PublicKey } from 'openpgp';
import type { PgpMessage } from './decrypt.ts';
import { concatBytes } from '../bytes.ts';
import { ERROR_MESSAGES } from '../errors.ts';

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

/** Verifies every signature on `message` against `keys`; valid if any member key's signature holds. */
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

export async function verifyAgainst(message: PgpMessage, keys: readonly PublicKey[], date: Date = new Date()): Promise<Verification> {
  let results: Awaited<ReturnType<PgpMessage['verify']>>;
  try {
    results = await message.verify([...keys], date);
  } catch {
    return invalid('UNSIGNED', null);
  }
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
