// Creating lists and loading them for serving. A new list gets a list key and an
// archive key, both generated already protected by the server secret; serving
// unlocks them in memory only.

import type { PrivateKey } from 'openpgp';
import { generateKey, KeyRecipient, parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';
import type { Sql } from '../store/db.ts';
import { getList, insertList, type ListRecord, type PostPolicy } from '../store/lists.ts';

const ADDRESS = /^[a-z0-9][a-z0-9._-]{0,63}@[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)+$/;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** List addresses are plain: no '+' (reserved for bounce and command addresses). */
export function normalizeListAddress(address: string): string {
  const a = address.trim().toLowerCase();
  if (!ADDRESS.test(a)) throw new UsageError(`"${address}" is not a valid list address (like news@lists.example.org, no '+')`);
  return a;
}

export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  if (a.length > 254 || !/^[^\s@<>"(),;:]+@[a-z0-9.-]+$/.test(a)) throw new UsageError(`"${address}" is not a valid email address`);
  return a;
}

export interface CreateListOptions {
  owner?: string | null;
  postPolicy?: PostPolicy;
  posters?: string[];
  requireSignature?: boolean;
  maxBytes: number;
}

export async function createList(sql: Sql, secret: string, address: string, options: CreateListOptions): Promise<ListRecord> {
  const addr = normalizeListAddress(address);
  if (await getList(sql, addr)) throw new UsageError(`list ${addr} already exists`);
  const [listKey, archiveKey] = await Promise.all([
    generateKey({ kind: 'list', address: addr, passphrase: secret }),
    generateKey({ kind: 'archive', address: addr, passphrase: secret }),
  ]);
  await insertList(sql, {
    address: addr,
    owner: options.owner ? normalizeAddress(options.owner) : null,
    listFingerprint: listKey.facts.fingerprint,
    listPublic: listKey.publicKeyArmored,
    listPrivate: listKey.privateKeyArmored,
    archiveFingerprint: archiveKey.facts.fingerprint,
    archivePublic: archiveKey.publicKeyArmored,
    archivePrivate: archiveKey.privateKeyArmored,
    postPolicy: options.postPolicy ?? 'members',
    posters: (options.posters ?? []).map(normalizeAddress),
    requireSignature: options.requireSignature ?? true,
    maxBytes: options.maxBytes,
  });
  return (await getList(sql, addr))!;
}

/** What serving a list needs in memory: its unlocked list key and the archive recipient. */
export interface ListKeys {
  listKey: PrivateKey;
  /** K is also wrapped to the list's own key, so an interrupted fan-out can resume. */
  listRecipient: KeyRecipient;
  archive: KeyRecipient;
}

export async function unlockList(list: ListRecord, secret: string): Promise<ListKeys> {
  const listKey = await unlockPrivateKey(await parsePrivateKey(list.listPrivate), secret);
  const { key: archivePublic } = await readPublicKey(list.archivePublic);
  return { listKey, listRecipient: await KeyRecipient.fromPublicKey(listKey.toPublic()), archive: await KeyRecipient.fromPublicKey(archivePublic) };
}
