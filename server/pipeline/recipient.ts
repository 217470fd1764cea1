// The wrap step's recipient: built from a member's stored encryption key packet
// (validated by the key policy at registration). For Curve25519 keys, the most
// common kind and the one Letterlock generates, K is wrapped with Node's native
// X25519, SHA-256 and AES key wrap: the RFC 6637 ECDH construction, byte for
// byte what openpgp.js makes, at a third of its CPU cost (the fan-out's largest
// per-copy cost). Every other algorithm goes through shared/'s openpgp.js path.
// Tests check both against openpgp.js's decryption and against gpg.
//
// One ephemeral key per slice (wrapSlice, used by the wrap pool). A PKESK costs two
// X25519 operations when each makes its own ephemeral pair (the fixed-base
// multiplication V = vG, then S = vR); the recipients of one slice of one post
// share a single {v, V}, so each costs one (S_i = vR_i), plus the KDF and AES-KW.
// Why that is safe here:
//  - Every recipient of a post receives the same K; the slice's v protects nothing
//    but that K. Whoever learns v (or any S_i) learns K of this one post, which every
//    member of the slice holds anyway; v never spans two posts (a fresh pair per
//    slice, per page, per post), so a member removed later learns nothing from an
//    old v about later posts.
//  - The KEKs still differ per recipient: S_i = vR_i differs for distinct keys, and
//    the RFC 6637 / RFC 9580 11.5 KDF binds each KEK to the recipient's fingerprint.
//  - Reusing the DH randomness across distinct recipients of one message is the
//    studied "randomness re-use" multi-recipient setting (Kurosawa, PKC 2002;
//    Bellare, Boldyreva, Staddon, PKC 2003): hashed-ElGamal/DHIES-style schemes
//    stay IND-CCA secure under the same assumptions; CMS's KeyAgreeRecipientInfo
//    (RFC 5652 6.2.2, used by S/MIME over ECDH, RFC 5753) carries one originator
//    ephemeral key for a list of recipients.
//  - What a recipient learns that it did not before: that other copies of this post
//    carried the same V. Copies of a post are already linkable through the shared
//    body ciphertext, and V says nothing about who else received it (the key IDs stay
//    in each PKESK alone). A receiver sees only its own PKESK and computes S = rV
//    as always: nothing on the wire changes shape.
//  - The one text against it: RFC 9580 11.5's non-normative synopsis says "an
//    ephemeral, single-use key pair" (added in crypto-refresh in 2023; RFC 6637 says
//    "an ephemeral key pair"). It carries no MUST and cannot be checked by a receiver;
//    the reasons above are why we depart from it for the recipients of one post.
//    WrapPool's `ephemeral: 'recipient'` restores one pair per PKESK.
// v lives only inside OpenSSL's key object (never in a JS buffer, never serialised or
// logged) and is used for one slice: the reference is dropped when the slice ends, and
// OpenSSL cleanses the key when the collector frees the object (Node has no call to wipe
// a key object sooner; a pair per PKESK left one such object per recipient). Each S_i,
// KEK and the session key block are zeroed as soon as they are used.

import { createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hash, type KeyObject } from 'node:crypto';
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
const ANONYMOUS_SENDER = Buffer.from('Anonymous Sender    ', 'latin1');
/** The session key block (AES-256: 40 octets) wrapped with AES-KW: 8 octets longer. */
const WRAPPED = 48;
/** PKESK v3 body: version, key ID, algorithm, MPI(0x40 || V) of 263 bits, size, wrapped key. */
const PKESK_BODY = 1 + 8 + 1 + 2 + 1 + 32 + 1 + WRAPPED;

interface EcdhParams {
  oid: { write(): Uint8Array };
  Q: Uint8Array;
  kdfParams: { hash: number; cipher: number };
}

