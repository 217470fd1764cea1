// The few openpgp.js packet-level operations the envelope needs, typed in one
// place. The public openpgp API encrypts whole messages; Letterlock must instead
// (a) encrypt already-signed packets byte for byte, without re-wrapping them in a
// new literal packet, and (b) make one bare PKESK packet per recipient. Both are
// done with openpgp's own packet classes, never with hand-written crypto.

import * as openpgp from 'openpgp';
import type { PublicKeyPacket, PublicSubkeyPacket, SecretKeyPacket, SecretSubkeyPacket } from 'openpgp';

type KeyPacket = PublicKeyPacket | PublicSubkeyPacket | SecretKeyPacket | SecretSubkeyPacket;

interface SeipdPacket {
  version: number;
  packets: { write(): Uint8Array };
  encrypt(algorithm: number, key: Uint8Array, config?: openpgp.Config): Promise<boolean>;
}

interface PkeskPacket {
  version: number;
  encrypt(keyPacket: KeyPacket): Promise<void>;
  sessionKey?: Uint8Array | null;
}

interface PkeskStatics {
  fromObject(o: {
    version: 3;
    encryptionKeyPacket: KeyPacket;
    anonymousRecipient: boolean;
    sessionKey: Uint8Array;
    sessionKeyAlgorithm: number;
  }): PkeskPacket;
}

interface SeipdStatics {
  fromObject(o: { version: 1 }): SeipdPacket;
}

const Seipd = openpgp.SymEncryptedIntegrityProtectedDataPacket as unknown as SeipdStatics;
const Pkesk = openpgp.PublicKeyEncryptedSessionKeyPacket as unknown as PkeskStatics;

function writePacket(packet: unknown): Uint8Array {
  const list = new openpgp.PacketList();
  list.push(packet as openpgp.AnyPacket);
  return list.write();
}

/**
 * Encrypts `inner` (already-serialized OpenPGP packets) as the contents of one
 * SEIPD v1 packet (CFB + MDC: the integrity-protected form GnuPG 2.2 reads).
 * Returns the whole packet, header included.
 */
export async function encryptPacketsSeipdV1(inner: Uint8Array, algorithm: number, key: Uint8Array): Promise<Uint8Array> {
  const seipd = Seipd.fromObject({ version: 1 });
  // The packet only ever calls write() on its contents: handing it the exact
  // bytes keeps the sender's signed packets untouched.
  seipd.packets = { write: () => inner };
  await seipd.encrypt(algorithm, key);
  return writePacket(seipd);
}

/** One v3 PKESK packet that wraps `sessionKey` to `keyPacket`. */
export async function makePkesk(keyPacket: KeyPacket, sessionKey: Uint8Array, algorithm: number, anonymous: boolean): Promise<Uint8Array> {
  const pkesk = Pkesk.fromObject({
    version: 3,
    encryptionKeyPacket: keyPacket,
    anonymousRecipient: anonymous,
    sessionKey,
    sessionKeyAlgorithm: algorithm,
  });
  await pkesk.encrypt(keyPacket);
  pkesk.sessionKey = null; // drop the plaintext K from the packet object at once
  return writePacket(pkesk);
}
