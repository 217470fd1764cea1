// One ephemeral X25519 key per slice (server/pipeline/recipient.ts, wrapSlice): the
// Curve25519 members of one slice of one post get PKESKs with the same ephemeral
// point V; each copy is read by its own member with GnuPG 2.2, RNP, Sequoia (sq,
// sqop) and openpgp.js, and by nobody else: another member's key, even one asked
// to try (the key ID swapped to its own), does not unwrap it. Another slice of the
// same page, and another post, get another V.

import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCopy, generateSessionKey, KeyIdentity, seal, type SessionKey } from '../../shared/index.ts';
import { wrapSlice } from '../../server/pipeline/recipient.ts';
import { WrapPool } from '../../server/pipeline/wrap-pool.ts';
import { Gpg } from '../support/gpg.ts';
import { makeKindKey, OpenPgpTools, TOOLS, type KindKey } from '../support/openpgp-tools.ts';

let author: KindKey;
let members: KindKey[]; // four Curve25519 keys, made the way Letterlock makes them
let packets: Uint8Array[];
let tools: OpenPgpTools;
let aloneA: Gpg; // a GnuPG home holding member 0's secret key only
// Two threads, two members per slice at least: a page of four is two slices.
const pool = new WrapPool({ threads: 2, minPerThread: 2 });

/** The parts of a v3 ECDH PKESK (new-format header, one-octet length): key ID, V (0x40 || 32 octets), wrapped key. */
function parts(pkesk: Uint8Array): { keyId: string; point: string; wrapped: string } {
  const p = Buffer.from(pkesk);
  expect(p[0]).toBe(0xc1);
  expect(p[1]).toBe(p.length - 2);
  expect(p[2]).toBe(3); // version
  expect(p[11]).toBe(18); // ECDH
  expect(p.readUInt16BE(12)).toBe(263); // MPI of 0x40 || 32 octets
  expect(p[14]).toBe(0x40);
  return { keyId: p.subarray(3, 11).toString('hex'), point: p.subarray(15, 47).toString('hex'), wrapped: p.subarray(47).toString('hex') };
}

/** A PKESK with its key ID replaced, so a reader tries its own key on it. */
function withKeyId(pkesk: Uint8Array, keyId: string): Uint8Array {
  const p = Buffer.from(pkesk);
  Buffer.from(keyId, 'hex').copy(p, 3);
  return p;
}

const keyIdOf = async (k: KindKey) => (await k.publicKey.getEncryptionKey()).getKeyID().toHex();

beforeAll(async () => {
  const made = await Promise.all([
    makeKindKey('curve25519', 'alice@example.org', 'Alice Author'),
    ...[0, 1, 2, 3].map((i) => makeKindKey('curve25519', `m${i}@example.org`, `Member ${i}`)),
  ]);
  author = made[0]!;
  members = made.slice(1);
  packets = await Promise.all(members.map(async (m) => (await m.publicKey.getEncryptionKey()).keyPacket.write()));
  tools = await OpenPgpTools.create(members, [author]);
  aloneA = new Gpg();
  await aloneA.importKey(members[0]!.secretArmored);
  await aloneA.importKey(author.publicArmored);
  pool.warm();
}, 180_000);

afterAll(async () => {
  tools?.cleanup();
  aloneA?.cleanup();
  await pool.close();
});

/** A signed post sealed once under a fresh K: the body every copy shares. */
async function post(text: string): Promise<{ sessionKey: SessionKey; body: Uint8Array }> {
  const message = await openpgp.createMessage({ binary: new TextEncoder().encode(text), format: 'binary' });
  const signed = await openpgp.sign({ message, signingKeys: author.privateKey, format: 'binary' });
  return seal(signed as Uint8Array);
}

