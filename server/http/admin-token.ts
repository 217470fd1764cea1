// The operator API's bearer token: 32 random bytes in <data folder>/admin-token,
// mode 0600, made on first start. It is compared in constant time and never logged.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin-token';

export function ensureAdminToken(dataDir: string): { token: string; path: string } {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path} must not be readable by group or others (chmod 600 ${path})`);
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < 32) throw new Error(`${path} holds a token that is too short`);
  return { token, path };
}
