// What the extension keeps on disk, in the extension origin's IndexedDB: the
// subscriber's keys (only ever passphrase-protected; several per profile), the lists with their pinned
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
  /** ISO date the key expires; null or absent (keys stored before renewal existed): never. */
  expires?: string | null;
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
  /** The user's key used with this list; absent or null: the default key. */
  keyFingerprint?: string | null;
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
  /** Fingerprint of the key new lists use; null: the oldest key. */
  defaultKey?: string | null;
  /** Lists this profile signed in to as a moderator (options page links); absent: none. */
  moderates?: string[];
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

/** Where version 1 kept its one key; version 2 keys every key by its fingerprint. */
const OWN_KEY = 'own';
const SETTINGS = 'settings';
/** Keys kept per profile (each is a few KB; the store stays small). */
export const MAX_KEYS = 20;

export class KeyStore {
  private constructor(private readonly db: IDBPDatabase<Schema>) {}

  static async open(name = 'letterlock'): Promise<KeyStore> {
    const db = await openDB<Schema>(name, 2, {
      async upgrade(db, oldVersion, _newVersion, tx) {
        if (oldVersion < 1) {
          db.createObjectStore('keys');
          db.createObjectStore('lists');
          db.createObjectStore('memberKeys');
          db.createObjectStore('settings');
        }
        if (oldVersion === 1) {
          // The one key of version 1 moves under its fingerprint, next to any later ones.
          const keys = tx.objectStore('keys');
          const own = await keys.get(OWN_KEY);
          if (own) {
            await keys.put(own, own.fingerprint);
            await keys.delete(OWN_KEY);
          }
        }
      },
    });
    return new KeyStore(db);
  }

  close(): void {
    this.db.close();
  }

  /** Every key, the default first, then oldest first. */
  async allKeys(): Promise<StoredKey[]> {
    const [keys, settings] = await Promise.all([this.db.getAll('keys'), this.getSettings()]);
    const rank = (k: StoredKey) => (k.fingerprint === settings.defaultKey ? 0 : 1);
    return keys.sort((a, b) => rank(a) - rank(b) || a.created.localeCompare(b.created) || a.fingerprint.localeCompare(b.fingerprint));
  }

  /** One key by fingerprint, or (none given) the default key. */
  async getKey(fingerprint?: string): Promise<StoredKey | null> {
    if (fingerprint !== undefined) return (await this.db.get('keys', fingerprint)) ?? null;
    return (await this.allKeys())[0] ?? null;
  }

  /** Stores (or replaces) a subscriber key under its fingerprint; the caller has checked it is protected. */
  async putKey(key: StoredKey): Promise<void> {
    await this.db.put('keys', key, key.fingerprint);
  }

  /** Removes one key (none given: the default key). */
  async removeKey(fingerprint?: string): Promise<void> {
    const fp = fingerprint ?? (await this.getKey())?.fingerprint;
    if (fp) await this.db.delete('keys', fp);
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
