// Step 3, verify: the post must be signed by the registered key of the member in
// From. Only that one key is offered, so a valid signature by another member's
// key does not pass as the From member's. The facts replay protection needs
// (signature digest, protected recipients) are computed here as plain data.

import { parsePublicKey, SIGNATURE_CLOCK_SKEW_MS, signedContentFacts, verifyAgainst } from '../../shared/index.ts';
import type { Db } from '../store/db.ts';
import { getMember } from '../store/members.ts';
import type { Opened, Verified } from './types.ts';

export async function verify(opened: Opened, db: Db, date = new Date()): Promise<Verified> {
  const from = opened.outer.from;
  const member = from ? getMember(db, opened.list.id, from) : null;
  if (!member) return { ...opened, member: null, verification: null, signatureDigest: null, protectedRecipients: null };
  const key = await parsePublicKey(member.publicKey);
  // A signature dated up to the allowed clock skew ahead still verifies; beyond
  // it openpgp refuses it and verifyAgainst says SIGNATURE_FROM_FUTURE.
  const verification = await verifyAgainst(opened.decrypted, [key], new Date(date.getTime() + SIGNATURE_CLOCK_SKEW_MS));
  const facts = await signedContentFacts(opened.decrypted, verification);
  return { ...opened, member, verification, ...facts };
}
