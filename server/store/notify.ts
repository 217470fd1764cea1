// Who hears about a list's operation and what they hear: the per-list switches
// for held-post notices and the owner's digest (both on by default), and the
// list's moderators beside its owner. Columns of `lists` (db.ts addColumn).

import type { Db } from './db.ts';

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

export function getNotifySettings(db: Db, listId: number): NotifySettings {
  const r = db.prepare('SELECT notify_held, notify_digest, moderators FROM lists WHERE id = ?').get(listId) as
    { notify_held: number; notify_digest: number; moderators: string } | undefined;
  if (!r) return { held: false, digest: false, moderators: [] };
  return { held: r.notify_held === 1, digest: r.notify_digest === 1, moderators: parseModerators(r.moderators) };
}

export function setNotifySettings(db: Db, listId: number, s: Partial<NotifySettings>): NotifySettings {
  if (s.held !== undefined) db.prepare('UPDATE lists SET notify_held = ? WHERE id = ?').run(s.held ? 1 : 0, listId);
  if (s.digest !== undefined) db.prepare('UPDATE lists SET notify_digest = ? WHERE id = ?').run(s.digest ? 1 : 0, listId);
  if (s.moderators !== undefined) {
    if (s.moderators.length > MAX_MODERATORS) throw new Error(`a list has at most ${MAX_MODERATORS} moderators`);
    const unique = [...new Set(s.moderators.map((a) => a.trim().toLowerCase()))];
    const bad = unique.find((a): boolean => !isAddress(a));
    if (bad !== undefined) throw new Error(`not a valid moderator address: ${JSON.stringify(bad.slice(0, 100))}`);
    db.prepare('UPDATE lists SET moderators = ? WHERE id = ?').run(JSON.stringify(unique), listId);
  }
  return getNotifySettings(db, listId);
}

/**
 * The key to encrypt an operator notice to: the one registered for that address
 * on this list, else on another list of this server (an owner need not be
 * subscribed to the list they own). Only valid, unexpired keys; the newest wins.
 */
export function registeredKeyOf(db: Db, listId: number, address: string, now = Date.now()): { publicKey: string; fingerprint: string } | null {
  const r = db.prepare(`SELECT public_key, fingerprint FROM members WHERE address = ? AND key_state = 'valid' AND (expires_at IS NULL OR expires_at > ?)
    ORDER BY (list_id = ?) DESC, added_at DESC LIMIT 1`).get(address.toLowerCase(), now, listId) as { public_key: string; fingerprint: string } | undefined;
  return r ? { publicKey: r.public_key, fingerprint: r.fingerprint } : null;
}
