// Step 5, seal: encrypt the sender's signed inner packets once, under a fresh K.

import { seal as sealPackets } from '../../shared/index.ts';
import type { SealedPost, Verified } from './types.ts';

export async function seal(verified: Verified): Promise<SealedPost> {
  return { verified, sealed: await sealPackets(verified.innerPackets) };
}