/** RFC 6637 section 8 (RFC 9580 11.5): algorithm, K, two-octet checksum, PKCS#5 padding to 40 octets. The caller zeroes it. */
function sessionKeyBlock(sessionKey: SessionKey): Buffer {
  if (sessionKey.algorithm !== 'aes256' || sessionKey.data.length !== 32) throw new Error('unexpected session key');
  let sum = 0;
  for (const b of sessionKey.data) sum = (sum + b) & 0xffff;
  const m = Buffer.alloc(40);
  m[0] = SYM_AES256;
  m.set(sessionKey.data, 1);
  m[33] = sum >> 8;
  m[34] = sum & 0xff;
  m.fill(5, 35);
  return m;
}

/**
 * One ephemeral X25519 key pair {v, V}: for one PKESK, or shared by the recipients of
 * one slice of one post (see the top of this file). v stays inside OpenSSL's key
 * object; dispose() drops it.
 */
class Ephemeral {
  private constructor(private key: KeyObject | null, readonly point: Buffer) {}

  static fresh(): Ephemeral {
    // The public point is encoded by the key generation itself (JWK: about twice as fast
    // as DER here), never by exporting pair.publicKey afterwards. On Node 20 that export
    // holds the key's mutex while it allocates; a garbage collection then can free the
    // finished key-generation job, whose destructor takes the same mutex, and the thread
    // deadlocks for good (gdb: ~KeyGenJob under ExportJWKEdKey). That was the hang of
    // bench:seal and of pool threads, with or without tsx; test/bench/keygen-race.mjs.
    const pair = generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' } });
    const point = Buffer.from((pair.publicKey as unknown as { x: string }).x, 'base64url');
    if (point.length !== 32) throw new Error('unexpected X25519 public key');
    return new Ephemeral(pair.privateKey, point);
  }

  get privateKey(): KeyObject {
    if (!this.key) throw new Error('ephemeral key already disposed');
    return this.key;
  }

  dispose(): void {
    this.key = null;
  }
}

/** Native X25519 wrapping for one Curve25519 (legacy, v4) ECDH key. */
class X25519Wrapper {
  private constructor(
    private readonly publicKey: KeyObject,
    private readonly keyId: Buffer,
    /** The KDF's whole input, 00 00 00 01 || S || param (RFC 6637 section 7); S's 32 octets are zero between wraps. */
    private readonly kdfInput: Buffer,
    private readonly hash: string,
    private readonly kek: { bytes: number; wrap: string },
  ) {}

