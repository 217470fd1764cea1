// The server secret: the passphrase that protects every list and archive private
// key at rest. It comes from LETTERLOCK_SECRET or from a file that only its owner
// can read; a group- or world-readable file is refused.

import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config.ts';

export const SECRET_ENV = 'LETTERLOCK_SECRET';
export const MIN_SECRET_LENGTH = 16;

export function defaultSecretFile(dataDir: string): string {
  return join(dataDir, 'secret');
}

function checked(secret: string, where: string): string {
  const s = secret.trim();
  if (s.length < MIN_SECRET_LENGTH) throw new ConfigError(`${where}: the server secret must be at least ${MIN_SECRET_LENGTH} characters`);
  return s;
}

/** Reads the secret file, refusing it unless only its owner may read it (mode 0600 or stricter). */
export function readSecretFile(path: string): string {
  if (!existsSync(path)) throw new ConfigError(`secret file ${path} does not exist (run init, or set ${SECRET_ENV})`);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`secret file ${path} has mode ${mode.toString(8).padStart(4, '0')}: it must not be readable by group or others (chmod 600 ${path})`);
  }
  return checked(readFileSync(path, 'utf8'), path);
}

/** The environment variable wins over the file. */
export function loadSecret(secretFile: string): string {
  const env = process.env[SECRET_ENV];
  if (env !== undefined && env !== '') return checked(env, SECRET_ENV);
  return readSecretFile(secretFile);
}

export function createSecretFile(path: string): string {
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/** A verifier stored in the database so a wrong secret is reported at once, not as a key error later. */
export function secretVerifier(secret: string, salt = randomBytes(16)): string {
  return `${salt.toString('hex')}:${scryptSync(secret, salt, 32).toString('hex')}`;
}

export function verifySecret(secret: string, verifier: string): boolean {
  const [salt, hash] = verifier.split(':');
  if (!salt || !hash) return false;
  const want = Buffer.from(hash, 'hex');
  const got = scryptSync(secret, Buffer.from(salt, 'hex'), 32);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Keyed tokens (VERP, one-click unsubscribe) derived from the secret, never the secret itself. */
export function tokenKey(secret: string, purpose: string): (data: string) => string {
  const key = createHmac('sha256', secret).update(`letterlock:${purpose}`).digest();
  return (data) => createHmac('sha256', key).update(data).digest('hex').slice(0, 16);
}
