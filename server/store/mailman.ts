// What Letterlock keeps of a bound Mailman list: the roster as last read from the
// Core (addresses, roles, delivery status, per-member moderation), the list
// settings the policy needs, when the roster was last read, the subscription
// changes still to be told to the Core (an outbox, so none is lost while the
// Core is down), and which members without a key were told how to register one.
// Addresses and settings only; nothing of a post.

import type { MailmanAction, MailmanRole } from '../mailman/rest.ts';
import type { Sql } from './sql.ts';

// The tables are made by migration step 8 (server/store/migrations.ts); the
// invitations (server/mailman/import.ts) by a later step.

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

export async function getState(sql: Sql, listId: number): Promise<MailmanState | null> {
  const r = await sql.get<{ default_member_action: MailmanAction; default_nonmember_action: MailmanAction; subscription_policy: string; emergency: number; nonmember_lists: string; synced_at: number | null; attempted_at: number | null; last_error: string | null }>(
    'SELECT * FROM mailman_state WHERE list_id = ?', [listId]);
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

export async function recordAttempt(sql: Sql, listId: number, at: number, error: string | null): Promise<void> {
  await sql.run(`INSERT INTO mailman_state (list_id, attempted_at, last_error) VALUES (?,?,?)
    ON CONFLICT (list_id) DO UPDATE SET attempted_at = excluded.attempted_at, last_error = excluded.last_error`, [listId, at, error]);
}

/**
 * Replaces the stored roster and settings with a complete read, in one
 * transaction: a reader sees the old roster or the new one, never half. Returns
 * the addresses that were readers (any role but nonmember) before and are not now.
 */
export async function replaceRoster(sql: Sql, listId: number, entries: readonly RosterEntry[], settings: Omit<MailmanState, 'syncedAt' | 'attemptedAt' | 'lastError'>, at: number): Promise<string[]> {
  return sql.tx(async () => {
    const before = new Set((await sql.all<{ address: string }>(`SELECT DISTINCT address FROM mailman_roster WHERE list_id = ? AND role != 'nonmember'`, [listId])).map((r) => r.address));
    await sql.run('DELETE FROM mailman_roster WHERE list_id = ?', [listId]);
    const now = new Set<string>();
    for (const e of entries) {
      const address = e.address.toLowerCase();
      // A repeated (address, role) in one read: the last one wins, as INSERT OR REPLACE did.
      await sql.run(`INSERT INTO mailman_roster (list_id, address, role, delivery_enabled, moderation_action) VALUES (?,?,?,?,?)
        ON CONFLICT (list_id, address, role) DO UPDATE SET delivery_enabled = excluded.delivery_enabled, moderation_action = excluded.moderation_action`,
        [listId, address, e.role, e.deliveryEnabled ? 1 : 0, e.moderationAction]);
      if (e.role !== 'nonmember') now.add(address);
    }
    await sql.run(`INSERT INTO mailman_state (list_id, default_member_action, default_nonmember_action, subscription_policy, emergency, nonmember_lists, synced_at, attempted_at, last_error)
      VALUES (?,?,?,?,?,?,?,?,NULL) ON CONFLICT (list_id) DO UPDATE SET default_member_action = excluded.default_member_action,
      default_nonmember_action = excluded.default_nonmember_action, subscription_policy = excluded.subscription_policy, emergency = excluded.emergency,
      nonmember_lists = excluded.nonmember_lists, synced_at = excluded.synced_at, attempted_at = excluded.attempted_at, last_error = NULL`, [
      listId, settings.defaultMemberAction, settings.defaultNonmemberAction, settings.subscriptionPolicy, settings.emergency ? 1 : 0,
      JSON.stringify(settings.nonmemberLists), at, at,
    ]);
    return [...before].filter((a) => !now.has(a));
  });
}

/** The roster rows of one address (a person may be member and moderator at once). */
export async function rosterOf(sql: Sql, listId: number, address: string): Promise<RosterEntry[]> {
  return (await sql.all<{ address: string; role: MailmanRole; delivery_enabled: number; moderation_action: MailmanAction | null }>(
    'SELECT address, role, delivery_enabled, moderation_action FROM mailman_roster WHERE list_id = ? AND address = ?', [listId, address.toLowerCase()]))
    .map((r) => ({ address: r.address, role: r.role, deliveryEnabled: r.delivery_enabled === 1, moderationAction: r.moderation_action }));
}

/** Of these addresses, those Mailman lists as regular members with delivery enabled. */
export async function deliverableAmong(sql: Sql, listId: number, addresses: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const a of addresses) {
    if (await sql.get(`SELECT 1 AS one FROM mailman_roster WHERE list_id = ? AND address = ? AND role = 'member' AND delivery_enabled = 1`, [listId, a.toLowerCase()])) out.add(a);
  }
  return out;
}

