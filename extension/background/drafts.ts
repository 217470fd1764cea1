// Drafts of the composer, kept only encrypted: each is an OpenPGP message to the
// user's own key (the one the list knows them by), in an IndexedDB database of
// its own ("letterlock-drafts", apart from the key store's schema). A record holds
// the armored ciphertext, the encrypting key's fingerprint and the time; its id is
// a hash of the slot (a list, or the message a reply answers), so not even the
// replied-to Message-ID is kept in clear.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import * as openpgp from 'openpgp';
import { fromUtf8, utf8 } from '../../shared/index.ts';

export interface DraftRecord {
  id: string;
  /** The key the draft is encrypted to (hex, upper case). */
  fingerprint: string;
  armored: string;
  savedAt: number;
}

/** What a draft holds once decrypted (memory only). */
export interface DraftContent {
  list: string;
  subject: string;
  text: string;
}

interface Schema extends DBSchema {
  drafts: { key: string; value: DraftRecord };
}

/** At most this many drafts are kept; the oldest go first. */
export const MAX_DRAFTS = 50;
/** The largest draft text kept (characters). */
export const MAX_DRAFT_CHARS = 1024 * 1024;

export class DraftStore {
  private db: Promise<IDBPDatabase<Schema>> | null = null;

  constructor(private readonly name = 'letterlock-drafts') {}

  private open(): Promise<IDBPDatabase<Schema>> {
    // Version 2: a database someone opened empty at version 1 still gets its store.
    this.db ??= openDB<Schema>(this.name, 2, {
      upgrade(db) {
        if (!db.objectStoreNames.contains('drafts')) db.createObjectStore('drafts', { keyPath: 'id' });
      },
    });
    return this.db;
  }

  /** The record id of a slot: SHA-256 of its name, hex. */
  static async idOf(slot: string): Promise<string> {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(slot) as Uint8Array<ArrayBuffer>));
    return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
  }

  async save(slot: string, content: DraftContent, ownKey: openpgp.PublicKey, now = Date.now()): Promise<number> {
    const message = await openpgp.createMessage({ binary: utf8(JSON.stringify(content)), format: 'binary' });
    const armored = (await openpgp.encrypt({ message, encryptionKeys: ownKey })) as string;
    const db = await this.open();
    await db.put('drafts', { id: await DraftStore.idOf(slot), fingerprint: ownKey.getFingerprint().toUpperCase(), armored, savedAt: now });
    const all = await db.getAll('drafts');
    if (all.length > MAX_DRAFTS) {
      for (const old of all.sort((a, b) => a.savedAt - b.savedAt).slice(0, all.length - MAX_DRAFTS)) await db.delete('drafts', old.id);
    }
    return now;
  }

  /** The slot's draft decrypted with one of the given keys; null when there is none or none of the keys opens it. */
  async load(slot: string, keys: openpgp.PrivateKey[]): Promise<(DraftContent & { savedAt: number }) | null> {
    const db = await this.open();
    const rec = await db.get('drafts', await DraftStore.idOf(slot));
    if (!rec) return null;
    const key = keys.find((k) => k.getFingerprint().toUpperCase() === rec.fingerprint);
    if (!key) return null;
    try {
      const message = await openpgp.readMessage({ armoredMessage: rec.armored });
      const { data } = await openpgp.decrypt({ message, decryptionKeys: key, format: 'binary' });
      const c = JSON.parse(fromUtf8(data as Uint8Array)) as Partial<DraftContent>;
      if (typeof c.list !== 'string' || typeof c.subject !== 'string' || typeof c.text !== 'string') return null;
      return { list: c.list, subject: c.subject, text: c.text, savedAt: rec.savedAt };
    } catch {
      return null; // a damaged draft is not restored (and is replaced at the next save)
    }
  }

  async delete(slot: string): Promise<boolean> {
    const db = await this.open();
    const id = await DraftStore.idOf(slot);
    const had = (await db.get('drafts', id)) !== undefined;
    await db.delete('drafts', id);
    return had;
  }
}
