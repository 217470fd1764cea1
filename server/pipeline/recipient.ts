// The wrap step's recipient: built from a member's stored encryption key packet
// (validated by the key policy at registration). For Curve25519 keys, the most
// common kind and the one Letterlock generates, K is wrapped with Node's native
// X25519, SHA-256 and AES key wrap: the RFC 6637 ECDH construction, byte for
// byte what openpgp.js makes, at a third of its CPU cost (the fan-out's largest
// per-copy cost). Every other algorithm goes through shared/'s openpgp.js path.
// Tests check both against openpgp.js's decryption and against gpg.

import { createCipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as openpgp from 'openpgp';
import type { Recipient, SessionKey } from '../../shared/index.ts';
import { makePkesk } from '../../shared/envelope/packets.ts';

type KeyPacket = Parameters<typeof makePkesk>[0];

const ECDH = 18;
const CURVE25519_OID = Buffer.from('2b060104019755010501', 'hex'); // 1.3.6.1.4.1.3029.1.5.1
const HASHES: Record<number, string> = { 8: 'sha256', 9: 'sha384', 10: 'sha512' };
const KEK: Record<number, { bytes: number; wrap: string }> = {
  7: { bytes: 16, wrap: 'id-aes128-wrap' }, 8: { bytes: 24, wrap: 'id-aes192-wrap' }, 9: { bytes: 32, wrap: 'id-aes256-wrap' },
};
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const SYM_AES256 = 9;

interface EcdhParams {
  oid: { write(): Uint8Array };
  Q: Uint8Array;
  kdfParams: { hash: number; cipher: number };
}

/** Native X25519 wrapping for one Curve25519 (legacy, v4) ECDH key. */
class X25519Wrapper {
  private constructor(
    private readonly publicKey: KeyObject,
    private readonly keyId: Buffer,
    private readonly kdfParam: Buffer,
    private readonly hash: string,
    private readonly kek: { bytes: number; wrap: string },
  ) {}

  /**
   * Straight from the stored packet body, without openpgp.js's parser (which cost
   * about as much as the wrap itself): a v4 ECDH Curve25519 public key packet
   * (RFC 4880 5.5.2, RFC 6637 9) exactly, or null for anything else.
   */
  static fromBytes(body: Uint8Array): X25519Wrapper | null {
    const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    // version 4, 4 octets of creation time, algorithm, OID (length-prefixed)
    if (b.length !== 6 + 1 + CURVE25519_OID.length + 2 + 33 + 4 || b[0] !== 4 || b[5] !== ECDH) return null;
    let at = 6;
    if (b[at] !== CURVE25519_OID.length || !b.subarray(at + 1, at + 1 + CURVE25519_OID.length).equals(CURVE25519_OID)) return null;
    const oid = b.subarray(at, at + 1 + CURVE25519_OID.length);
    at += 1 + CURVE25519_OID.length;
    // MPI of 0x40 || the 32-octet point: 263 bits
    if (b.readUInt16BE(at) !== 263 || b[at + 2] !== 0x40) return null;
    const x = b.subarray(at + 3, at + 35);
    at += 35;
    // KDF parameters: length 3, reserved 1, hash, cipher
    if (b[at] !== 3 || b[at + 1] !== 1) return null;
    const hashId = b[at + 2]!;
    const cipherId = b[at + 3]!;
    const hash = HASHES[hashId];
    const kek = KEK[cipherId];
    if (!hash || !kek) return null;
    const header = Buffer.from([0x99, b.length >> 8, b.length & 0xff]);
    const fingerprint = createHash('sha1').update(header).update(b).digest();
    // (JWK import measured about ten times as fast as DER here.)
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: x.toString('base64url') }, format: 'jwk' });
    const kdfParam = Buffer.concat([oid, Buffer.from([ECDH, 3, 1, hashId, cipherId]), Buffer.from('Anonymous Sender    ', 'latin1'), fingerprint]);
    return new X25519Wrapper(publicKey, Buffer.from(fingerprint.subarray(12)), kdfParam, hash, kek);
  }

  static from(packet: KeyPacket): X25519Wrapper | null {
    const p = packet as unknown as { algorithm: number; publicParams: EcdhParams; getKeyID(): { write(): Uint8Array }; getFingerprintBytes(): Uint8Array; version: number };
    if (p.algorithm !== ECDH || p.version !== 4) return null;
    const oid = Buffer.from(p.publicParams.oid.write()); // length-prefixed
    if (!oid.subarray(1).equals(CURVE25519_OID)) return null;
    const { Q, kdfParams } = p.publicParams;
    const hash = HASHES[kdfParams.hash];
    const kek = KEK[kdfParams.cipher];
    if (!hash || !kek || Q.length !== 33 || Q[0] !== 0x40) return null;
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(Q.subarray(1)).toString('base64url') }, format: 'jwk' });
    // RFC 6637 section 8: the KDF's fixed input for this recipient.
    const kdfParam = Buffer.concat([
      oid, Buffer.from([ECDH, 3, 1, kdfParams.hash, kdfParams.cipher]),
      Buffer.from('Anonymous Sender    ', 'latin1'), Buffer.from(p.getFingerprintBytes()),
    ]);
    return new X25519Wrapper(publicKey, Buffer.from(p.getKeyID().write()), kdfParam, hash, kek);
  }

  wrap(sessionKey: SessionKey): Uint8Array {
    if (sessionKey.algorithm !== 'aes256' || sessionKey.data.length !== 32) throw new Error('unexpected session key');
    const eph = generateKeyPairSync('x25519');
    const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: this.publicKey });
    const kek = createHash(this.hash).update(Buffer.from([0, 0, 0, 1])).update(shared).update(this.kdfParam).digest().subarray(0, this.kek.bytes);
    shared.fill(0);
    // Session key block: algorithm, K, two-octet checksum, PKCS#5 padding to 8.
    let sum = 0;
    for (const b of sessionKey.data) sum = (sum + b) & 0xffff;
    const m = Buffer.alloc(40);
    m[0] = SYM_AES256;
    m.set(sessionKey.data, 1);
    m[33] = sum >> 8;
    m[34] = sum & 0xff;
    m.fill(5, 35);
    const cipher = createCipheriv(this.kek.wrap, kek, KW_IV);
    const wrapped = Buffer.concat([cipher.update(m), cipher.final()]);
    m.fill(0);
    kek.fill(0);
    // (JWK export measured about twice as fast as DER here.)
    const ephPublic = Buffer.from((eph.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
    if (ephPublic.length !== 32) throw new Error('unexpected X25519 public key');
    // PKESK v3: version, key ID, algorithm, MPI(0x40 || ephemeral point), wrapped key.
    const body = Buffer.concat([Buffer.from([3]), this.keyId, Buffer.from([ECDH, 0x01, 0x07, 0x40]), ephPublic, Buffer.from([wrapped.length]), wrapped]);
    return Buffer.concat([Buffer.from([0xc1, body.length]), body]); // new-format header, tag 1
  }
}

/** A recipient built from a stored, already validated encryption key packet. */
export class PacketRecipient implements Recipient {
  private constructor(readonly fingerprint: string, private readonly packet: KeyPacket | null, private readonly native: X25519Wrapper | null) {}

  static async fromPacket(fingerprint: string, body: Uint8Array, options: { native?: boolean } = {}): Promise<PacketRecipient> {
    if (options.native !== false) {
      const fast = X25519Wrapper.fromBytes(body);
      if (fast) return new PacketRecipient(fingerprint, null, fast);
    }
    const packet = new openpgp.PublicSubkeyPacket();
    await (packet as unknown as { read(b: Uint8Array): Promise<void> | void }).read(body);
    const p = packet as unknown as KeyPacket;
    return new PacketRecipient(fingerprint, p, options.native === false ? null : X25519Wrapper.from(p));
  }

  get usesNativeX25519(): boolean {
    return this.native !== null;
  }

  async wrap(sessionKey: SessionKey): Promise<Uint8Array> {
    if (this.native) return this.native.wrap(sessionKey);
    return makePkesk(this.packet!, sessionKey.data, openpgp.enums.symmetric[sessionKey.algorithm], false);
  }
}
