// The key store on fake-indexeddb: what is kept, defaults, and that it persists.

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, KeyStore, type StoredList } from '../../extension/background/store.ts';

describe('KeyStore', () => {
  it('keeps one key, lists, member keys and settings across reopening', async () => {
    const a = await KeyStore.open('store-test');
    expect(await a.getKey()).toBeNull();
    expect(await a.getSettings()).toEqual(DEFAULT_SETTINGS);
    await a.putKey({ fingerprint: 'F'.repeat(40), keyId: 'A'.repeat(16), address: 'bob@example.org', name: 'Bob', created: '2030-01-01T00:00:00.000Z', privateArmored: 'protected', publicArmored: 'public' });
    const list: StoredList = { address: 'club@lists.test', name: 'Club', server: 'https://l', apiBase: 'https://l', fingerprint: 'E'.repeat(40), listKeyArmored: 'k', state: 'pinned', maxBytes: 1000, changed: null };
    await a.putList(list);
    await a.putMemberKey({ keyId: 'B'.repeat(16), fingerprint: 'C'.repeat(40), address: 'alice@example.org', list: list.address, armored: 'pk' });
    await a.putSettings({ ...DEFAULT_SETTINGS, timeoutMinutes: 30, sites: ['https://mail.example.org'] });
    a.close();

    const b = await KeyStore.open('store-test');
    expect((await b.getKey())?.address).toBe('bob@example.org');
    expect(await b.allLists()).toEqual([list]);
    expect((await b.getMemberKey('B'.repeat(16)))?.address).toBe('alice@example.org');
    expect(await b.getSettings()).toMatchObject({ timeoutMinutes: 30, sites: ['https://mail.example.org'], indicator: DEFAULT_SETTINGS.indicator });
    await b.removeKey();
    await b.removeList(list.address);
    expect(await b.getKey()).toBeNull();
    expect(await b.allLists()).toEqual([]);
    b.close();
  });
});
