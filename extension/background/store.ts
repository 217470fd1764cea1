// What the extension keeps on disk, in the extension origin's IndexedDB: the
// subscriber's key (only ever passphrase-protected), the lists with their pinned
// keys, member keys fetched from lists, and the settings. No plaintext of any
// post and no unlocked key is ever written here.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { Indicator, ListState } from '../messages.ts';

export interface StoredKey {
  fingerprint: string;
  keyId: string;
  address: string;
  name: string;
  created: string;
  /** Passphrase-protected armored private key (checked by readPrivateKeyForStorage). */
  privateArmored: string;
  publicArmored: string;
}

export interface StoredList {
  address: string;
  name: string;
  /** The server URL the user gave; every request for this list goes there. */
  server: string;
  /** The API base the server names itself by (statements carry it). */
  apiBase: string;
  fingerprint: string;
  listKeyArmored: string;
  state: ListState;
  maxBytes: number;
  /** A different list key the server offered after pinning: shown, never used. */
  changed: { fingerprint: string; armored: string } | null;
  /** Mail from this list is decrypted when shown, without a click (off unless the user chose it). */
  autoDecrypt?: boolean;
}

export interface StoredMemberKey {
  keyId: string; // of the signing (sub)key it was fetched for
  fingerprint: string;
  address: string;
  list: string;
  armored: string;
}

export interface Settings {
  timeoutMinutes: number;
  opsPerMinute: number;
  indicator: Indicator;
  /** Origins ("https://mail.example.org") the content script may run on. */
  sites: string[];
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  timeoutMinutes: 15,
  opsPerMinute: 120,
  indicator: { word: '', colour: '#1f6f43' },
  sites: [],
});

interface Schema extends DBSchema {
  keys: { key: string; value: StoredKey };
  lists: { key: string; value: StoredList };
  memberKeys: { key: string; value: StoredMemberKey };
  settings: { key: string; value: Settings };
}

const OWN_KEY = 'own';
const SETTINGS = 'settings';

export class KeyStore {
  private constructor(private readonly db: IDBPDatabase<Schema>) {}

  static async open(name = 'letterlock'): Promise<KeyStore> {
    const db = await openDB<Schema>(name, 1, {
      upgrade(db) {
        db.createObjectStore('keys');
        db.createObjectStore('lists');
        db.createObjectStore('memberKeys');
        db.createObjectStore('settings');
      },
    });
    return new KeyStore(db);
  }

  close(): void {
    this.db.close();
  }

  async getKey(): Promise<StoredKey | null> {
    return (await this.db.get('keys', OWN_KEY)) ?? null;
  }

  /** Stores the one subscriber key; the caller has checked it is protected. */
  async putKey(key: StoredKey): Promise<void> {
    await this.db.put('keys', key, OWN_KEY);
  }

  async removeKey(): Promise<void> {
    await this.db.delete('keys', OWN_KEY);
  }

  async getList(address: string): Promise<StoredList | null> {
    return (await this.db.get('lists', address)) ?? null;
  }

  async putList(list: StoredList): Promise<void> {
    await this.db.put('lists', list, list.address);
  }

  async removeList(address: string): Promise<void> {
    await this.db.delete('lists', address);
  }

  async allLists(): Promise<StoredList[]> {
    return this.db.getAll('lists');
  }

  async getMemberKey(keyId: string): Promise<StoredMemberKey | null> {
    return (await this.db.get('memberKeys', keyId)) ?? null;
  }

  async putMemberKey(k: StoredMemberKey): Promise<void> {
    await this.db.put('memberKeys', k, k.keyId);
  }

  async allMemberKeys(): Promise<StoredMemberKey[]> {
    return this.db.getAll('memberKeys');
  }

  async getSettings(): Promise<Settings> {
    const s = await this.db.get('settings', SETTINGS);
    return { ...DEFAULT_SETTINGS, ...s, indicator: { ...DEFAULT_SETTINGS.indicator, ...s?.indicator } };
  }

  async putSettings(s: Settings): Promise<void> {
    await this.db.put('settings', s, SETTINGS);
  }
}
