// The database-backed limiter: a sliding window per (bucket, key), every rule
// checked and counted together, Retry-After from the oldest counted event.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../server/config/config.ts';
import { Limiter, RateLimited } from '../../../server/registry/limits.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { purgeStale } from '../../../server/store/registry.ts';
import type { SqlParam } from '../../../server/store/sql.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup() {
  const sql = await openTestSql(join(dir, `${Math.random()}.db`));
  let t = 1_000_000_000;
  const clock = { advance: (ms: number) => { t += ms; }, now: () => t };
  return { sql, clock, limiter: new Limiter(sql, 'secret', clock.now) };
}

describe('Limiter', () => {
  it('allows max events in any window, then answers with the seconds until the oldest leaves', async () => {
    const { clock, limiter } = await setup();
    const rule = [{ bucket: 'b', key: 'k', rate: { max: 3, windowSeconds: 60 } }];
    expect([await limiter.tryTake(rule), await limiter.tryTake(rule)]).toEqual([0, 0]);
    clock.advance(20_000);
    expect(await limiter.tryTake(rule)).toBe(0);
    expect(await limiter.tryTake(rule)).toBe(40); // the first two leave at 60 s
    clock.advance(40_001);
    expect(await limiter.tryTake(rule)).toBe(0);
    expect(await limiter.tryTake(rule)).toBe(0);
    expect(await limiter.tryTake(rule)).toBe(20); // a sliding window: no burst at a boundary
  });

  it('counts nothing when any rule fails, so a refused request spends no quota', async () => {
    const { limiter } = await setup();
    const tight = { bucket: 'ip', key: '1.2.3.4', rate: { max: 1, windowSeconds: 600 } };
    const loose = (k: string) => ({ bucket: 'address', key: k, rate: { max: 2, windowSeconds: 60 } });
    expect(await limiter.tryTake([loose('a'), tight])).toBe(0);
    expect(await limiter.tryTake([loose('a'), tight])).toBe(600);
    expect(await limiter.tryTake([loose('a'), tight])).toBe(600);
    // 'a' was counted once only: one more is allowed under another IP.
    expect(await limiter.tryTake([loose('a'), { ...tight, key: '5.6.7.8' }])).toBe(0);
    expect(await limiter.tryTake([loose('a')])).toBe(60);
    // Keys are separate: another address is free.
    expect(await limiter.tryTake([loose('b')])).toBe(0);
  });

  it('two requests at once cannot both pass a limit with room for one (check and count in one transaction)', async () => {
    const { sql, limiter } = await setup();
    const rule = [{ bucket: 'b', key: 'race', rate: { max: 1, windowSeconds: 60 } }];
    const waits = await Promise.all(Array.from({ length: 8 }, () => limiter.tryTake(rule)));
    expect(waits.filter((w) => w === 0)).toHaveLength(1);
    expect(waits.filter((w) => w > 0)).toHaveLength(7);
    expect(((await sql.get("SELECT count(*) AS n FROM rate_events WHERE bucket = 'b'")) as { n: number }).n).toBe(1);
  });

  it('take throws a 429 RateLimited carrying Retry-After', async () => {
    const { limiter } = await setup();
    const rule = [{ bucket: 'b', key: 'k', rate: { max: 1, windowSeconds: 5 } }];
    await limiter.take(rule);
    try {
      await limiter.take(rule);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RateLimited);
      expect(e).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfter: 5 });
    }
  });

  it('rows are purged once past their window, and hold hashed keys only', async () => {
    const { sql, clock, limiter } = await setup();
    await limiter.take([{ bucket: 'ip:x', key: '192.0.2.7', rate: { max: 5, windowSeconds: 10 } }]);
    const rows = (await sql.all('SELECT key FROM rate_events')) as Array<{ key: string }>;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key).not.toContain('192.0.2');
    expect((await purgeStale(sql, clock.now())).deleted).toBe(0);
    clock.advance(10_001);
    expect(await purgeStale(sql, clock.now())).toEqual({ deleted: 1, more: false });
  });

  it('purges in chunks and says when more remain', async () => {
    const { sql, clock } = await setup();
    const ins = { run: (...a: SqlParam[]) => sql.run('INSERT INTO rate_events (bucket, key, at, until) VALUES (?,?,?,?)', a) };
    for (let i = 0; i < 25; i++) await ins.run('b', `k${i}`, 0, 1);
    expect(await purgeStale(sql, clock.now(), 10)).toEqual({ deleted: 10, more: true });
    expect(await purgeStale(sql, clock.now(), 10)).toEqual({ deleted: 10, more: true });
    expect(await purgeStale(sql, clock.now(), 10)).toEqual({ deleted: 5, more: false });
  });
});

describe('config http.limits and http.trustProxy', () => {
  it('has defaults, takes partial overrides, and refuses nonsense with the path', async () => {
    const c = parseConfig({ http: { limits: { challengePerIp: { max: 5 } } } }, 'f.json');
    expect(c.http.trustProxy).toBe(false);
    expect(c.http.limits.perIp).toEqual({ max: 300, windowSeconds: 60 });
    expect(c.http.limits.challengePerIp).toEqual({ max: 5, windowSeconds: 600 });
    expect(c.http.limits.maxPendingChallenges).toBe(10_000);
    expect(() => parseConfig({ http: { limits: { perIp: { max: 0 } } } }, 'f.json')).toThrow(/f\.json: http\.limits\.perIp\.max/);
    expect(() => parseConfig({ http: { limits: { perIpp: {} } } }, 'f.json')).toThrow(/f\.json: http\.limits/);
    expect(parseConfig({ http: { trustProxy: ['127.0.0.1', '10.0.0.0/8', 'fd00::/8', 'loopback'] } }, 'f').http.trustProxy).toHaveLength(4);
    expect(() => parseConfig({ http: { trustProxy: true } }, 'f.json')).toThrow(/http\.trustProxy/);
    expect(() => parseConfig({ http: { trustProxy: ['10.0.0.0/33'] } }, 'f.json')).toThrow(/http\.trustProxy/);
    expect(() => parseConfig({ http: { trustProxy: ['proxy.example'] } }, 'f.json')).toThrow(/http\.trustProxy/);
  });
});
