// What Letterlock keeps of a bound Mailman list: the roster as last read from the
// Core (addresses, roles, delivery status, per-member moderation), the list
// settings the policy needs, when the roster was last read, the subscription
// changes still to be told to the Core (an outbox, so none is lost while the
// Core is down), and which members without a key were told how to register one.
// Addresses and settings only; nothing of a post.

import type { Db } from '../store/db.ts';
import type { MailmanAction, MailmanRole } from './rest.ts';

// The tables are made by migration step 8 (server/store/migrations.ts).

export interface RosterEntry {
  address: string;
  role: MailmanRole;
  deliveryEnabled: boolean;
  moderationAction: MailmanAction | null;
}

export interface NonmemberLists {
  accept: string[];
  hold: string[];
  reject: string[];
  discard: string[];
}

export interface MailmanState {
  defaultMemberAction: MailmanAction;
  defaultNonmemberAction: MailmanAction;
  subscriptionPolicy: string;
  emergency: boolean;
  nonmemberLists: NonmemberLists;
  syncedAt: number | null;
  attemptedAt: number | null;
  lastError: string | null;
}

export function getState(db: Db, listId: number): MailmanState | null {
  const r = db.prepare('SELECT * FROM mailman_state WHERE list_id = ?').get(listId) as
    | { default_member_action: MailmanAction; default_nonmember_action: MailmanAction; subscription_policy: string; emergency: number; nonmember_lists: string; synced_at: number | null; attempted_at: number | null; last_error: string | null }
    | undefined;
  if (!r) return null;
  let lists: NonmemberLists = { accept: [], hold: [], reject: [], discard: [] };
  try {
    lists = { ...lists, ...(JSON.parse(r.nonmember_lists) as Partial<NonmemberLists>) };
  } catch { /* written by us; a broken row reads as empty lists */ }
  return {
    defaultMemberAction: r.default_member_action, defaultNonmemberAction: r.default_nonmember_action, subscriptionPolicy: r.subscription_policy,
    emergency: r.emergency === 1, nonmemberLists: lists, syncedAt: r.synced_at, attemptedAt: r.attempted_at, lastError: r.last_error,
  };
}

export function recordAttempt(db: Db, listId: number, at: number, error: string | null): void {
  db.prepare(`INSERT INTO mailman_state (list_id, attempted_at, last_error) VALUES (?,?,?)
    ON CONFLICT(list_id) DO UPDATE SET attempted_at = excluded.attempted_at, last_error = excluded.last_error`).run(listId, at, error);
}

/**
 * Replaces the stored roster and settings with a complete read, in one
 * transaction: a reader sees the old roster or the new one, never half. Returns
 * the addresses that were readers (any role but nonmember) before and are not now.
 */
export function replaceRoster(db: Db, listId: number, entries: readonly RosterEntry[], settings: Omit<MailmanState, 'syncedAt' | 'attemptedAt' | 'lastError'>, at: number): string[] {
  return db.transaction(() => {
    const before = new Set((db.prepare(`SELECT DISTINCT address FROM mailman_roster WHERE list_id = ? AND role != 'nonmember'`).all(listId) as Array<{ address: string }>).map((r) => r.address));
    db.prepare('DELETE FROM mailman_roster WHERE list_id = ?').run(listId);
    const insert = db.prepare('INSERT OR REPLACE INTO mailman_roster (list_id, address, role, delivery_enabled, moderation_action) VALUES (?,?,?,?,?)');
    const now = new Set<string>();
    for (const e of entries) {
      const address = e.address.toLowerCase();
      insert.run(listId, address, e.role, e.deliveryEnabled ? 1 : 0, e.moderationAction);
      if (e.role !== 'nonmember') now.add(address);
    }
    db.prepare(`INSERT INTO mailman_state (list_id, default_member_action, default_nonmember_action, subscription_policy, emergency, nonmember_lists, synced_at, attempted_at, last_error)
      VALUES (?,?,?,?,?,?,?,?,NULL) ON CONFLICT(list_id) DO UPDATE SET default_member_action = excluded.default_member_action,
      default_nonmember_action = excluded.default_nonmember_action, subscription_policy = excluded.subscription_policy, emergency = excluded.emergency,
      nonmember_lists = excluded.nonmember_lists, synced_at = excluded.synced_at, attempted_at = excluded.attempted_at, last_error = NULL`).run(
      listId, settings.defaultMemberAction, settings.defaultNonmemberAction, settings.subscriptionPolicy, settings.emergency ? 1 : 0,
      JSON.stringify(settings.nonmemberLists), at, at,
    );
    return [...before].filter((a) => !now.has(a));
  })();
}

/** The roster rows of one address (a person may be member and moderator at once). */
export function rosterOf(db: Db, listId: number, address: string): RosterEntry[] {
  return (db.prepare('SELECT address, role, delivery_enabled, moderation_action FROM mailman_roster WHERE list_id = ? AND address = ?').all(listId, address.toLowerCase()) as Array<{ address: string; role: MailmanRole; delivery_enabled: number; moderation_action: MailmanAction | null }>)
    .map((r) => ({ address: r.address, role: r.role, deliveryEnabled: r.delivery_enabled === 1, moderationAction: r.moderation_action }));
}

