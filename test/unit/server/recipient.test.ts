// The wrap step's recipient: the native X25519 path must make PKESKs that the
// shared core (openpgp.js) unwraps, exactly like its own; other algorithms take
// openpgp.js's path. (Every copy in the integration tests is also decrypted by gpg.)

import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { assembleCopy, generateKey, generateSessionKey, KeyIdentity, parsePrivateKey, readMessage, readPublicKey, seal, unlockPrivateKey, utf8 } from '../../../shared/index.ts';
import { PacketRecipient } from '../../../server/pipeline/recipient.ts';

async function encryptionPacket(key: openpgp.PublicKey): Promise<Uint8Array> {
  return (await key.getEncryptionKey()).keyPacket.write();
}

describe('PacketRecipient', () => {
  it('wraps K to a Curve25519 key natively; the shared core unwraps it and reads the copy', async () => {
    const g = await generateKey({ kind: 'subscriber', address: 'n@x.test', passphrase: 'p' });
    const priv = await unlockPrivateKey(await parsePrivateKey(g.privateKeyArmored), 'p');
    const { key } = await readPublicKey(g.publicKeyArmored);
    const r = await PacketRecipient.fromPacket(g.facts.fingerprint, await encryptionPacket(key));
    expect(r.usesNativeX25519).toBe(true);
    const slow = await PacketRecipient.fromPacket(g.facts.fingerprint, await encryptionPacket(key), { native: false });
    const identity = new KeyIdentity(priv);
    for (let i = 0; i < 50; i++) {
      const k = generateSessionKey();
      const pkesk = await r.wrap(k);
      expect(pkesk.length).toBe((await slow.wrap(k)).length);
      expect(Buffer.from((await identity.unwrap(pkesk)).data).equals(Buffer.from(k.data))).toBe(true);
    }
    const sealed = await seal(await (async () => {
      const m = await openpgp.createMessage({ binary: utf8('hello'), format: 'binary' });
      return m.packets.write() as Uint8Array;
    })());
    const read = await readMessage(assembleCopy(await r.wrap(sealed.sessionKey), sealed.body), { privateKey: priv, senderKeys: [] });
    expect(new TextDecoder().decode(read.content)).toBe('hello');
  });

  it('two wraps of the same K differ (fresh ephemeral key each time)', async () => {
    const g = await generateKey({ kind: 'subscriber', address: 'e@x.test', passphrase: 'p' });
    const { key } = await readPublicKey(g.publicKeyArmored);
    const r = await PacketRecipient.fromPacket(g.facts.fingerprint, await encryptionPacket(key));
    const k = generateSessionKey();
    expect(Buffer.from(await r.wrap(k)).equals(Buffer.from(await r.wrap(k)))).toBe(false);
  });

  it('uses openpgp.js for other algorithms (NIST P-256)', async () => {
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'nistP256', userIDs: [{ email: 'p@x.test' }], format: 'object' });
    const r = await PacketRecipient.fromPacket(publicKey.getFingerprint(), await encryptionPacket(publicKey));
    expect(r.usesNativeX25519).toBe(false);
    const k = generateSessionKey();
    expect(Buffer.from((await new KeyIdentity(privateKey).unwrap(await r.wrap(k))).data).equals(Buffer.from(k.data))).toBe(true);
  });
  it('reads the stored packet without openpgp.js: the same key ID and KDF input; anything else is not taken natively', async () => {
    const { privateKey, publicKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'f@x.test' }], format: 'object' });
    const sub = await publicKey.getEncryptionKey();
    const body = sub.keyPacket.write();
    const fast = await PacketRecipient.fromPacket('', body);
    const slow = await PacketRecipient.fromPacket('', body, { native: false });
    expect(fast.usesNativeX25519).toBe(true);
    const k = generateSessionKey();
    const a = await fast.wrap(k);
    const b = await slow.wrap(k);
    // PKESK v3: tag/length, version, then the 8-octet key ID of the subkey.
    expect(Buffer.from(a.subarray(3, 11)).toString('hex')).toBe(sub.getKeyID().toHex());
    expect(Buffer.from(a.subarray(0, 12)).equals(Buffer.from(b.subarray(0, 12)))).toBe(true);
    // The KDF input includes the fingerprint: a wrong one would not unwrap.
    expect(Buffer.from((await new KeyIdentity(privateKey).unwrap(a)).data).equals(Buffer.from(k.data))).toBe(true);
    // A packet one octet short, or with a trailing octet, is not the exact form: it goes to openpgp.js's
    // reader, which refuses it or reads the key; never a PKESK the member cannot open.
    for (const bad of [body.subarray(0, body.length - 1), new Uint8Array([...body, 0])]) {
      const pkesk = await PacketRecipient.fromPacket('', bad).then((r) => r.wrap(k)).catch(() => null);
      if (pkesk) expect(Buffer.from((await new KeyIdentity(privateKey).unwrap(pkesk)).data).equals(Buffer.from(k.data))).toBe(true);
    }
  });
});
