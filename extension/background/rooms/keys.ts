// Keys room: the profile's keys (create with a revocation certificate, import,
// back up, renew, choose the default, remove) and the unlocked session (unlock,
// lock). Only top-level extension pages come here; the work is in ../keyring.ts.

import type { Requests, StateView } from '../../messages.ts';
import type { Common, Room } from './room.ts';

export type KeyRequests = 'key.create' | 'key.import' | 'key.export' | 'key.exportGnupg' | 'key.renew' | 'key.default' | 'key.remove' | 'key.unlock' | 'key.lock';

export class KeysRoom {
  constructor(private readonly c: Common) {}

  readonly room: Room<KeyRequests> = {
    'key.create': { callers: ['page'], run: (q) => this.create(q) },
    'key.import': { callers: ['page'], run: async (q) => this.then(this.c.keyring.import(q)) },
    // The passphrase-protected key, for the user's backup.
    'key.export': { callers: ['page'], run: (q) => this.c.keyring.export(q?.fingerprint) },
    // The same key, still passphrase-protected, in the form GnuPG 2.2 and Thunderbird read.
    'key.exportGnupg': { callers: ['page'], run: (q) => this.c.keyring.exportForGnupg(q?.fingerprint, q?.passphrase) },
    'key.renew': {
      callers: ['page'],
      run: async (q) => {
        const republished = await this.c.keyring.renew(q);
        return { state: await this.c.state(), republished };
      },
    },
    'key.default': { callers: ['page'], run: (q) => this.then(this.c.keyring.setDefault(q.fingerprint)) },
    'key.remove': { callers: ['page'], run: (q) => this.then(this.c.keyring.remove(q.fingerprint)) },
    'key.unlock': { callers: ['page'], run: (q) => this.then(this.c.keyring.unlock(q.passphrase)) },
    'key.lock': {
      callers: ['page'],
      run: async () => {
        await this.c.d.session.lock();
        this.c.d.lockChanged(null);
        return this.c.state();
      },
    },
  };

  /** The state view once `work` is done. */
  private async then(work: Promise<unknown>): Promise<StateView> {
    await work;
    return this.c.state();
  }

  private async create(q: Requests['key.create']['req']): Promise<Requests['key.create']['res']> {
    const made = await this.c.keyring.create(q);
    return { state: await this.c.state(), ...made };
  }
}
