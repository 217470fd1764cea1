// The unlocked session: survives a restarted worker through session storage,
// until its timeout; "lock now" forgets everything; the per-minute limit.

import { beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter, UnlockedSession } from '../../extension/background/session.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { MemoryArea } from './fakes.ts';

let key: TestKey;
beforeAll(async () => {
  key = await makeKey('bob@example.org');
});

describe('UnlockedSession', () => {
  it('restores the unlocked key in a new worker until the timeout, then locks and clears storage', async () => {
    const area = new MemoryArea();
    const clock = { now: 1_000_000 };
    const first = new UnlockedSession(area, () => clock.now);
    const lockAt = await first.unlock(key.privateKey, 15);
    expect(lockAt).toBe(1_000_000 + 15 * 60_000);

    clock.now += 10 * 60_000;
    const second = new UnlockedSession(area, () => clock.now); // the worker was stopped
    await second.restore();
    expect(second.unlocked).toBe(true);
    expect(second.lockAt).toBe(lockAt);
    expect(second.requireKey().getFingerprint().toUpperCase()).toBe(key.fingerprint);

    clock.now = lockAt;
    expect(second.unlocked).toBe(false);
    expect(() => second.requireKey()).toThrow(/locked/i);
    await Promise.resolve();
    expect(area.data.size).toBe(0);
    const third = new UnlockedSession(area, () => clock.now);
    await third.restore();
    expect(third.unlocked).toBe(false);
  });

  it('lock now forgets the key and the archive tokens', async () => {
    const area = new MemoryArea();
    const s = new UnlockedSession(area);
    await s.unlock(key.privateKey, 5);
    await s.setToken('club@lists.test', { token: 't', expiresAt: Date.now() + 60_000, address: 'bob@example.org' });
    await s.lock();
    expect(s.unlocked).toBe(false);
    expect(s.getToken('club@lists.test')).toBeNull();
    expect(area.data.size).toBe(0);
  });

  it('refuses to hold a key that is still locked', async () => {
    const locked = (await import('../../shared/index.ts')).parsePrivateKey(key.privateArmored);
    await expect(new UnlockedSession(new MemoryArea()).unlock(await locked, 5)).rejects.toThrow();
  });
});

describe('RateLimiter', () => {
  it('allows the limit in any sliding minute', () => {
    const clock = { now: 0 };
    const r = new RateLimiter(3, () => clock.now);
    r.take(); r.take(); r.take();
    expect(() => r.take()).toThrow(/Too many/);
    clock.now = 60_001;
    expect(() => r.take()).not.toThrow();
  });
});
