import { describe, expect, it, beforeAll } from 'vitest';
import {
  ArchiveMessagesRequest, loginStatement, parseStatement, requestStatement, signStatement, SubscribeRequest, verifyStatement,
} from '../../../shared/index.ts';
import { makeKey, type TestKey } from '../../support/keys.ts';

let alice: TestKey, mallory: TestKey;
beforeAll(async () => {
  [alice, mallory] = await Promise.all([makeKey('alice@example.org'), makeKey('mallory@example.org')]);
});

const login = { server: 'http://127.0.0.1:8025', list: 'l@example.org', address: 'alice@example.org', challengeId: 'c'.repeat(43), expiresAt: '2026-12-01T00:00:00.000Z' };

describe('signed statements', () => {
  it('round-trips a login statement and verifies only the exact text by the right key', async () => {
    const text = loginStatement(login);
    expect(parseStatement(text)).toEqual({ kind: 'login', fields: { server: login.server, list: login.list, address: login.address, challenge: login.challengeId, expires: login.expiresAt } });
    const sig = await signStatement(text, alice.privateKey);
    expect(await verifyStatement(text, sig, alice.publicKey)).toBe(true);
    expect(await verifyStatement(text.replace('alice@', 'bob@'), sig, alice.publicKey)).toBe(false);
    expect(await verifyStatement(text, sig, mallory.publicKey)).toBe(false);
    expect(await verifyStatement(text, await signStatement(text, mallory.privateKey), alice.publicKey)).toBe(false);
    expect(await verifyStatement(text, 'garbage', alice.publicKey)).toBe(false);
  });

  it('a request statement is never taken for a login statement', async () => {
    const text = requestStatement({ server: login.server, list: login.list, address: login.address, action: 'unsubscribe', nonce: 'n1', date: login.expiresAt });
    expect(parseStatement(text).kind).toBe('request');
    expect(() => requestStatement({ server: login.server, list: login.list, address: 'a@x.org\nadmin: yes', action: 'unsubscribe', nonce: 'n', date: 'd' })).toThrow();
  });
});

describe('API schemas', () => {
  it('normalizes addresses and bounds sizes', () => {
    const ok = SubscribeRequest.parse({ address: ' Alice@Example.org ', publicKey: alice.publicArmored });
    expect(ok).toMatchObject({ address: 'alice@example.org', delivery: 'pgp-mime' });
    expect(SubscribeRequest.safeParse({ address: 'not-an-address', publicKey: alice.publicArmored }).success).toBe(false);
    expect(SubscribeRequest.safeParse({ address: 'a@example.org', publicKey: 'x'.repeat(70_000) }).success).toBe(false);
    expect(ArchiveMessagesRequest.safeParse({ ids: Array.from({ length: 51 }, (_, i) => i + 1) }).success).toBe(false);
  });
});
