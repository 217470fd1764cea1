// Step 2, open: decrypt the payload in memory with the list key, under limits,
// accepting only integrity-protected encryption (shared/post/decrypt.ts), and
// check the signature against the claimed sender's key (step 3). Both run in the
// open pool: a worker thread with a time budget, off the event loop.

import type { PrivateKey } from 'openpgp';
import type { MemberRecord } from '../store/members.ts';
import type { OpenPool } from './pool.ts';
import type { Parsed, Verified } from './types.ts';

export async function open(parsed: Parsed, listKey: PrivateKey, sender: MemberRecord | null, pool: OpenPool, date = new Date()): Promise<Verified> {
  const opened = await pool.open(parsed.payload, parsed.list.maxBytes, listKey, sender?.publicKey ?? null, date);
  return { ...parsed, ...opened, member: sender };
}
