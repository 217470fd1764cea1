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
  it('SMTP connection limits: defaults, and trusted clients must be IP addresses', () => {
    const c = parseConfig({}, 'test');
    expect(c.smtp).toMatchObject({ maxClients: 100, perIpConnections: 10, dataDeadlineMs: 30_000, floodConnectionsPerMinute: 60, trustedClients: [] });
    expect(parseConfig({ smtp: { trustedClients: ['127.0.0.1', '::1'] } }, 'f.json').smtp.trustedClients).toEqual(['127.0.0.1', '::1']);
    expect(() => parseConfig({ smtp: { trustedClients: ['mta.example.org'] } }, 'f.json')).toThrow(/smtp\.trustedClients\.0/);
    expect(() => parseConfig({ smtp: { dataDeadlineMs: 10 } }, 'f.json')).toThrow(/smtp\.dataDeadlineMs/);
  });
  it('reports a broken config file clearly', () => {
    writeFileSync(join(dir, 'letterlock.json'), '{ not json');
    expect(() => loadConfig(dir)).toThrow(/not valid JSON/);
  });
});
