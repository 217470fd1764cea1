// Keys room: the subscriber's key (create, import, back up, remove) and the
// unlocked session (unlock, lock). Only top-level extension pages come here.

import type { PrivateKey } from 'openpgp';
import { generateKey, readPrivateKeyForStorage, unlockPrivateKey } from '../../../shared/index.ts';
import { refuse } from '../../errors.ts';
import type { Requests, StateView } from '../../messages.ts';
import { str, type Common, type Room } from './room.ts';

export type KeyRequests = 'key.create' | 'key.import' | 'key.export' | 'key.remove' | 'key.unlock' | 'key.lock';

export class KeysRoom {
  constructor(private readonly c: Common) {}

  readonly room: Room<KeyRequests> = {
    'key.create': { callers: ['page'], run: (q) => this.createKey(q) },
    'key.import': { callers: ['page'], run: (q) => this.importKey(q) },
    // The passphrase-protected key, for the user's backup.
    'key.export': { callers: ['page'], run: async () => ({ armored: (await this.c.requireStoredKey()).privateArmored }) },
    'key.remove': { callers: ['page'], run: (q) => this.removeKey(q.fingerprint) },
    'key.unlock': { callers: ['page'], run: (q) => this.unlock(str(q.passphrase, 1024, 'the passphrase')) },
    'key.lock': {
      callers: ['page'],
      run: async () => {
        await this.c.d.session.lock();
        this.c.d.lockChanged(null);
        return this.c.state();
      },
    },
  };

  private async createKey(q: Requests['key.create']['req']): Promise<StateView> {
    if (await this.c.d.store.getKey()) refuse('KEY_EXISTS');
    const name = str(q.name, 200, 'the name').trim();
    const address = str(q.address, 254, 'the address').trim().toLowerCase();
    const passphrase = str(q.passphrase, 1024, 'the passphrase');
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) refuse('BAD_INPUT', 'the address is not an email address');
    if (passphrase.length < 8) refuse('BAD_INPUT', 'the passphrase needs at least 8 characters');
    const g = await generateKey({ kind: 'subscriber', address, ...(name ? { name } : {}), passphrase, protection: 'argon2' });
    await this.storeKey(g.privateKeyArmored, passphrase, name);
    return this.c.state();
  }

  private async importKey(q: Requests['key.import']['req']): Promise<StateView> {
    if (await this.c.d.store.getKey()) refuse('KEY_EXISTS');
    await this.storeKey(str(q.armored, 256 * 1024, 'the key'), str(q.passphrase, 1024, 'the passphrase'));
    return this.c.state();
  }

  /** Refuses an unprotected key (KEY_UNPROTECTED) and one the passphrase does not open. */
  private async storeKey(armored: string, passphrase: string, name?: string): Promise<void> {
    const { key, facts } = await readPrivateKeyForStorage(armored);
    const unlocked = await unlockPrivateKey(key, passphrase);
    const address = facts.addresses[0];
    if (!address) refuse('BAD_INPUT', 'the key has no email address');
    const userName = name ?? key.users.find((u) => u.userID?.email?.toLowerCase() === address)?.userID?.name ?? '';
    await this.c.d.store.putKey({
      fingerprint: facts.fingerprint, keyId: facts.keyId, address, name: userName, created: facts.created.toISOString(),
      privateArmored: key.armor(), publicArmored: key.toPublic().armor(),
    });
    await this.startSession(unlocked);
  }

  private async removeKey(fingerprint: string): Promise<StateView> {
    const key = await this.c.requireStoredKey();
    // The page names the fingerprint it showed, so a stale page cannot remove another key.
    if (key.fingerprint !== fingerprint) refuse('BAD_INPUT', 'the key changed; reload the page');
    await this.c.d.session.lock();
    this.c.d.lockChanged(null);
    await this.c.d.store.removeKey();
    return this.c.state();
  }

  private async unlock(passphrase: string): Promise<StateView> {
    const stored = await this.c.requireStoredKey();
    this.c.d.rate.take();
    const { key } = await readPrivateKeyForStorage(stored.privateArmored);
    await this.startSession(await unlockPrivateKey(key, passphrase));
    return this.c.state();
  }

  private async startSession(key: PrivateKey): Promise<void> {
    const { timeoutMinutes } = await this.c.d.store.getSettings();
    this.c.d.lockChanged(await this.c.d.session.unlock(key, timeoutMinutes));
  }
}