  private static make(x: Uint8Array, keyId: Uint8Array, oid: Uint8Array, hashId: number, cipherId: number, fingerprint: Uint8Array): X25519Wrapper | null {
    const hashName = HASHES[hashId];
    const kek = KEK[cipherId];
    if (!hashName || !kek) return null;
    // (JWK import measured about ten times as fast as DER here.)
    const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64url') }, format: 'jwk' });
    // RFC 6637 section 8: the KDF's fixed input for this recipient, behind the counter and room for S.
    const kdfInput = Buffer.alloc(4 + 32 + oid.length + 5 + ANONYMOUS_SENDER.length + fingerprint.length);
    kdfInput[3] = 1;
    let at = 36;
    kdfInput.set(oid, at);
    at += oid.length;
    kdfInput.set([ECDH, 3, 1, hashId, cipherId], at);
    at += 5;
    kdfInput.set(ANONYMOUS_SENDER, at);
    kdfInput.set(fingerprint, at + ANONYMOUS_SENDER.length);
    return new X25519Wrapper(publicKey, Buffer.from(keyId), kdfInput, hashName, kek);
  }

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
    // v4 fingerprint: SHA-1 over 0x99, the two-octet length and the body (RFC 4880 12.2).
    const framed = Buffer.allocUnsafe(3 + b.length);
    framed[0] = 0x99;
    framed.writeUInt16BE(b.length, 1);
    b.copy(framed, 3);
    const fingerprint = hash('sha1', framed, 'buffer');
    return X25519Wrapper.make(x, fingerprint.subarray(12), oid, b[at + 2]!, b[at + 3]!, fingerprint);
  }

  static from(packet: KeyPacket): X25519Wrapper | null {
    const p = packet as unknown as { algorithm: number; publicParams: EcdhParams; getKeyID(): { write(): Uint8Array }; getFingerprintBytes(): Uint8Array; version: number };
    if (p.algorithm !== ECDH || p.version !== 4) return null;
    const oid = Buffer.from(p.publicParams.oid.write()); // length-prefixed
    if (!oid.subarray(1).equals(CURVE25519_OID)) return null;
    const { Q, kdfParams } = p.publicParams;
    if (Q.length !== 33 || Q[0] !== 0x40) return null;
    return X25519Wrapper.make(Q.subarray(1), p.getKeyID().write(), oid, kdfParams.hash, kdfParams.cipher, p.getFingerprintBytes());
  }

  /** One PKESK for K's block `m` (sessionKeyBlock) under the ephemeral pair `eph`. */
  wrapBlock(m: Buffer, eph: Ephemeral): Buffer {
    const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: this.publicKey });
    shared.copy(this.kdfInput, 4);
    shared.fill(0);
    const digest = hash(this.hash, this.kdfInput, 'buffer');
    this.kdfInput.fill(0, 4, 36);
    const cipher = createCipheriv(this.kek.wrap, digest.subarray(0, this.kek.bytes), KW_IV);
    const head = cipher.update(m);
    const tail = cipher.final();
    digest.fill(0);
    if (head.length + tail.length !== WRAPPED) throw new Error('unexpected key wrap length');
    const out = Buffer.allocUnsafe(2 + PKESK_BODY);
    out[0] = 0xc1; // new-format header, tag 1
    out[1] = PKESK_BODY;
    out[2] = 3;
    this.keyId.copy(out, 3);
    out[11] = ECDH;
    out[12] = 0x01; // MPI of 263 bits
    out[13] = 0x07;
    out[14] = 0x40;
    eph.point.copy(out, 15);
    out[47] = WRAPPED;
    head.copy(out, 48);
    tail.copy(out, 48 + head.length);
    return out;
  }

  /** One PKESK with its own fresh ephemeral pair. */
  wrap(sessionKey: SessionKey): Uint8Array {
    const m = sessionKeyBlock(sessionKey);
    const eph = Ephemeral.fresh();
    try {
      return this.wrapBlock(m, eph);
    } finally {
      m.fill(0);
      eph.dispose();
    }
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

/**
 * Wraps K to each stored key packet of one slice of one post, in order: null where the
 * packet cannot be parsed or wrapped (one bad key never fails the slice). Curve25519
 * keys share one ephemeral pair for the whole slice unless `ephemeral` is 'recipient'
 * (see the top of this file); other keys go through openpgp.js, one pair each.
 */
export async function wrapSlice(sessionKey: SessionKey, packets: Iterable<Uint8Array>, options: { ephemeral?: 'slice' | 'recipient' } = {}): Promise<Array<Uint8Array | null>> {
  const m = sessionKeyBlock(sessionKey);
  let eph: Ephemeral | null = null;
  const out: Array<Uint8Array | null> = [];
  try {
    for (const packet of packets) {
      let pkesk: Uint8Array | null = null;
      try {
        const native = X25519Wrapper.fromBytes(packet);
        if (native && options.ephemeral !== 'recipient') pkesk = native.wrapBlock(m, (eph ??= Ephemeral.fresh()));
        else if (native) pkesk = native.wrap(sessionKey);
        // The fingerprint is not used by the wrap: the packet carries its own.
        else pkesk = await (await PacketRecipient.fromPacket('', packet)).wrap(sessionKey);
      } catch {
        pkesk = null;
      }
      out.push(pkesk);
    }
  } finally {
    m.fill(0);
    eph?.dispose();
  }
  return out;
}
