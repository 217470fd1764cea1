// Open a post on the list side: find the payload, decrypt it in memory with the
// list key under explicit limits, verify the sender against the member keys, and
// hand back the signed inner packets untouched for sealing. Only integrity-
// protected encryption (SEIPD) is accepted.

import type { PrivateKey, PublicKey } from 'openpgp';
import { fail } from '../errors.ts';
import { resolveLimits, type OpenLimits } from '../limits.ts';
import { findPayload, type OuterFacts, type PayloadForm } from '../mime/payload.ts';
import { decryptWithKey, readPgpMessage } from './decrypt.ts';
import { detachedForm } from './detach.ts';
import { verifyAgainst, type Verification } from './verify.ts';

export interface OpenOptions {
  /** The list's private key, unlocked, in memory only. */
  listKey: PrivateKey;
  /** Registered keys of the members allowed to sign. */
  memberKeys: readonly PublicKey[];
  limits?: Partial<OpenLimits>;
  /** Refuse (throw) unless a member's signature verifies. Default true. */
  requireSignature?: boolean;
  date?: Date;
}

export interface OpenedPost {
  form: PayloadForm;
  outer: OuterFacts;
  /** The decrypted OpenPGP packets (signatures, literal or compressed data), bodies byte for byte as the sender made them. */
  innerPackets: Uint8Array;
  verification: Verification;
}

export async function openPost(raw: Uint8Array | string, options: OpenOptions): Promise<OpenedPost> {
  const limits = resolveLimits(options.limits);
  const date = options.date ?? new Date();
  const found = await findPayload(raw, limits.maxMessageBytes);
  const message = await readPgpMessage(found.armored ?? found.binary!, limits);
  const { innerPackets, message: inner } = await decryptWithKey(message, options.listKey, limits, date);
  const verification = await verifyAgainst(inner, options.memberKeys, date);
  if ((options.requireSignature ?? true) && !verification.valid) fail(verification.code);
  const detached = verification.valid ? await detachedForm(inner, options.memberKeys, date) : null;

  return { form: found.form, outer: found.outer, innerPackets: detached?.innerPackets ?? innerPackets, verification };
}
