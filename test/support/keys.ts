// Key fixtures for tests: real OpenPGP keys made with the protocol core, unlocked
// in memory. Generation is cheap for Curve25519 (a few ms), so each test file
// makes its own.

import type { PrivateKey, PublicKey } from 'openpgp';
import { generateKey, parsePrivateKey, readPublicKey, unlockPrivateKey, type KeyKind } from '../../shared/index.ts';

export interface TestKey {
  address: string;
  passphrase: string;
  publicArmored: string;
  privateArmored: string;
  revocationCertificate: string;
  publicKey: PublicKey;
  privateKey: PrivateKey; // unlocked
  fingerprint: string;
}

export async function makeKey(address: string, kind: KeyKind = 'subscriber', name?: string, expiresInSeconds?: number): Promise<TestKey> {
  const passphrase = `pass-${address}`;
  const g = await generateKey({ kind, address, passphrase, ...(name ? { name } : {}), ...(expiresInSeconds ? { expiresInSeconds } : {}) });
  const privateKey = await unlockPrivateKey(await parsePrivateKey(g.privateKeyArmored), passphrase);
  const { key: publicKey } = await readPublicKey(g.publicKeyArmored);
  return {
    address,
    passphrase,
    publicArmored: g.publicKeyArmored,
    privateArmored: g.privateKeyArmored,
    revocationCertificate: g.revocationCertificate,
    publicKey,
    privateKey,
    fingerprint: g.facts.fingerprint,
  };
}

export const LIST_ADDRESS = 'crypto@lists.example.org';