/** Whether Mailman lists the address as a member, owner or moderator (the archive's readers). */
export async function isReader(sql: Sql, listId: number, address: string): Promise<boolean> {
  return (await sql.get(`SELECT 1 AS one FROM mailman_roster WHERE list_id = ? AND address = ? AND role != 'nonmember' LIMIT 1`, [listId, address.toLowerCase()])) !== undefined;
}

export async function addressesWithRole(sql: Sql, listId: number, roles: readonly MailmanRole[], limit = 100): Promise<string[]> {
  return (await sql.all<{ address: string }>(`SELECT DISTINCT address FROM mailman_roster WHERE list_id = ? AND role IN (${roles.map(() => '?').join(',')}) ORDER BY address LIMIT ?`, [listId, ...roles, limit])).map((r) => r.address);
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
export async function keylessUnnoticed(sql: Sql, listId: number, after: string, limit: number, toldSince: number): Promise<string[]> {
  return (await sql.all<{ address: string }>(`SELECT r.address FROM mailman_roster r
      WHERE r.list_id = ? AND r.role = 'member' AND r.delivery_enabled = 1 AND r.address > ?
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)
      AND NOT EXISTS (SELECT 1 FROM mailman_key_notices n WHERE n.list_id = r.list_id AND n.address = r.address AND n.noticed_at > ?)
      ORDER BY r.address LIMIT ?`, [listId, after, toldSince, limit])).map((r) => r.address);
}

export async function recordKeyNotice(sql: Sql, listId: number, address: string, at: number): Promise<void> {
  await sql.run(`INSERT INTO mailman_key_notices (list_id, address, noticed_at) VALUES (?,?,?)
    ON CONFLICT (list_id, address) DO UPDATE SET noticed_at = excluded.noticed_at`, [listId, address.toLowerCase(), at]);
}

/** Counts for status: roster members, and how many of them have a registered key. */
export async function rosterCounts(sql: Sql, listId: number): Promise<{ members: number; withKey: number; deliveryDisabled: number; owners: number; moderators: number; nonmembers: number }> {
  const n = async (text: string) => (await sql.get<{ n: number }>(text, [listId]))!.n;
  return {
    members: await n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'member'`),
    withKey: await n(`SELECT count(*) AS n FROM mailman_roster r WHERE r.list_id = ? AND r.role = 'member' AND EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)`),
    deliveryDisabled: await n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'member' AND delivery_enabled = 0`),
    owners: await n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'owner'`),
    moderators: await n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'moderator'`),
    nonmembers: await n(`SELECT count(*) AS n FROM mailman_roster WHERE list_id = ? AND role = 'nonmember'`),
  };
}

/** Distinct regular members of the roster, and how many of them have a registered key (the import's summary). */
export async function memberKeyCounts(sql: Sql, listId: number): Promise<{ members: number; withKey: number }> {
  const r = await sql.get<{ members: number; with_key: number }>(`SELECT count(DISTINCT r.address) AS members,
      count(DISTINCT CASE WHEN EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address) THEN r.address END) AS with_key
      FROM mailman_roster r WHERE r.list_id = ? AND r.role = 'member'`, [listId]);
  return { members: r!.members, withKey: r!.with_key };
}

