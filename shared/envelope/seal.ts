// Seal once: the signed inner packets of a post are encrypted a single time under
// a fresh random session key K, whatever the number of recipients. The result is
// one SEIPD packet (the "body") that every recipient's copy and the archive share.

import * as openpgp from 'openpgp';
import { randomBytes } from '../bytes.ts';
import { encryptPacketsSeipdV1 } from './packets.ts';

/** K: the per-post session key. Never stored or sent bare; only wrapped. */
export interface SessionKey {
  data: Uint8Array;
  algorithm: 'aes256';
}

export interface Sealed {
  sessionKey: SessionKey;
  /** One SEIPD v1 packet (header included) holding the untouched inner packets. */
  body: Uint8Array;
}

export function generateSessionKey(): SessionKey {
  return { data: randomBytes(32), algorithm: 'aes256' };
}

export async function seal(innerPackets: Uint8Array, sessionKey: SessionKey = generateSessionKey()): Promise<Sealed> {
  const body = await encryptPacketsSeipdV1(innerPackets, openpgp.enums.symmetric.aes256, sessionKey.data);
  return { sessionKey, body };
}
