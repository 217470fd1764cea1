import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import {
  checkKey, generateKey, isLetterlockError, parsePrivateKey, readPrivateKeyForStorage, readPublicKey, unlockPrivateKey,
  type ErrorCode,
} from '../../../shared/index.ts';

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await p.then(() => null, (e: unknown) => e);
  expect(error, `expected ${code}`).not.toBeNull();
  expect(isLetterlockError(error) ? error.code : error).toBe(code);
  // Every refusal has a sentence for people, not just a code.
  expect((error as Error).message.length).toBeGreaterThan(20);
}

async function openpgpKey(options: Partial<Parameters<typeof openpgp.generateKey>[0]> & { config?: openpgp.PartialConfig }) {
  return openpgp.generateKey({ userIDs: [{ name: 'T', email: 't@example.org' }], format: 'armored', ...options } as Parameters<typeof openpgp.generateKey>[0] & { format: 'armored' });
}

describe('key generation', () => {
  it.each(['list', 'archive', 'subscriber'] as const)('makes a protected v4 Curve25519 %s key that passes the policy', async (kind) => {
    const g = await generateKey({ kind, address: 'Crypto@Lists.Example.org', passphrase: 'pw' });
    expect(g.facts.algorithm).toBe('curve25519');
    const priv = await parsePrivateKey(g.privateKeyArmored);
    expect(priv.keyPacket.version).toBe(4);
    expect(priv.isDecrypted()).toBe(false);
    await expect(readPrivateKeyForStorage(g.privateKeyArmored)).resolves.toBeTruthy();
    if (kind === 'archive') expect(g.facts.addresses).toEqual([]);
    else expect(g.facts.addresses).toEqual(['crypto@lists.example.org']);
  });

  it('protects with Argon2 + AEAD when asked (for the extension store) and still unlocks', async () => {
    const g = await generateKey({ kind: 'subscriber', address: 'a@example.org', passphrase: 'pw', protection: 'argon2' });
    const priv = await parsePrivateKey(g.privateKeyArmored);
    expect((priv.keyPacket as unknown as { s2k: { type: string } }).s2k.type).toBe('argon2');
    await expect(unlockPrivateKey(priv, 'pw')).resolves.toBeTruthy();
    // The protection is the store's business: senders are told MDC only (no SEIPDv2), so an
    // RFC 9580 sender such as openpgp.js 6 encrypts in the SEIPDv1 form GnuPG 2.2 reads.
    const pub = await readPublicKey(g.publicKeyArmored);
    expect((await pub.key.getPrimaryUser()).selfCertification.features).toEqual([1]) // 0x01: modification detection (SEIPDv1) only;
    const sent = await openpgp.readMessage({ armoredMessage: await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'x' }), encryptionKeys: pub.key }) });
    expect(sent.packets.findPacket(openpgp.enums.packet.aeadEncryptedData)).toBeFalsy();
    expect((sent.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData) as unknown as { version: number }).version).toBe(1);
  });

  it('refuses an empty passphrase', async () => {
    await expectCode(generateKey({ kind: 'list', address: 'l@example.org', passphrase: '' }), 'KEY_UNPROTECTED');
  });
});