describe('one ephemeral key per slice', () => {
  it('the members of one slice share V; each reads its own copy with every tool, and only its own', async () => {
    const { sessionKey, body } = await post('shared ephemeral, one slice');
    // One slice: all four members, as a pool worker wraps it.
    const pkesks = (await wrapSlice(sessionKey, packets)).map((p) => p!);
    const ps = pkesks.map(parts);
    expect(new Set(ps.map((p) => p.point)).size).toBe(1);
    expect(new Set(ps.map((p) => p.wrapped)).size).toBe(4); // the KEKs differ per member
    for (const [i, m] of members.entries()) expect(ps[i]!.keyId).toBe(await keyIdOf(m));

    // Each member's copy, read by each tool as that member (exit 0, the author's words and signature).
    for (const [i, m] of members.entries()) {
      const copy = assembleCopy(pkesks[i]!, body);
      const verdicts = await tools.decryptAll(copy, m.fingerprint);
      for (const tool of TOOLS) {
        expect(verdicts[tool].code, `${tool}: ${verdicts[tool].stderr}`).toBe(0);
        expect(verdicts[tool].plaintext.toString()).toBe('shared ephemeral, one slice');
      }
      const read = await openpgp.decrypt({ message: await openpgp.readMessage({ binaryMessage: copy }), decryptionKeys: m.privateKey, format: 'binary' });
      expect(Buffer.from(read.data as Uint8Array).toString()).toBe('shared ephemeral, one slice');
    }

    // Member 0 cannot read member 1's copy: not as it is, nor with the key ID made its own
    // (so its key is tried on V with member 1's wrapped key).
    const a = new KeyIdentity(members[0]!.privateKey);
    const aId = await keyIdOf(members[0]!);
    await expect(a.unwrap(pkesks[1]!)).rejects.toThrow();
    await expect(a.unwrap(withKeyId(pkesks[1]!, aId))).rejects.toThrow();
    expect(Buffer.from((await a.unwrap(pkesks[0]!)).data).equals(Buffer.from(sessionKey.data))).toBe(true);
    for (const other of [pkesks[1]!, withKeyId(pkesks[1]!, aId), withKeyId(pkesks[3]!, aId)]) {
      const r = await aloneA.run(['--decrypt'], assembleCopy(other, body));
      expect(r.code).not.toBe(0);
      expect(r.stdout.toString()).not.toContain('shared ephemeral');
    }
    const own = await aloneA.run(['--decrypt'], assembleCopy(pkesks[0]!, body));
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout.toString()).toBe('shared ephemeral, one slice');
  }, 180_000);

  it('on the pool: each slice of a page has its own V, and each post another', async () => {
    const seen = new Set<string>();
    for (const text of ['first post', 'second post']) {
      const { sessionKey, body } = await post(text);
      // A page of eight: two slices of four (one per thread).
      const page = [...packets, ...packets];
      const out = (await pool.wrap(sessionKey, page)).map((p) => p!);
      const ps = out.map(parts);
      expect(new Set(ps.slice(0, 4).map((p) => p.point)).size).toBe(1);
      expect(new Set(ps.slice(4).map((p) => p.point)).size).toBe(1);
      expect(ps[0]!.point).not.toBe(ps[4]!.point);
      for (const v of [ps[0]!.point, ps[4]!.point]) {
        expect(seen.has(v)).toBe(false);
        seen.add(v);
      }
      // The same member in both slices: two different PKESKs, both its own.
      for (const i of [0, 4]) {
        const copy = assembleCopy(out[i]!, body);
        const r = await aloneA.run(['--decrypt'], copy);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.toString()).toBe(text);
      }
      for (const [i, p] of out.entries()) {
        const got = await new KeyIdentity(members[i % 4]!.privateKey).unwrap(p);
        expect(Buffer.from(got.data).equals(Buffer.from(sessionKey.data))).toBe(true);
      }
    }
    expect(seen.size).toBe(4);
  }, 180_000);

  it("'recipient' makes a fresh V per PKESK; a bad packet or another algorithm in the slice changes nothing for the rest", async () => {
    const k = generateSessionKey();
    const fresh = (await wrapSlice(k, packets, { ephemeral: 'recipient' })).map((p) => parts(p!).point);
    expect(new Set(fresh).size).toBe(4);
    const p256 = await openpgp.generateKey({ type: 'ecc', curve: 'nistP256', userIDs: [{ email: 'p@example.org' }], format: 'object' });
    const mixed = await wrapSlice(k, [packets[0]!, new Uint8Array([1, 2, 3]), (await p256.publicKey.getEncryptionKey()).keyPacket.write(), packets[1]!]);
    expect(mixed[1]).toBeNull();
    expect(parts(mixed[0]!).point).toBe(parts(mixed[3]!).point);
    const got = await new KeyIdentity(p256.privateKey).unwrap(mixed[2]!);
    expect(Buffer.from(got.data).equals(Buffer.from(k.data))).toBe(true);
    for (const i of [0, 3]) {
      const m = await new KeyIdentity(members[i === 0 ? 0 : 1]!.privateKey).unwrap(mixed[i]!);
      expect(Buffer.from(m.data).equals(Buffer.from(k.data))).toBe(true);
    }
  }, 120_000);
});
