// Registering a member's key: the key policy from shared/ runs here, once, with
// the member's address as the expected user ID. What the wrap step needs later
// (the encryption key packet and the expiry) is stored beside the armored key.

import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { checkKey, isLetterlockError, parsePublicKey, type KeyFacts } from '../../shared/index.ts';
import type { Sql } from '../store/db.ts';
import { getMember, membersWithoutKeyIds, setMemberKeyIds, upsertMember, type MemberRecord } from '../store/members.ts';
import { normalizeAddress } from './lists.ts';

export interface RegisteredKey {
  facts: KeyFacts;
  record: MemberRecord;
  /** True when this call recorded the revocation of the member's current key. */
  revoked: boolean;
}

async function encryptionKeyOf(key: PublicKey, date: Date): Promise<{ packet: Uint8Array; expiresAt: number | null }> {
  const enc = await key.getEncryptionKey(undefined, date);
  const times: number[] = [];
  const primary = await key.getExpirationTime();
  if (primary instanceof Date) times.push(primary.getTime());
  if (enc !== key) {
    const sub = await (enc as openpgp.Subkey).getExpirationTime(date);
    if (sub instanceof Date) times.push(sub.getTime());
  }
  return { packet: enc.keyPacket.write(), expiresAt: times.length ? Math.min(...times) : null };
}

/**
 * Adds or updates a member. A key that fails the policy is refused with its
 * coded error, except one case: the revocation of the key already registered for
 * that address is recorded (the member then gets missed-message notices).
 */
export async function registerMember(sql: Sql, listId: number, address: string, armored: string, date = new Date()): Promise<RegisteredKey> {
  const addr = normalizeAddress(address);
  const key = await parsePublicKey(armored);
  let facts: KeyFacts;
  try {
    facts = await checkKey(key, { expectedAddress: addr, date });
  } catch (e) {
    const existing = await getMember(sql, listId, addr);
    if (isLetterlockError(e, 'KEY_REVOKED') && existing && existing.fingerprint === key.getFingerprint().toUpperCase()) {
      const record: MemberRecord = { ...existing, publicKey: key.armor(), keyState: 'revoked' };
      await upsertMember(sql, record);
      return { facts: { fingerprint: existing.fingerprint, keyId: key.getKeyID().toHex().toUpperCase(), addresses: [addr], algorithm: '', created: key.keyPacket.created, expires: null }, record, revoked: true };
    }
    throw e;
  }
  const { packet, expiresAt } = await encryptionKeyOf(key, date);
  const record: MemberRecord = {
    listId, address: addr, fingerprint: facts.fingerprint, publicKey: key.armor(), encryptionKey: packet, expiresAt, keyState: 'valid',
  };
  await upsertMember(sql, record, keyFingerprints(key));
  return { facts, record, revoked: false };
}

/** The fingerprints of a key and all its subkeys, upper-case. */
export function keyFingerprints(key: PublicKey): string[] {
  return [key.getFingerprint(), ...key.getSubkeys().map((s) => s.getFingerprint())].map((f) => f.toUpperCase());
}

/** Fills the key-ID index for members registered before it existed; bounded work per call. */
export async function backfillMemberKeyIds(sql: Sql, limit = 10_000): Promise<number> {
  const rows = await membersWithoutKeyIds(sql, limit);
  for (const r of rows) {
    try {
      await setMemberKeyIds(sql, r.listId, r.address, keyFingerprints(await parsePublicKey(r.publicKey)));
    } catch {
      // An unreadable stored key keeps its primary-key lookup only.
    }
  }
  return rows.length;
}
