import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../server/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config', () => {
  it('defaults bind to loopback with a 25 MB limit and no relay (Maildir)', () => {
    const c = parseConfig({}, 'test');
    expect(c.smtp).toMatchObject({ host: '127.0.0.1', port: 2525, maxMessageBytes: 25 * 1024 * 1024 });
    expect(c.http.host).toBe('127.0.0.1');
    expect(c.relay).toBeUndefined();
  });
  it('refuses bad values and unknown keys with the path of the problem', () => {
    expect(() => parseConfig({ smtp: { port: 70000 } }, 'f.json')).toThrow(/f\.json: smtp\.port/);
    expect(() => parseConfig({ relay: 'http://x' }, 'f.json')).toThrow(/relay: must be smtp:\/\/host:port/);
    expect(() => parseConfig({ smtpp: {} }, 'f.json')).toThrow(/f\.json/);
  });
  it('reports a broken config file clearly', () => {
    writeFileSync(join(dir, 'letterlock.json'), '{ not json');
    expect(() => loadConfig(dir)).toThrow(/not valid JSON/);
  });
});
