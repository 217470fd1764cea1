// Read on the subscriber's side: decrypt a delivered copy or an archive record
// with the subscriber's key, check the original sender's signature (it travels
// unchanged through the list), and parse the inner message for display.

import type { PrivateKey, PublicKey } from 'openpgp';
import { fail } from '../errors.ts';
import { resolveLimits, type OpenLimits } from '../limits.ts';
import { findPayload } from '../mime/payload.ts';
import { parseInner, type ParsedInner } from '../mime/parse-inner.ts';
import { decryptWithKey, readPgpMessage } from '../post/decrypt.ts';
import { verifyAgainst, type Verification } from '../post/verify.ts';

export interface ReadOptions {
  /** The subscriber's unlocked private key. */
  privateKey: PrivateKey;
  /** Keys that may have signed: the sender's key fetched from the list, or a local keyring. */
  senderKeys: readonly PublicKey[];
  limits?: Partial<OpenLimits>;
  date?: Date;
}

export interface ReadResult {
  verification: Verification;
  message: ParsedInner;
  /** The decrypted inner bytes, for callers that render or save them. */
  content: Uint8Array;
}

/** Reads an OpenPGP message given as armor or as bytes (e.g. PKESK ‖ body from the archive). */
export async function readMessage(input: string | Uint8Array, options: ReadOptions): Promise<ReadResult> {
  const limits = resolveLimits(options.limits);
  const date = options.date ?? new Date();
  const message = await readPgpMessage(input, limits);
  const { message: decrypted } = await decryptWithKey(message, options.privateKey, limits, date);
  const content = decrypted.getLiteralData();
  if (!(content instanceof Uint8Array)) fail('OPENPGP_MALFORMED', 'no literal data');
  const verification = await verifyAgainst(decrypted, options.senderKeys, date);
  return { verification, message: await parseInner(content), content };
}

/** Reads a delivered mail (PGP/MIME or inline) as it arrived in the mailbox. */
export async function readMail(raw: string | Uint8Array, options: ReadOptions): Promise<ReadResult> {
  const limits = resolveLimits(options.limits);
  const found = await findPayload(raw, limits.maxMessageBytes);
  return readMessage(found.armored ?? found.binary!, options);
}
