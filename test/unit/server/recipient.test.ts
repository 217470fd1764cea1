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
});