// ---- invitations (the import's first notice to keyless members) -------------------

/** Regular members (any delivery status) without a registered key and not invited yet, in address order. */
export async function uninvited(sql: Sql, listId: number, after: string, limit: number): Promise<string[]> {
  return (await sql.all<{ address: string }>(`SELECT DISTINCT r.address FROM mailman_roster r
      WHERE r.list_id = ? AND r.role = 'member' AND r.address > ?
      AND NOT EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)
      AND NOT EXISTS (SELECT 1 FROM mailman_invitations i WHERE i.list_id = r.list_id AND i.address = r.address)
      ORDER BY r.address LIMIT ?`, [listId, after, limit])).map((r) => r.address);
}

export async function invitationCounts(sql: Sql, listId: number): Promise<{ invited: number; uninvited: number }> {
  const invited = (await sql.get<{ n: number }>(`SELECT count(*) AS n FROM mailman_invitations i WHERE i.list_id = ?
    AND EXISTS (SELECT 1 FROM mailman_roster r WHERE r.list_id = i.list_id AND r.address = i.address AND r.role = 'member')`, [listId]))!.n;
  const left = (await sql.get<{ n: number }>(`SELECT count(DISTINCT r.address) AS n FROM mailman_roster r WHERE r.list_id = ? AND r.role = 'member'
    AND NOT EXISTS (SELECT 1 FROM members m WHERE m.list_id = r.list_id AND m.address = r.address)
    AND NOT EXISTS (SELECT 1 FROM mailman_invitations i WHERE i.list_id = r.list_id AND i.address = r.address)`, [listId]))!.n;
  return { invited, uninvited: left };
}

export async function recordInvitation(sql: Sql, listId: number, address: string, at: number): Promise<void> {
  await sql.run('INSERT INTO mailman_invitations (list_id, address, invited_at) VALUES (?,?,?) ON CONFLICT DO NOTHING', [listId, address, at]);
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
export async function queueOutbox(sql: Sql, listId: number, address: string, op: OutboxRow['op'], at = Date.now()): Promise<void> {
  await sql.tx(async () => {
    await sql.run('DELETE FROM mailman_outbox WHERE list_id = ? AND address = ?', [listId, address.toLowerCase()]);
    await sql.run('INSERT INTO mailman_outbox (list_id, address, op, created_at) VALUES (?,?,?,?)', [listId, address.toLowerCase(), op, at]);
  });
}

export async function pendingOutbox(sql: Sql, limit = 100): Promise<OutboxRow[]> {
  return (await sql.all<{ id: number; list_id: number; address: string; op: OutboxRow['op']; attempts: number }>('SELECT id, list_id, address, op, attempts FROM mailman_outbox ORDER BY id LIMIT ?', [limit]))
    .map((r) => ({ id: r.id, listId: r.list_id, address: r.address, op: r.op, attempts: r.attempts }));
}

export async function countOutbox(sql: Sql, listId: number): Promise<number> {
  return (await sql.get<{ n: number }>('SELECT count(*) AS n FROM mailman_outbox WHERE list_id = ?', [listId]))!.n;
}

export async function doneOutbox(sql: Sql, id: number): Promise<void> {
  await sql.run('DELETE FROM mailman_outbox WHERE id = ?', [id]);
}

export async function failedOutbox(sql: Sql, id: number): Promise<void> {
  await sql.run('UPDATE mailman_outbox SET attempts = attempts + 1 WHERE id = ?', [id]);
}

/** Binds (or unbinds, with null) a Letterlock list to a Mailman list id. */
export async function setBinding(sql: Sql, listId: number, mailmanListId: string | null): Promise<void> {
  await sql.tx(async () => {
    await sql.run('UPDATE lists SET mailman_list_id = ? WHERE id = ?', [mailmanListId, listId]);
    if (mailmanListId === null) {
      await sql.run('DELETE FROM mailman_roster WHERE list_id = ?', [listId]);
      await sql.run('DELETE FROM mailman_state WHERE list_id = ?', [listId]);
    }
  });
}
