// Key policy: which OpenPGP keys Letterlock accepts, and why it refuses the rest.
// Every list member, list and archive key passes through here before use, so the
// rest of the code can assume a key is v4 or v6, current, unrevoked and can encrypt.

import * as openpgp from 'openpgp';
import type { AlgorithmInfo, Key, PrivateKey, PublicKey, Subkey } from 'openpgp';
import { fail, isLetterlockError } from '../errors.ts';

export interface KeyCheckOptions {
  /** When given, some valid user ID of the key must hold exactly this address. */
  expectedAddress?: string;
  /** The moment the key must be valid at; defaults to now. */
  date?: Date;
}

export interface KeyFacts {
  fingerprint: string; // upper-case hex of the primary key
  keyId: string;
  addresses: string[]; // email addresses of the key's valid user IDs, lower-cased
  algorithm: string; // e.g. "curve25519", "nistP256", "rsa3072"
  created: Date;
  expires: Date | null; // null: never
}

const ACCEPTED_CURVES = new Set(['curve25519Legacy', 'ed25519Legacy', 'nistP256', 'nistP384', 'nistP521']);
const RSA_ALGORITHMS = new Set(['rsaEncryptSign', 'rsaEncrypt', 'rsaSign']);
// RFC 9580's native X25519/Ed25519 algorithms: the algorithms of v6 keys. Inside a v4
// key GnuPG 2.2 cannot read them, so there they are refused.
const RFC9580_ALGORITHMS = new Set(['x25519', 'x448', 'ed25519', 'ed448']);
// RFC 9580 §5.5.5.6-7: a v6 key must not use the legacy Curve25519 encodings.
const LEGACY_CURVES = new Set(['curve25519Legacy', 'ed25519Legacy']);

/** Parses one armored public key (a private key is reduced to its public part). */
export async function parsePublicKey(armored: string): Promise<PublicKey> {
  let key: Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (e) {
    fail('KEY_UNREADABLE', undefined, e);
  }
  return key.isPrivate() ? key.toPublic() : (key as PublicKey);
}

/** Parses one armored private key without decrypting it. */
export async function parsePrivateKey(armored: string): Promise<PrivateKey> {
  let key: Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (e) {
    fail('KEY_UNREADABLE', undefined, e);
  }
  if (!key.isPrivate()) fail('KEY_NOT_PRIVATE');
  return key as PrivateKey;
}

function describeAlgorithm(info: AlgorithmInfo): string {
  if (RSA_ALGORITHMS.has(info.algorithm)) return `rsa${info.bits ?? '?'}`;
  if (info.curve === 'curve25519Legacy' || info.curve === 'ed25519Legacy') return 'curve25519';
  return info.curve ?? info.algorithm;
}

function checkAlgorithm(info: AlgorithmInfo, which: string, version: number): void {
  if (RFC9580_ALGORITHMS.has(info.algorithm)) {
    if (version === 6) return;
    fail('KEY_VERSION_UNSUPPORTED', `${which} uses ${info.algorithm} in a v4 key`);
  }
  if (version === 6 && info.curve !== undefined && LEGACY_CURVES.has(info.curve)) {
    fail('KEY_VERSION_UNSUPPORTED', `${which} uses legacy ${info.curve} in a v6 key`);
  }
  if (RSA_ALGORITHMS.has(info.algorithm)) {
    if ((info.bits ?? 0) < 2048) fail('KEY_TOO_WEAK', `${which} is RSA ${info.bits ?? '?'} bits`);
    return;
  }
  if (info.curve !== undefined && ACCEPTED_CURVES.has(info.curve)) return;
  fail('KEY_TOO_WEAK', `${which} uses ${describeAlgorithm(info)}`);
}

async function validAddresses(key: Key, date: Date): Promise<string[]> {
  const out: string[] = [];
  for (const user of key.users) {
    const email = user.userID?.email;
    if (!email) continue;
    try {
      await user.verify(date);
      out.push(email.toLowerCase());
    } catch {
      // A user ID without a valid self-signature (or revoked) does not count.
    }
  }
  return out;
}

