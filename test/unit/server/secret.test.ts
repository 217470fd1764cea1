import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSecretFile, loadSecret, readSecretFile, secretVerifier, tokenKey, verifySecret } from '../../../server/config/secret.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-secret-'));
const saved = process.env.LETTERLOCK_SECRET;
afterEach(() => {
  if (saved === undefined) delete process.env.LETTERLOCK_SECRET;
  else process.env.LETTERLOCK_SECRET = saved;
});

describe('server secret', () => {
  it('reads a 0600 file and refuses a group- or world-readable one', () => {
    const f = join(dir, 's1');
    writeFileSync(f, 'a-long-enough-server-secret\n', { mode: 0o600 });
    expect(readSecretFile(f)).toBe('a-long-enough-server-secret');
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(f, mode);
      expect(() => readSecretFile(f)).toThrow(/must not be readable by group or others/);
    }
  });
  it('refuses a missing file or a short secret with a clear message', () => {
    expect(() => readSecretFile(join(dir, 'nope'))).toThrow(/does not exist/);
    const f = join(dir, 's2');
    writeFileSync(f, 'short', { mode: 0o600 });
    expect(() => readSecretFile(f)).toThrow(/at least 16 characters/);
  });
  it('prefers LETTERLOCK_SECRET over the file', () => {
    process.env.LETTERLOCK_SECRET = 'from-the-environment-123';
    expect(loadSecret(join(dir, 'nope'))).toBe('from-the-environment-123');
  });
  it('creates a new secret file with mode 0600 and never overwrites one', () => {
    const f = join(dir, 's3');
    createSecretFile(f);
    expect(readSecretFile(f).length).toBeGreaterThanOrEqual(40);
    expect(() => createSecretFile(f)).toThrow();
  });
  it('verifies the secret against a stored verifier; tokens depend on the secret', () => {
    const v = secretVerifier('secret-number-one-xx');
    expect(verifySecret('secret-number-one-xx', v)).toBe(true);
    expect(verifySecret('secret-number-two-xx', v)).toBe(false);
    expect(tokenKey('a-secret-aaaaaaaaaa', 'p')('x')).not.toBe(tokenKey('b-secret-bbbbbbbbbb', 'p')('x'));
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
