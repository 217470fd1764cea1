// Step 3, verify: the post must be signed by the registered key of the member in
// From. Only that one key is offered, so a valid signature by another member's
// key does not pass as the From member's.

import { parsePublicKey, verifyAgainst } from '../../shared/index.ts';
import type { Db } from '../store/db.ts';
import { getMember } from '../store/members.ts';
import type { Opened, Verified } from './types.ts';

export async function verify(opened: Opened, db: Db, date = new Date()): Promise<Verified> {
  const from = opened.outer.from;
  const member = from ? getMember(db, opened.list.id, from) : null;
  if (!member) return { ...opened, member: null, verification: null };
  const key = await parsePublicKey(member.publicKey);
  const verification = await verifyAgainst(opened.decrypted, [key], date);
  return { ...opened, member, verification };
}