/**
 * Applies the key policy and returns what the rest of the system needs to know.
 * Refusals, in the order they are checked: KEY_VERSION_UNSUPPORTED, KEY_TOO_WEAK
 * (primary), KEY_REVOKED, KEY_EXPIRED, KEY_NO_ENCRYPTION, KEY_TOO_WEAK (encryption
 * subkey), KEY_USERID_MISMATCH.
 */
export async function checkKey(key: Key, options: KeyCheckOptions = {}): Promise<KeyFacts> {
  const date = options.date ?? new Date();
  // v4 (RFC 4880) and v6 (RFC 9580). v5 is LibrePGP's, which openpgp.js 6 no longer reads.
  const version = key.keyPacket.version;
  if (version !== 4 && version !== 6) fail('KEY_VERSION_UNSUPPORTED', `v${version} key`);
  // The primary key's algorithm first: it needs no signature check, and a weak
  // algorithm may be one openpgp.js cannot even verify self-signatures for.
  checkAlgorithm(key.getAlgorithmInfo(), 'primary key', version);

  if (await key.isRevoked(undefined, undefined, date)) fail('KEY_REVOKED');

  let expires: Date | null = null;
  try {
    const exp = await key.getExpirationTime();
    if (exp instanceof Date) expires = exp;
    else if (exp === null) fail('KEY_UNREADABLE', 'no valid self-signature');
  } catch (e) {
    if (isLetterlockError(e)) throw e;
    // openpgp throws when no user ID has a valid self-signature at all.
    fail('KEY_UNREADABLE', 'no valid self-signed user ID', e);
  }
  if (expires !== null && expires.getTime() <= date.getTime()) fail('KEY_EXPIRED');
  if (key.keyPacket.created.getTime() > date.getTime() + 5 * 60_000) fail('KEY_EXPIRED', 'created in the future');

  // Weak subkeys are refused only when they are the ones that would be used;
  // first find the encryption subkey with a relaxed RSA floor so a weak one is
  // reported as weak rather than as missing.
  let encryptionKey: Key | Subkey;
  try {
    encryptionKey = await key.getEncryptionKey(undefined, date, undefined, { ...openpgp.config, minRSABits: 512 });
  } catch (e) {
    fail('KEY_NO_ENCRYPTION', undefined, e);
  }
  checkAlgorithm(encryptionKey.getAlgorithmInfo(), 'encryption key', version);

  const addresses = await validAddresses(key, date);
  if (options.expectedAddress !== undefined) {
    const wanted = options.expectedAddress.trim().toLowerCase();
    if (!addresses.includes(wanted)) fail('KEY_USERID_MISMATCH', `expected ${wanted}`);
  }

  return {
    fingerprint: key.getFingerprint().toUpperCase(),
    keyId: key.getKeyID().toHex().toUpperCase(),
    addresses,
    algorithm: describeAlgorithm(key.getAlgorithmInfo()),
    created: key.keyPacket.created,
    expires,
  };
}

/** Parses and checks a member's (or list's) public key in one step. */
export async function readPublicKey(armored: string, options: KeyCheckOptions = {}): Promise<{ key: PublicKey; facts: KeyFacts }> {
  const key = await parsePublicKey(armored);
  const facts = await checkKey(key, options);
  return { key, facts };
}

/**
 * Reads a private key that is about to be stored: it must pass the key policy and
 * every secret part must be passphrase-protected (KEY_UNPROTECTED otherwise).
 */
export async function readPrivateKeyForStorage(armored: string, options: KeyCheckOptions = {}): Promise<{ key: PrivateKey; facts: KeyFacts }> {
  const key = await parsePrivateKey(armored);
  const secretPackets = [key.keyPacket, ...key.subkeys.map((s) => s.keyPacket)];
  for (const packet of secretPackets) {
    if ('isDummy' in packet && (packet as { isDummy(): boolean }).isDummy()) continue; // gnu-dummy stubs hold no secret
    if ('isDecrypted' in packet && (packet as { isDecrypted(): boolean | null }).isDecrypted()) fail('KEY_UNPROTECTED');
  }
  const facts = await checkKey(key, options);
  return { key, facts };
}

/** Unlocks a protected private key in memory. */
export async function unlockPrivateKey(key: PrivateKey, passphrase: string): Promise<PrivateKey> {
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (e) {
    fail('KEY_PASSPHRASE_WRONG', undefined, e);
  }
}
