// The profile's keys: several per profile, one default for new lists, one chosen
// per list. Creating a key makes its revocation certificate at once (handed to
// the page once, never stored); renewal extends the expiry under the same
// passphrase and re-publishes the key to every list that uses it, by a request
// signed with the key the list has registered. Nothing here hands out an
// unprotected key: the backup is the stored, passphrase-protected armor.

import * as openpgp from 'openpgp';
import type { PrivateKey } from 'openpgp';
import {
  generateKey, protectKey, readPrivateKeyForStorage, requestStatement, signStatement, unlockPrivateKey,
} from '../../shared/index.ts';
import { ExtensionError, refuse, toErrorView } from '../errors.ts';
import type { KeyView } from '../messages.ts';
import type { ListServer } from './server.ts';
import type { RateLimiter, UnlockedSession } from './session.ts';
import { MAX_KEYS, type KeyStore, type StoredKey, type StoredList } from './store.ts';

export interface KeyringDeps {
  store: KeyStore;
  session: UnlockedSession;
  rate: RateLimiter;
  server: ListServer;
  lockChanged(lockAt: number | null): void;
  randomId(): string;
  now?: () => number;
}

/** Longest expiry a key may be given or renewed to (days); 0 means never. */
export const MAX_EXPIRY_DAYS = 10 * 366;

function str(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') refuse('BAD_INPUT', `${what} is missing`);
  if (v.length > max) refuse('TOO_LARGE', `${what} is too long`);
  return v;
}

function days(v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_EXPIRY_DAYS) refuse('BAD_INPUT', `the expiry is 0 (never) to ${MAX_EXPIRY_DAYS} days`);
  return v;
}

const FINGERPRINT = /^[0-9A-F]{40}$|^[0-9A-F]{64}$/;

export class Keyring {
  constructor(private readonly d: KeyringDeps) {}

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  async views(): Promise<KeyView[]> {
    return (await this.d.store.allKeys()).map((k) => ({
      fingerprint: k.fingerprint, keyId: k.keyId, address: k.address, name: k.name, created: k.created,
      expires: k.expires ?? null, publicKey: k.publicArmored, unlocked: this.d.session.isUnlocked(k.fingerprint),
    }));
  }

  /** A key by fingerprint (none: the default), or NO_KEY. */
  async require(fingerprint?: unknown): Promise<StoredKey> {
    const key = fingerprint === undefined || fingerprint === null
      ? await this.d.store.getKey()
      : await this.d.store.getKey(this.fingerprint(fingerprint));
    if (!key) refuse('NO_KEY');
    return key;
  }

  private fingerprint(v: unknown): string {
    const fp = str(v, 64, 'the fingerprint').toUpperCase();
    if (!FINGERPRINT.test(fp)) refuse('BAD_INPUT', 'the fingerprint is 40 or 64 hex digits');
    return fp;
  }

  /** The key a list uses: the one chosen for it, else the default. */
  async forList(list: StoredList): Promise<StoredKey> {
    if (list.keyFingerprint) {
      const k = await this.d.store.getKey(list.keyFingerprint);
      if (k) return k;
    }
    return this.require();
  }

  private async roomForOneMore(): Promise<void> {
    if ((await this.d.store.allKeys()).length >= MAX_KEYS) refuse('TOO_MANY_KEYS');
  }

