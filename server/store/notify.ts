// Who hears about a list's operation and what they hear: the per-list switches
// for held-post notices and the owner's digest (both on by default), and the
// list's moderators beside its owner. Columns of `lists` (db.ts addColumn).

import type { Sql } from './sql.ts';

/** A bound on the moderators of one list: each held post costs one encryption per moderator. */
export const MAX_MODERATORS = 50;

export interface NotifySettings {
  /** Moderators (and the owner) get a signed, encrypted notice for each held post. */
  held: boolean;
  /** The owner gets the periodic digest (delivery failures, expiring keys, held posts waiting). */
  digest: boolean;
  /** Addresses beside the owner that moderate the list (lower case). */
  moderators: string[];
}

/** The address rule of lists/lists.ts normalizeAddress: these addresses go into mail headers. */
export function isAddress(a: unknown): a is string {
  return typeof a === 'string' && a.length <= 254 && /^[^\s@<>"(),;:]+@[a-z0-9.-]+$/.test(a);
}

function parseModerators(json: string | null | undefined): string[] {
  try {
    const v = JSON.parse(json ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter(isAddress).slice(0, MAX_MODERATORS) : [];
  } catch {
    return [];
  }
}

export async function getNotifySettings(sql: Sql, listId: number): Promise<NotifySettings> {
  const r = await sql.get<{ notify_held: number; notify_digest: number; moderators: string }>('SELECT notify_held, notify_digest, moderators FROM lists WHERE id = ?', [listId]);
  if (!r) return { held: false, digest: false, moderators: [] };
  return { held: r.notify_held === 1, digest: r.notify_digest === 1, moderators: parseModerators(r.moderators) };
}

export async function setNotifySettings(sql: Sql, listId: number, s: Partial<NotifySettings>): Promise<NotifySettings> {
  let moderators: string[] | undefined;
  if (s.moderators !== undefined) {
    if (s.moderators.length > MAX_MODERATORS) throw new Error(`a list has at most ${MAX_MODERATORS} moderators`);
    const unique = [...new Set(s.moderators.map((a) => a.trim().toLowerCase()))];
    const bad = unique.find((a): boolean => !isAddress(a));
    if (bad !== undefined) throw new Error(`not a valid moderator address: ${JSON.stringify(bad.slice(0, 100))}`);
    moderators = unique;
  }
  return sql.tx(async () => {
    if (s.held !== undefined) await sql.run('UPDATE lists SET notify_held = ? WHERE id = ?', [s.held ? 1 : 0, listId]);
    if (s.digest !== undefined) await sql.run('UPDATE lists SET notify_digest = ? WHERE id = ?', [s.digest ? 1 : 0, listId]);
    if (moderators !== undefined) await sql.run('UPDATE lists SET moderators = ? WHERE id = ?', [JSON.stringify(moderators), listId]);
    return getNotifySettings(sql, listId);
  });
}

/**
 * The key to encrypt an operator notice to: the one registered for that address
 * on this list, else on another list of this server (an owner need not be
 * subscribed to the list they own). Only valid, unexpired keys; the newest wins.
 */
export async function registeredKeyOf(sql: Sql, listId: number, address: string, now = Date.now()): Promise<{ publicKey: string; fingerprint: string } | null> {
  const r = await sql.get<{ public_key: string; fingerprint: string }>(`SELECT public_key, fingerprint FROM members WHERE address = ? AND key_state = 'valid' AND (expires_at IS NULL OR expires_at > ?)
    ORDER BY CASE WHEN list_id = ? THEN 1 ELSE 0 END DESC, added_at DESC LIMIT 1`, [address.toLowerCase(), now, listId]);
  return r ? { publicKey: r.public_key, fingerprint: r.fingerprint } : null;
}
