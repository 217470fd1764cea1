// Lists room: looking a list up on its server, pinning its key only when the
// user confirmed exactly that fingerprint, subscribing, and forgetting a list.

import type { ListInfo } from '../../../shared/api/types.ts';
import { readPublicKey } from '../../../shared/index.ts';
import { refuse } from '../../errors.ts';
import type { ListView, Requests } from '../../messages.ts';
import { normalizeServer } from '../server.ts';
import { str, type Common, type Room } from './room.ts';

export type ListRequests = 'lists.get' | 'list.lookup' | 'list.pin' | 'list.subscribe' | 'list.remove' | 'list.key' | 'list.auto';

export class ListsRoom {
  /** Lists looked up and not yet pinned, by address. */
  private readonly candidates = new Map<string, { server: string; info: ListInfo; fingerprint: string }>();

  constructor(private readonly c: Common) {}

  readonly room: Room<ListRequests> = {
    'lists.get': { callers: ['page'], run: () => this.c.listViews() },
    'list.lookup': { callers: ['page'], run: (q) => this.lookup(q.address, q.server) },
    'list.pin': { callers: ['page'], run: (q) => this.pin(q.address, q.fingerprint) },
    'list.subscribe': { callers: ['page'], run: (q) => this.subscribe(q.address, q.delivery) },
    // Only the user, in the options page, turns automatic decryption on for a list.
    'list.auto': {
      callers: ['page'],
      run: async (q) => {
        if (typeof q.auto !== 'boolean') refuse('BAD_INPUT', 'auto is true or false');
        const list = await this.c.requireList(str(q.address, 254, 'the list address'));
        await this.c.d.store.putList({ ...list, autoDecrypt: q.auto });
        return this.c.listViews();
      },
    },
    'list.remove': {
      callers: ['page'],
      run: async (q) => {
        await this.c.d.store.removeList(String(q.address));
        return this.c.listViews();
      },
    },
    'list.key': {
      callers: ['page'],
      run: async (q) => {
        await this.c.keyring.chooseForList(await this.c.requireList(q.address), q.fingerprint);
        return this.c.listViews();
      },
    },
  };

  private async lookup(addressIn: string, serverIn: string): Promise<Requests['list.lookup']['res']> {
    const d = this.c.d;
    const address = str(addressIn, 254, 'the list address').trim().toLowerCase();
    const server = normalizeServer(str(serverIn, 2048, 'the server address'));
    const info = await d.server.listInfo(server, address);
    if (info.address !== address) refuse('SERVER_BAD_ANSWER', 'the server answered for another list');
    // The key must pass the key policy for the list address, and be the one the server names.
    const { facts } = await readPublicKey(info.listKey.armored, { expectedAddress: address });
    if (facts.fingerprint !== info.listKey.fingerprint) refuse('SERVER_BAD_ANSWER', 'the list key does not match its fingerprint');
    const existing = await d.store.getList(address);
    if (existing && existing.fingerprint !== facts.fingerprint) {
      // Never replace a pinned key silently: remember the offer and warn.
      await d.store.putList({ ...existing, changed: { fingerprint: facts.fingerprint, armored: info.listKey.armored } });
    }
    // Bounded: a page calling lookup in a loop cannot grow this without end.
    if (this.candidates.size >= 50 && !this.candidates.has(address)) this.candidates.delete(this.candidates.keys().next().value!);
    this.candidates.set(address, { server, info, fingerprint: facts.fingerprint });
    return {
      address, name: info.name, description: info.description, server, fingerprint: facts.fingerprint,
      pinnedFingerprint: existing && existing.fingerprint !== facts.fingerprint ? existing.fingerprint : null,
    };
  }

  /** Pins the looked-up list key, only when the user confirmed exactly its fingerprint. */
  private async pin(addressIn: string, fingerprint: string): Promise<ListView[]> {
    const address = String(addressIn).trim().toLowerCase();
    const c = this.candidates.get(address);
    if (!c) refuse('LIST_UNKNOWN');
    if (c.fingerprint !== fingerprint) refuse('FINGERPRINT_MISMATCH');
    const existing = await this.c.d.store.getList(address);
    await this.c.d.store.putList({
      address, name: c.info.name, server: c.server, apiBase: c.info.apiBase, fingerprint, listKeyArmored: c.info.listKey.armored,
      // Membership belongs to the subscriber's key, so a newly confirmed list key keeps it.
      state: existing?.state ?? 'pinned',
      keyFingerprint: existing?.keyFingerprint ?? null,
      maxBytes: c.info.policy.maxBytes, changed: null,
    });
    this.candidates.delete(address);
    return this.c.listViews();
  }

  private async subscribe(address: string, delivery: 'pgp-mime' | 'inline'): Promise<ListView[]> {
    const list = await this.c.requireList(address);
    const key = await this.c.keyForList(list);
    if (delivery !== 'pgp-mime' && delivery !== 'inline') refuse('BAD_INPUT', 'delivery is pgp-mime or inline');
    await this.c.d.server.subscribe(list.server, list.address, { address: key.address, publicKey: key.publicArmored, delivery });
    // The key is fixed from here on: the list registers this one for its address.
    await this.c.d.store.putList({ ...list, keyFingerprint: key.fingerprint, state: 'confirmation-sent' });
    return this.c.listViews();
  }
}
