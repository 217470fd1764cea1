// Step 3, verify: the post must be signed by the registered key of the member in
// From. Only that one key is offered to the signature check (which runs with the
// decryption in the open pool, see open.ts), so a valid signature by another
// member's key does not pass as the From member's.

import type { Sql } from '../store/db.ts';
import { getMember, type MemberRecord } from '../store/members.ts';
import type { Parsed } from './types.ts';

/** The member the post claims to come from: the only key its signature may be checked against. */
export async function claimedSender(parsed: Parsed, sql: Sql): Promise<MemberRecord | null> {
  return parsed.outer.from ? await getMember(sql, parsed.list.id, parsed.outer.from) : null;
}