  async create(q: { name: unknown; address: unknown; passphrase: unknown; expiresInDays?: unknown }): Promise<{ fingerprint: string; revocationCertificate: string }> {
    const name = str(q.name ?? '', 200, 'the name').trim();
    const address = str(q.address, 254, 'the address').trim().toLowerCase();
    const passphrase = str(q.passphrase, 1024, 'the passphrase');
    const expiry = days(q.expiresInDays);
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) refuse('BAD_INPUT', 'the address is not an email address: a name, an @ and a domain with a dot, like you@example.org');
    if (passphrase.length < 8) refuse('BAD_INPUT', 'the passphrase needs at least 8 characters');
    await this.roomForOneMore();
    const g = await generateKey({
      kind: 'subscriber', address, ...(name ? { name } : {}), passphrase, protection: 'argon2',
      ...(expiry ? { expiresInSeconds: expiry * 86_400 } : {}),
    });
    await this.store(g.privateKeyArmored, passphrase, name);
    return { fingerprint: g.facts.fingerprint, revocationCertificate: g.revocationCertificate };
  }

  async import(q: { armored: unknown; passphrase: unknown }): Promise<void> {
    await this.roomForOneMore();
    await this.store(str(q.armored, 256 * 1024, 'the key'), str(q.passphrase, 1024, 'the passphrase'));
  }

  /** Refuses an unprotected key (KEY_UNPROTECTED), one the passphrase does not open, and one already here. */
  private async store(armored: string, passphrase: string, name?: string): Promise<void> {
    const { key, facts } = await readPrivateKeyForStorage(armored);
    if (await this.d.store.getKey(facts.fingerprint)) refuse('KEY_EXISTS');
    const unlocked = await unlockPrivateKey(key, passphrase);
    const address = facts.addresses[0];
    if (!address) refuse('BAD_INPUT', 'the key has no email address in its user ID');
    const userName = name ?? key.users.find((u) => u.userID?.email?.toLowerCase() === address)?.userID?.name ?? '';
    await this.d.store.putKey({
      fingerprint: facts.fingerprint, keyId: facts.keyId, address, name: userName, created: facts.created.toISOString(),
      expires: facts.expires ? facts.expires.toISOString() : null,
      privateArmored: key.armor(), publicArmored: key.toPublic().armor(),
    });
    // The first key becomes the default; later ones are added beside it.
    const s = await this.d.store.getSettings();
    if (!s.defaultKey || !(await this.d.store.getKey(s.defaultKey))) await this.d.store.putSettings({ ...s, defaultKey: facts.fingerprint });
    await this.startSession([unlocked]);
  }

  /** The passphrase-protected armor, as stored: the backup file. */
  async export(fingerprint?: unknown): Promise<{ armored: string }> {
    return { armored: (await this.require(fingerprint)).privateArmored };
  }

  /**
   * The same key, protected by the same passphrase, in the RFC 4880 form: iterated
   * and salted S2K (SHA-256), AES-256 in CFB mode with a SHA-1 checksum. GnuPG 2.2
   * (and so Thunderbird's import) skips the stored Argon2/AEAD form as "invalid
   * cipher 253". The passphrase is needed to re-protect the key; it is checked
   * against the stored key, so a wrong one yields KEY_PASSPHRASE_WRONG and the
   * export never protects the key with anything but the passphrase that opens it.
   */
  async exportForGnupg(fingerprint: unknown, passphraseIn: unknown): Promise<{ armored: string }> {
    const stored = await this.require(fingerprint);
    const passphrase = str(passphraseIn, 1024, 'the passphrase');
    this.d.rate.take();
    const unlocked = await unlockPrivateKey(await openpgp.readPrivateKey({ armoredKey: stored.privateArmored }), passphrase);
    let armored: string;
    try {
      armored = (await protectKey(unlocked, passphrase, 'iterated')).armor();
    } catch {
      throw new ExtensionError('INTERNAL', 'The key could not be exported for GnuPG. The encrypted backup still works in Letterlock.');
    }
    // Never hand out a key that is not protected: check the result as an import would.
    await readPrivateKeyForStorage(armored);
    return { armored };
  }

  async remove(fingerprint: unknown): Promise<void> {
    // The page names the fingerprint it showed, so a stale page cannot remove another key.
    const key = await this.d.store.getKey(this.fingerprint(fingerprint));
    if (!key) refuse('BAD_INPUT', 'that key is no longer here; reload the page');
    await this.d.session.forget(key.fingerprint);
    if (!this.d.session.unlocked) this.d.lockChanged(null);
    await this.d.store.removeKey(key.fingerprint);
    const s = await this.d.store.getSettings();
    if (s.defaultKey === key.fingerprint) await this.d.store.putSettings({ ...s, defaultKey: null });
    // Lists that used it fall back to the default key (shown on the options page).
    for (const l of await this.d.store.allLists()) {
      if (l.keyFingerprint === key.fingerprint) await this.d.store.putList({ ...l, keyFingerprint: null });
    }
  }

  async setDefault(fingerprint: unknown): Promise<void> {
    const key = await this.require(fingerprint);
    const s = await this.d.store.getSettings();
    // Lists that followed the old default keep the key they have been using.
    const old = await this.d.store.getKey();
    if (old && old.fingerprint !== key.fingerprint) {
      for (const l of await this.d.store.allLists()) {
        if (!l.keyFingerprint) await this.d.store.putList({ ...l, keyFingerprint: old.fingerprint });
      }
    }
    await this.d.store.putSettings({ ...s, defaultKey: key.fingerprint });
  }

  /** One passphrase unlocks every key it opens; KEY_PASSPHRASE_WRONG when it opens none. */
  async unlock(passphraseIn: unknown): Promise<void> {
    const passphrase = str(passphraseIn, 1024, 'the passphrase');
    const keys = await this.d.store.allKeys();
    if (keys.length === 0) refuse('NO_KEY');
    this.d.rate.take();
    const opened: PrivateKey[] = [];
    let failure: unknown = null;
    for (const k of keys) {
      try {
        // Checked against the key policy when stored; an expired key still unlocks (to renew it, to read old mail).
        opened.push(await unlockPrivateKey(await openpgp.readPrivateKey({ armoredKey: k.privateArmored }), passphrase));
      } catch (e) {
        failure = e; // another passphrase: this key stays locked
      }
    }
    if (opened.length === 0) throw failure;
    await this.startSession(opened);
  }

  private async startSession(keys: PrivateKey[]): Promise<void> {
    const { timeoutMinutes } = await this.d.store.getSettings();
    this.d.lockChanged(await this.d.session.unlock(keys, timeoutMinutes));
  }

  /**
   * Extends the expiry (days from now; 0: never) of one key. The new self-signatures
   * are made with the key itself, so it is unlocked with its passphrase here, and
   * stored protected by the same passphrase. The renewed public key then goes to
   * every list where this key is a member's.
   */
  async renew(q: { fingerprint: unknown; passphrase: unknown; expiresInDays: unknown }): Promise<{ list: string; ok: boolean; message: string | null }[]> {
    const stored = await this.require(q.fingerprint);
    const passphrase = str(q.passphrase, 1024, 'the passphrase');
    const expiry = days(q.expiresInDays);
    this.d.rate.take();
    const locked = await openpgp.readPrivateKey({ armoredKey: stored.privateArmored });
    const unlocked = await unlockPrivateKey(locked, passphrase);
    const argon2 = (locked.keyPacket as unknown as { s2k?: { type?: string } }).s2k?.type === 'argon2';
    const userIDs = locked.users.filter((u) => u.userID).map((u) => ({ name: u.userID!.name, email: u.userID!.email, comment: u.userID!.comment }));
    if (userIDs.length === 0) refuse('BAD_INPUT', 'the key has no user ID to renew');
    const now = new Date(this.now());
    let renewed: { privateKey: PrivateKey; publicKey: openpgp.PublicKey };
    try {
      // As at creation: no SEIPDv2 advertised (senders keep to the form GnuPG 2.2 reads), then protected.
      const reformatted = await openpgp.reformatKey({
        privateKey: unlocked, userIDs, keyExpirationTime: expiry * 86_400, date: now, format: 'object', config: { aeadProtect: false },
      });
      renewed = { publicKey: reformatted.publicKey, privateKey: await protectKey(reformatted.privateKey, passphrase, argon2 ? 'argon2' : 'iterated') };
    } catch {
      throw new ExtensionError('INTERNAL', 'The key could not be renewed. Nothing was changed.');
    }
    const { facts } = await readPrivateKeyForStorage(renewed.privateKey.armor(), { date: now });
    if (facts.fingerprint !== stored.fingerprint) throw new ExtensionError('INTERNAL', 'The key could not be renewed. Nothing was changed.');
    const decrypted = await unlockPrivateKey(renewed.privateKey, passphrase);
    const publicArmored = renewed.publicKey.armor();
    await this.d.store.putKey({
      ...stored, privateArmored: renewed.privateKey.armor(), publicArmored,
      expires: facts.expires ? facts.expires.toISOString() : null,
    });
    await this.startSession([decrypted]);

    const out: { list: string; ok: boolean; message: string | null }[] = [];
    const defaultFp = (await this.d.store.getKey())?.fingerprint;
    for (const l of await this.d.store.allLists()) {
      const uses = (l.keyFingerprint ?? defaultFp) === stored.fingerprint;
      if (!uses || l.state !== 'member' || l.changed) continue;
      try {
        const statement = requestStatement({
          server: l.apiBase, list: l.address, address: stored.address, action: 'key-change',
          nonce: this.d.randomId(), date: now.toISOString(), value: stored.fingerprint,
        });
        // Signed by the key the list has registered: the same primary key, renewed.
        const signature = await signStatement(statement, decrypted);
        await this.d.server.signedRequest(l.server, l.address, { statement, signature, newPublicKey: publicArmored });
        out.push({ list: l.address, ok: true, message: null });
      } catch (e) {
        out.push({ list: l.address, ok: false, message: toErrorView(e).message });
      }
    }
    return out;
  }

  /** Chooses the key used with a list; only before subscribing (a member's key changes by renewal). */
  async chooseForList(list: StoredList, fingerprint: unknown): Promise<StoredList> {
    const key = await this.require(fingerprint);
    if (list.state !== 'pinned') refuse('BAD_INPUT', 'the key of a list can be chosen only before subscribing; remove the list and add it again to use another key');
    const next = { ...list, keyFingerprint: key.fingerprint };
    await this.d.store.putList(next);
    return next;
  }
}
