// Signature checking shared by the list (is this post from the member in From?)
// and the subscriber (did the original sender write this?). The outcome is data,
// not an exception, so each caller applies its own policy.

import type { PublicKey } from 'openpgp';
import type { PgpMessage } from './decrypt.ts';
import { ERROR_MESSAGES } from '../errors.ts';

export type VerificationFailure = 'UNSIGNED' | 'SIGNER_UNKNOWN' | 'BAD_SIGNATURE' | 'SIGNER_KEY_INVALID';

export type Verification =
  | { valid: true; signerFingerprint: string; signerKeyId: string; signedAt: Date | null }
  | { valid: false; code: VerificationFailure; reason: string; signerKeyId: string | null };

function invalid(code: VerificationFailure, signerKeyId: string | null): Verification {
  return { valid: false, code, reason: ERROR_MESSAGES[code], signerKeyId };
}

/** Verifies every signature on `message` against `keys`; valid if any member key's signature holds. */
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