describe('key policy: accepted keys', () => {
  it.each([
    ['curve25519', { type: 'ecc', curve: 'curve25519Legacy' }, 'curve25519'],
    ['NIST P-256', { type: 'ecc', curve: 'nistP256' }, 'nistP256'],
    ['NIST P-384', { type: 'ecc', curve: 'nistP384' }, 'nistP384'],
    ['NIST P-521', { type: 'ecc', curve: 'nistP521' }, 'nistP521'],
    ['RSA 2048', { type: 'rsa', rsaBits: 2048 }, 'rsa2048'],
  ] as const)('accepts %s', async (_name, options, algorithm) => {
    const { publicKey } = await openpgpKey(options as Partial<Parameters<typeof openpgp.generateKey>[0]>);
    const { facts } = await readPublicKey(publicKey, { expectedAddress: 'T@example.org' });
    expect(facts.algorithm).toBe(algorithm);
    expect(facts.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(facts.addresses).toEqual(['t@example.org']);
  });

  it.each([
    ['Ed25519/X25519', { type: 'curve25519' }, 'ed25519'],
    ['Ed448/X448', { type: 'curve448' }, 'ed448'],
    ['NIST P-256', { type: 'ecc', curve: 'nistP256' }, 'nistP256'],
  ] as const)('accepts an RFC 9580 v6 key (%s), with its 64-digit fingerprint and a key ID that is its first 16', async (_name, options, algorithm) => {
    const { publicKey } = await openpgpKey({ ...(options as Partial<Parameters<typeof openpgp.generateKey>[0]>), config: { v6Keys: true } });
    const { facts } = await readPublicKey(publicKey, { expectedAddress: 't@example.org' });
    expect(facts.algorithm).toBe(algorithm);
    expect(facts.fingerprint).toMatch(/^[0-9A-F]{64}$/);
    expect(facts.keyId).toBe(facts.fingerprint.slice(0, 16));
  });
});

describe('key policy: refusals, each with its own code', () => {
  it('KEY_UNREADABLE for garbage and for a truncated key', async () => {
    await expectCode(readPublicKey('not a key'), 'KEY_UNREADABLE');
    const { publicKey } = await openpgpKey({});
    await expectCode(readPublicKey(publicKey.slice(0, publicKey.length / 2)), 'KEY_UNREADABLE');
  });

  it('KEY_VERSION_UNSUPPORTED for RFC 9580 algorithms inside a v4 key (GnuPG 2.2 cannot read them)', async () => {
    // openpgp.js makes a v4 key with native Ed25519/X25519 when asked for the RFC 9580 curve without v6.
    const { publicKey } = await openpgpKey({ type: 'curve25519', config: { v6Keys: false } });
    await expectCode(readPublicKey(publicKey), 'KEY_VERSION_UNSUPPORTED');
  });

  it('KEY_EXPIRED for a key past its expiry', async () => {
    const { publicKey } = await openpgpKey({ keyExpirationTime: 60, date: new Date(Date.now() - 3600_000) });
    await expectCode(readPublicKey(publicKey), 'KEY_EXPIRED');
  });

  it('KEY_EXPIRED is judged at the given date', async () => {
    const { publicKey } = await openpgpKey({ keyExpirationTime: 3600 });
    await expect(readPublicKey(publicKey)).resolves.toBeTruthy();
    await expectCode(readPublicKey(publicKey, { date: new Date(Date.now() + 2 * 3600_000) }), 'KEY_EXPIRED');
  });

  it('KEY_REVOKED for a revoked key', async () => {
    const { privateKey } = await openpgpKey({});
    const revoked = await openpgp.revokeKey({ key: await openpgp.readPrivateKey({ armoredKey: privateKey }), format: 'armored' });
    await expectCode(readPublicKey(revoked.publicKey), 'KEY_REVOKED');
  });

  it('KEY_NO_ENCRYPTION for a signing-only key', async () => {
    const { publicKey } = await openpgpKey({ subkeys: [] });
    await expectCode(readPublicKey(publicKey), 'KEY_NO_ENCRYPTION');
  });

  it('KEY_NO_ENCRYPTION when the only encryption subkey has expired', async () => {
    const { publicKey } = await openpgpKey({ subkeys: [{ keyExpirationTime: 60 }], date: new Date(Date.now() - 3600_000) });
    // Primary key has no expiry here, only the subkey does.
    const key = await openpgp.readKey({ armoredKey: publicKey });
    expect(await key.getExpirationTime()).toBe(Infinity);
    await expectCode(readPublicKey(publicKey), 'KEY_NO_ENCRYPTION');
  });

  it('KEY_TOO_WEAK for RSA 1024', async () => {
    const { publicKey } = await openpgpKey({ type: 'rsa', rsaBits: 1024, config: { minRSABits: 1024 } });
    await expectCode(readPublicKey(publicKey), 'KEY_TOO_WEAK');
  });

  // Curves outside the accepted set (brainpool, secp256k1) and DSA/ElGamal keys are
  // made with gpg itself, in test/interop/gpg-keys.test.ts.

  it('KEY_USERID_MISMATCH when no user ID holds the expected address', async () => {
    const { publicKey } = await openpgpKey({});
    await expectCode(readPublicKey(publicKey, { expectedAddress: 'mallory@example.org' }), 'KEY_USERID_MISMATCH');
    // A look-alike (the address as a substring of another) does not match either.
    await expectCode(readPublicKey(publicKey, { expectedAddress: 'example.org' }), 'KEY_USERID_MISMATCH');
  });

  it('KEY_USERID_MISMATCH ignores a revoked user ID', async () => {
    const g = await openpgp.generateKey({ userIDs: [{ email: 'keep@example.org' }, { email: 'gone@example.org' }], format: 'object' });
    const user = g.privateKey.users.find((u) => u.userID?.email === 'gone@example.org')!;
    const revokedUser = await user.revoke(g.privateKey.keyPacket as openpgp.SecretKeyPacket);
    const key = g.privateKey.toPublic();
    key.users = key.users.map((u) => (u.userID?.email === 'gone@example.org' ? revokedUser : u));
    await expect(checkKey(key, { expectedAddress: 'keep@example.org' })).resolves.toBeTruthy();
    await expectCode(checkKey(key, { expectedAddress: 'gone@example.org' }), 'KEY_USERID_MISMATCH');
  });

  it('KEY_UNPROTECTED when storing a private key without a passphrase', async () => {
    const { privateKey } = await openpgpKey({});
    await expectCode(readPrivateKeyForStorage(privateKey), 'KEY_UNPROTECTED');
  });

  it('KEY_NOT_PRIVATE when a public key is given for storage', async () => {
    const { publicKey } = await openpgpKey({});
    await expectCode(readPrivateKeyForStorage(publicKey), 'KEY_NOT_PRIVATE');
  });

  it('KEY_PASSPHRASE_WRONG when unlocking with the wrong passphrase', async () => {
    const g = await generateKey({ kind: 'subscriber', address: 'a@example.org', passphrase: 'right' });
    await expectCode(unlockPrivateKey(await parsePrivateKey(g.privateKeyArmored), 'wrong'), 'KEY_PASSPHRASE_WRONG');
  });
});