/** Of these addresses, those Mailman lists as regular members with delivery enabled. */
export function deliverableAmong(db: Db, listId: number, addresses: readonly string[]): Set<string> {
  const out = new Set<string>();
  const stmt = db.prepare(`SELECT 1 FROM mailman_roster WHERE list_id = ? AND address = ? AND role = 'member' AND delivery_enabled = 1`);
  for (const a of addresses) if (stmt.get(listId, a.toLowerCase())) out.add(a);
  return out;
}

/** Whether Mailman lists the address as a member, owner or moderator (the archive's readers). */
export function isReader(db: Db, listId: number, address: string): boolean {
  return db.prepare(`SELECT 1 FROM mailman_roster WHERE list_id = ? AND address = ? AND role != 'nonmember' LIMIT 1`).get(listId, address.toLowerCase()) !== undefined;
}

export function addressesWithRole(db: Db, listId: number, roles: readonly MailmanRole[], limit = 100): string[] {
  return (db.prepare(`SELECT DISTINCT address FROM mailman_roster WHERE list_id = ? AND role IN (${roles.map(() => '?').join(',')}) ORDER BY address LIMIT ?`).all(listId, ...roles, limit) as Array<{ address: string }>).map((r) => r.address);
}

/**
 * A keyless member who keeps missing posts is reminded, at most this often: the
 * first missed post brings a notice at once, and one more each week while they
 * still miss posts (never one per post, which would flood a busy list's members).
 */
export const KEY_NOTICE_EVERY_MS = 7 * 86_400_000;

/**
 * Deliverable roster members with no registered key who were not told how to
 * register one since `toldSince`, in pages (address order, after `after`).
 */
export function keylessUnnoticed(db: Db, listId: number, after: string, limit: number, toldSince: number): string[] {
  return (db.prepare(`SELECT r.address FROM mailman_roster r
      WHERE r.list_id = ? AND r.role = 'member' AND r.delivery_enabled = 1 AND r.address > ?
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)
      AND NOT EXISTS (SELECT 1 FROM mailman_key_notices n WHERE n.list_id = r.list_id AND n.address = r.address AND n.noticed_at > ?)
      ORDER BY r.address LIMIT ?`).all(listId, after, toldSince, limit) as Array<{ address: string }>).map((r) => r.address);
}

export function recordKeyNotice(db: Db, listId: number, address: string, at: number): void {
  db.prepare(`INSERT INTO mailman_key_notices (list_id, address, noticed_at) VALUES (?,?,?)
    ON CONFLICT (list_id, address) DO UPDATE SET noticed_at = excluded.noticed_at`).run(listId, address.toLowerCase(), at);
}

/** Counts for status: roster members, and how many of them have a registered key. */
export function rosterCounts(db: Db, listId: number): { members: number; withKey: number; deliveryDisabled: number; owners: number; moderators: number; nonmembers: number } {
  const n = (sql: string) => (db.prepare(sql).get(listId) as { n: number }).n;
  return {
    members: n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'member'`),
    withKey: n(`SELECT count(*) AS n FROM mailman_roster r WHERE r.list_id = ? AND r.role = 'member' AND EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)`),
    deliveryDisabled: n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'member' AND delivery_enabled = 0`),
    owners: n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'owner'`),
    moderators: n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'moderator'`),
    nonmembers: n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'nonmember'`),
  };
}

// ---- outbox: subscription changes for the Core ---------------------------------

export interface OutboxRow {
  id: number;
  listId: number;
  address: string;
  op: 'subscribe' | 'unsubscribe';
  attempts: number;
}

/** Queues a change; a newer change for the same address replaces an older one not yet sent. */
export function queueOutbox(db: Db, listId: number, address: string, op: OutboxRow['op'], at = Date.now()): void {
  db.transaction(() => {
    db.prepare('DELETE FROM mailman_outbox WHERE list_id = ? AND address = ?').run(listId, address.toLowerCase());
    db.prepare('INSERT INTO mailman_outbox (list_id, address, op, created_at) VALUES (?,?,?,?)').run(listId, address.toLowerCase(), op, at);
  })();
}

export function pendingOutbox(db: Db, limit = 100): OutboxRow[] {
  return (db.prepare('SELECT id, list_id, address, op, attempts FROM mailman_outbox ORDER BY id LIMIT ?').all(limit) as Array<{ id: number; list_id: number; address: string; op: OutboxRow['op']; attempts: number }>)
    .map((r) => ({ id: r.id, listId: r.list_id, address: r.address, op: r.op, attempts: r.attempts }));
}

export function countOutbox(db: Db, listId: number): number {
  return (db.prepare('SELECT count(*) AS n FROM mailman_outbox WHERE list_id = ?').get(listId) as { n: number }).n;
}

export function doneOutbox(db: Db, id: number): void {
  db.prepare('DELETE FROM mailman_outbox WHERE id = ?').run(id);
}

export function failedOutbox(db: Db, id: number): void {
  db.prepare('UPDATE mailman_outbox SET attempts = attempts + 1 WHERE id = ?').run(id);
}

/** Binds (or unbinds, with null) a Letterlock list to a Mailman list id. */
export function setBinding(db: Db, listId: number, mailmanListId: string | null): void {
  db.prepare('UPDATE lists SET mailman_list_id = ? WHERE id = ?').run(mailmanListId, listId);
  if (mailmanListId === null) {
    db.prepare('DELETE FROM mailman_roster WHERE list_id = ?').run(listId);
    db.prepare('DELETE FROM mailman_state WHERE list_id = ?').run(listId);
  }
}
