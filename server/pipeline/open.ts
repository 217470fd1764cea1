// Step 2, open: decrypt the payload in memory with the list key, under limits,
// accepting only integrity-protected encryption (shared/post/decrypt.ts).

import type { PrivateKey } from 'openpgp';
import { decryptWithKey, readPgpMessage, resolveLimits } from '../../shared/index.ts';
import type { Opened, Parsed } from './types.ts';

export async function open(parsed: Parsed, listKey: PrivateKey, date = new Date()): Promise<Opened> {
  const limits = resolveLimits({ maxMessageBytes: parsed.list.maxBytes });
  const message = await readPgpMessage(parsed.payload, limits);
  // innerPackets: the sender's packets byte for byte (for sealing); decrypted: parsed, for verifying.
  const { innerPackets, message: decrypted } = await decryptWithKey(message, listKey, limits, date);
  return { ...parsed, decrypted, innerPackets };
}
