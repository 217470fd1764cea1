// Step 1, parse: find the one OpenPGP payload in the incoming mail and the outer
// envelope facts (From, threading), in the open pool (a worker thread with a time
// budget). The list's size limit applies here, before any decryption work is
// spent on an oversized post.

import type { OpenPool } from './pool.ts';
import type { Incoming, Parsed } from './types.ts';

export async function parse(incoming: Incoming, pool: OpenPool): Promise<Parsed> {
  const found = await pool.parse(incoming.raw, incoming.list.maxBytes);
  return { list: incoming.list, envelopeFrom: incoming.envelopeFrom, size: incoming.raw.byteLength, ...found };
}
