// The "mailman" section of letterlock.json: credentials inline or in a file only
// its owner may read, and the section's own checks.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../server/config/config.ts';
import { mailmanEndpoint } from '../../../server/mailman/endpoint.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-mm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mailman configuration', () => {
  it('takes inline credentials and fills the sync defaults', () => {
    const c = parseConfig({ mailman: { url: 'http://127.0.0.1:8001', user: 'restadmin', pass: 'secret' } }, 'test');
    expect(c.mailman).toMatchObject({ syncIntervalSeconds: 60, maxRosterAgeSeconds: 600, syncTimeoutMs: 10_000 });
    expect(mailmanEndpoint(c.mailman!, dir)).toEqual({ url: 'http://127.0.0.1:8001', user: 'restadmin', pass: 'secret' });
  });

  it('refuses a section without credentials, an unknown key, or a non-HTTP URL', () => {
    expect(() => parseConfig({ mailman: { url: 'http://127.0.0.1:8001' } }, 'test')).toThrow(/user and pass, or credentialsFile/);
    expect(() => parseConfig({ mailman: { url: 'http://127.0.0.1:8001', user: 'u', pass: 'p', password: 'x' } }, 'test')).toThrow(ConfigError);
    expect(() => parseConfig({ mailman: { url: 'ftp://127.0.0.1', user: 'u', pass: 'p' } }, 'test')).toThrow(/http/);
  });

  it('reads a credentials file relative to the data folder, only with mode 0600', () => {
    const file = join(dir, 'mailman.json');
    writeFileSync(file, JSON.stringify({ user: 'restadmin', pass: 'from-file' }), { mode: 0o600 });
    const c = parseConfig({ mailman: { url: 'http://127.0.0.1:8001', credentialsFile: 'mailman.json' } }, 'test');
    expect(mailmanEndpoint(c.mailman!, dir)).toMatchObject({ user: 'restadmin', pass: 'from-file' });
    chmodSync(file, 0o640);
    expect(() => mailmanEndpoint(c.mailman!, dir)).toThrow(/mode 0640.*chmod 600/);
    chmodSync(file, 0o600);
    writeFileSync(file, 'restadmin:secret');
    expect(() => mailmanEndpoint(c.mailman!, dir)).toThrow(/not JSON/);
    const missing = parseConfig({ mailman: { url: 'http://127.0.0.1:8001', credentialsFile: join(dir, 'nope.json') } }, 'test');
    expect(() => mailmanEndpoint(missing.mailman!, dir)).toThrow(/does not exist/);
  });
});
