// Key generation for the three kinds of key Letterlock makes. All are v4
// Curve25519 keys (Ed25519 primary for signing, Cv25519 subkey for encryption):
// the newest form GnuPG 2.2 reads, so every copy stays readable by plain gpg.

import * as openpgp from 'openpgp';
import { fail } from '../errors.ts';
import { checkKey, type KeyFacts } from './policy.ts';

export type KeyKind = 'list' | 'archive' | 'subscriber';

export interface GenerateKeyOptions {
  kind: KeyKind;
  /** The list address (list, archive) or the subscriber's own address. */
  address: string;
  /** Display name; defaults by kind. */
  name?: string;
  passphrase: string;
  /**
   * 'iterated' (default): S2K that GnuPG 2.2 imports. 'argon2': memory-hard S2K
   * with AEAD, for keys that only Letterlock itself unlocks (the extension's store).
   */
  protection?: 'iterated' | 'argon2';
  /** Seconds until expiry; 0 or absent means no expiry. */
  expiresInSeconds?: number;
  date?: Date;
}

export interface GeneratedKey {
  publicKeyArmored: string;
  privateKeyArmored: string; // always passphrase-protected
  revocationCertificate: string;
  facts: KeyFacts;
}

function userIdFor(options: GenerateKeyOptions): openpgp.UserID {
  const address = options.address.trim().toLowerCase();
  switch (options.kind) {
    case 'list':
      return { name: options.name ?? `${address} (Letterlock list)`, email: address };
    case 'archive':
      // No email: the archive key is never a mail recipient, and a second key
      // for the list address would confuse key lookups (WKD, keyservers).
      return { name: options.name ?? `Archive of ${address} (Letterlock)` };
    case 'subscriber':
      return options.name ? { name: options.name, email: address } : { email: address };
  }
}

export async function generateKey(options: GenerateKeyOptions): Promise<GeneratedKey> {
  if (options.passphrase.length === 0) fail('KEY_UNPROTECTED', 'an empty passphrase was given');
  // Made with aeadProtect off, so the self-signature advertises no SEIPDv2 (RFC 9580 AEAD)
  // and RFC 9580 senders (openpgp.js 6, Sequoia) encrypt to it in the form GnuPG 2.2 and
  // Thunderbird read; then protected (Argon2 + AEAD when asked, for the extension's store).
  const generated = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [userIdFor(options)],
    keyExpirationTime: options.expiresInSeconds ?? 0,
    ...(options.date ? { date: options.date } : {}),
    format: 'object',
    config: { aeadProtect: false },
  });
  const facts = await checkKey(generated.publicKey, options.date ? { date: options.date } : {});
  const privateKey = await protectKey(generated.privateKey, options.passphrase, options.protection ?? 'iterated');
  return {
    publicKeyArmored: generated.publicKey.armor(),
    privateKeyArmored: privateKey.armor(),
    revocationCertificate: generated.revocationCertificate,
    facts,
  };
}

/**
 * A decrypted private key protected with a passphrase: Argon2 with AEAD (RFC 9580, for
 * the extension's store), or iterated+salted S2K with CFB (RFC 4880, what GnuPG 2.2 reads).
 * Only the secret key packets change; what the key advertises to senders stays as it was.
 */
export async function protectKey(privateKey: openpgp.PrivateKey, passphrase: string, protection: 'argon2' | 'iterated'): Promise<openpgp.PrivateKey> {
  return openpgp.encryptKey({
    privateKey, passphrase,
    config: protection === 'argon2'
      ? { aeadProtect: true, s2kType: openpgp.enums.s2k.argon2 }
      // The S2K hash is SHA-256 in openpgp.js; the cipher is named, not left to the defaults.
      : { aeadProtect: false, s2kType: openpgp.enums.s2k.iterated, preferredSymmetricAlgorithm: openpgp.enums.symmetric.aes256 },
  });
}
