// Several keys per profile in the store: a version 1 database (one key under
// "own") opens as version 2 with that key under its fingerprint; the default key
// comes first; join links read into server and address.

import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, KeyStore, type StoredKey } from '../../extension/background/store.ts';
import { joinFromHash, parseJoinLink } from '../../extension/pages/options/join.ts';

const key = (fp: string, created: string): StoredKey => ({
  fingerprint: fp, keyId: fp.slice(-16), address: `${fp.slice(0, 4).toLowerCase()}@example.org`, name: '', created, privateArmored: 'protected', publicArmored: 'public',
});

describe('KeyStore with several keys', () => {
  it('moves the one key of a version 1 database under its fingerprint', async () => {
    const v1 = await openDB('migrate-test', 1, {
      upgrade(db) {
        for (const s of ['keys', 'lists', 'memberKeys', 'settings']) db.createObjectStore(s);
      },
    });
    await v1.put('keys', key('A'.repeat(40), '2030-01-01T00:00:00.000Z'), 'own');
    v1.close();
    const store = await KeyStore.open('migrate-test');
    expect((await store.allKeys()).map((k) => k.fingerprint)).toEqual(['A'.repeat(40)]);
    expect((await store.getKey())?.fingerprint).toBe('A'.repeat(40));
    expect(await store.getKey('own')).toBeNull();
    store.close();
  });

  it('lists the default key first, then the oldest; removes one by fingerprint', async () => {
    const store = await KeyStore.open('several-test');
    await store.putKey(key('B'.repeat(40), '2030-01-02T00:00:00.000Z'));
    await store.putKey(key('C'.repeat(40), '2030-01-01T00:00:00.000Z'));
    expect((await store.allKeys()).map((k) => k.fingerprint[0])).toEqual(['C', 'B']);
    await store.putSettings({ ...DEFAULT_SETTINGS, defaultKey: 'B'.repeat(40) });
    expect((await store.allKeys()).map((k) => k.fingerprint[0])).toEqual(['B', 'C']);
    await store.removeKey('B'.repeat(40));
    expect((await store.getKey())?.fingerprint).toBe('C'.repeat(40));
    store.close();
  });
});

describe('join links', () => {
  it('reads the registry URL of a list (versioned or not) into server and address, and nothing else', () => {
    expect(parseJoinLink('https://lists.example.org/v1/lists/club%40lists.example.org')).toEqual({ server: 'https://lists.example.org', address: 'club@lists.example.org' });
    expect(parseJoinLink('https://example.org/letterlock/lists/Club@Lists.Example.org/')).toEqual({ server: 'https://example.org/letterlock', address: 'club@lists.example.org' });
    expect(parseJoinLink('http://127.0.0.1:8080/v1/lists/a@b.test')).toEqual({ server: 'http://127.0.0.1:8080', address: 'a@b.test' });
    for (const bad of ['club@lists.example.org', 'ftp://x/v1/lists/a@b.test', 'https://x/v1/lists/notanaddress', 'https://x/v1/lists/%E0%A4%A', 'https://x/other/a@b.test', `https://x/v1/lists/${'a'.repeat(3000)}@b.test`]) {
      expect(parseJoinLink(bad)).toBeNull();
    }
    expect(joinFromHash(`#join=${encodeURIComponent('https://l.test/v1/lists/a%40b.test')}`)).toEqual({ server: 'https://l.test', address: 'a@b.test' });
    expect(joinFromHash('#first-run')).toBeNull();
  });
});
