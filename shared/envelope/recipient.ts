// Wrap and unwrap K. A Recipient wraps K to one public key (one PKESK packet, about
// 100 bytes); an Identity unwraps K with one private key. The two small interfaces
// carry the whole envelope: the server wraps to subscribers and to the archive,
// the archive unwraps with its key and re-wraps to a member, a subscriber unwraps.

import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { concatBytes } from '../bytes.ts';
import { fail } from '../errors.ts';
import { makePkesk } from './packets.ts';
import type { SessionKey } from './seal.ts';

export interface Recipient {
  /** Primary-key fingerprint, upper-case hex. */
  readonly fingerprint: string;
  wrap(sessionKey: SessionKey): Promise<Uint8Array>;
}

export interface Identity {
  unwrap(pkesk: Uint8Array): Promise<SessionKey>;
}

/** A public key whose encryption subkey was selected and validated once, up front. */
export class KeyRecipient implements Recipient {
  private constructor(
    readonly fingerprint: string,
    private readonly keyPacket: Parameters<typeof makePkesk>[0],
  ) {}

  /** Validation (signatures, expiry) happens here, not once per wrap. */
  static async fromPublicKey(key: PublicKey, date: Date = new Date()): Promise<KeyRecipient> {
    let encryptionKey;
    try {
      encryptionKey = await key.getEncryptionKey(undefined, date);
    } catch (e) {
      fail('KEY_NO_ENCRYPTION', undefined, e);
    }
    return new KeyRecipient(key.getFingerprint().toUpperCase(), encryptionKey.keyPacket);
  }

  wrap(sessionKey: SessionKey): Promise<Uint8Array> {
    return makePkesk(this.keyPacket, sessionKey.data, openpgp.enums.symmetric[sessionKey.algorithm], false);
  }
}

const PKESK_ONLY = { [openpgp.enums.packet.publicKeyEncryptedSessionKey]: openpgp.PublicKeyEncryptedSessionKeyPacket };

export class KeyIdentity implements Identity {
  constructor(private readonly privateKey: PrivateKey) {
    if (!privateKey.isDecrypted()) throw new Error('KeyIdentity needs an unlocked private key');
  }

  async unwrap(pkesk: Uint8Array): Promise<SessionKey> {
    let packets;
    try {
      packets = await openpgp.PacketList.fromBinary(pkesk, PKESK_ONLY as never);
    } catch (e) {
      fail('OPENPGP_MALFORMED', 'wrapped key', e);
    }
    if (packets.length !== 1) fail('OPENPGP_MALFORMED', 'expected exactly one wrapped key');
    let keys;
    try {
      keys = await openpgp.decryptSessionKeys({ message: new openpgp.Message(packets), decryptionKeys: this.privateKey });
    } catch (e) {
      fail('WRONG_KEY', undefined, e);
    }
    const key = keys[0];
    if (!key || key.algorithm !== 'aes256') fail('DECRYPTION_FAILED', 'unexpected session key algorithm');
    return { data: key.data, algorithm: 'aes256' };
  }
}

export interface WrapManyOptions {
  /** Wraps in flight at once. The ECDH work runs on libuv's thread pool, so a
   * few dozen in flight keep every core busy without holding many promises. */
  concurrency?: number;
}

/** Wraps K to every recipient in one call, in order, with bounded parallelism. */
export async function wrapMany(sessionKey: SessionKey, recipients: readonly Recipient[], options: WrapManyOptions = {}): Promise<Uint8Array[]> {
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 64, recipients.length || 1));
  const out = new Array<Uint8Array>(recipients.length);
  let next = 0;
  async function worker(): Promise<void> {
    for (let i = next++; i < recipients.length; i = next++) {
      out[i] = await recipients[i]!.wrap(sessionKey);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

/** A recipient's copy: their PKESK followed by the shared body, a standard OpenPGP message. */
export function assembleCopy(pkesk: Uint8Array, body: Uint8Array): Uint8Array {
  return concatBytes([pkesk, body]);
}

/** Archive to member: unwrap K with the archive identity, wrap it to the member. */
export async function rewrap(pkesk: Uint8Array, from: Identity, to: Recipient): Promise<Uint8Array> {
  const sessionKey = await from.unwrap(pkesk);
  try {
    return await to.wrap(sessionKey);
  } finally {
    sessionKey.data.fill(0);
  }
}
