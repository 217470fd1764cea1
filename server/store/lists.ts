// Lists and their policies. Private keys are stored as armored OpenPGP keys that
// are passphrase-protected with the server secret; nothing here unlocks them.

import type { Sql } from './sql.ts';

export type PostPolicy = 'members' | 'moderated' | 'announce';

export interface ListRecord {
  id: number;
  address: string;
  owner: string | null;
  listFingerprint: string;
  listPublic: string;
  listPrivate: string;
  archiveFingerprint: string;
  archivePublic: string;
  archivePrivate: string;
  postPolicy: PostPolicy;
  posters: string[];
  requireSignature: boolean;
  maxBytes: number;
  /** Replay protection: signatures older than this many days are refused. */
  replayWindowDays: number;
  /** Copies never show a subject outside the encryption ("..."), even one the sender sent in clear. */
  hideSubjects: boolean;
  /** Where replies go: the list (the default, as a discussion list wants) or the author. */
  replyTo: 'author' | 'list';
  /** The Mailman list id this list is bound to (its roster and policy come from that Core); null: standalone. */
  mailmanListId?: string | null;
}

/** The replay window a new list gets. */
export const DEFAULT_REPLAY_WINDOW_DAYS = 7;
export const MAX_REPLAY_WINDOW_DAYS = 365;

interface Row {
  id: number; address: string; owner: string | null; list_fingerprint: string; list_public: string; list_private: string;
  archive_fingerprint: string; archive_public: string; archive_private: string; post_policy: PostPolicy; posters: string;
  require_signature: number; max_bytes: number; replay_window_days?: number; hide_subjects?: number; reply_to?: string; mailman_list_id?: string | null;
}

function fromRow(r: Row): ListRecord {
  return {
    id: r.id, address: r.address, owner: r.owner, listFingerprint: r.list_fingerprint, listPublic: r.list_public,
    listPrivate: r.list_private, archiveFingerprint: r.archive_fingerprint, archivePublic: r.archive_public,
    archivePrivate: r.archive_private, postPolicy: r.post_policy, posters: JSON.parse(r.posters) as string[],
    requireSignature: r.require_signature === 1, maxBytes: r.max_bytes, replayWindowDays: r.replay_window_days ?? DEFAULT_REPLAY_WINDOW_DAYS,
    hideSubjects: r.hide_subjects === 1, replyTo: r.reply_to === 'author' ? 'author' : 'list', mailmanListId: r.mailman_list_id ?? null,
  };
}

export type NewList = Omit<ListRecord, 'id' | 'replayWindowDays' | 'hideSubjects' | 'replyTo' | 'mailmanListId'> & { replayWindowDays?: number; hideSubjects?: boolean; replyTo?: 'author' | 'list' };

export async function insertList(sql: Sql, l: NewList): Promise<number> {
  return sql.tx(async () => {
    const r = await sql.get<{ id: number }>(`INSERT INTO lists (address, owner, list_fingerprint, list_public, list_private, archive_fingerprint,
      archive_public, archive_private, post_policy, posters, require_signature, max_bytes, created_at)
      VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, [l.address, l.owner, l.listFingerprint, l.listPublic, l.listPrivate,
      l.archiveFingerprint, l.archivePublic, l.archivePrivate, l.postPolicy, JSON.stringify(l.posters), l.requireSignature ? 1 : 0,
      l.maxBytes, Date.now()]);
    const id = Number(r!.id);
    if (l.replayWindowDays !== undefined) await sql.run('UPDATE lists SET replay_window_days = ? WHERE id = ?', [l.replayWindowDays, id]);
    if (l.hideSubjects !== undefined) await sql.run('UPDATE lists SET hide_subjects = ? WHERE id = ?', [l.hideSubjects ? 1 : 0, id]);
    // Always written: folders from 8c4e915 have the column with DEFAULT 'author' (migrations.ts, step 6).
    await sql.run('UPDATE lists SET reply_to = ? WHERE id = ?', [l.replyTo ?? 'list', id]);
    return id;
  });
}

export async function getList(sql: Sql, address: string): Promise<ListRecord | null> {
  const r = await sql.get<Row>('SELECT * FROM lists WHERE address = ?', [address.toLowerCase()]);
  return r ? fromRow(r) : null;
}

export async function getListById(sql: Sql, id: number): Promise<ListRecord | null> {
  const r = await sql.get<Row>('SELECT * FROM lists WHERE id = ?', [id]);
  return r ? fromRow(r) : null;
}

export async function allLists(sql: Sql): Promise<ListRecord[]> {
  return (await sql.all<Row>('SELECT * FROM lists ORDER BY address')).map(fromRow);
}

/** Lists whose address ends in this domain (exact, case-insensitive). */
export async function listAddressesInDomain(sql: Sql, domain: string): Promise<string[]> {
  const pattern = `%@${domain.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}`;
  return (await sql.all<{ address: string }>("SELECT address FROM lists WHERE lower(address) LIKE ? ESCAPE '\\'", [pattern])).map((r) => r.address);
}

export interface PolicyUpdate {
  postPolicy?: PostPolicy;
  posters?: string[];
  requireSignature?: boolean;
  maxBytes?: number;
  owner?: string | null;
  replayWindowDays?: number;
  hideSubjects?: boolean;
  replyTo?: 'author' | 'list';
}

export async function updatePolicy(sql: Sql, id: number, u: PolicyUpdate): Promise<void> {
  // Read and write in one transaction: a concurrent update of another field is not undone by this one.
  await sql.tx(async () => {
    const cur = await getListById(sql, id);
    if (!cur) throw new Error('no such list');
    await sql.run('UPDATE lists SET post_policy = ?, posters = ?, require_signature = ?, max_bytes = ?, owner = ? WHERE id = ?', [
      u.postPolicy ?? cur.postPolicy, JSON.stringify(u.posters ?? cur.posters), (u.requireSignature ?? cur.requireSignature) ? 1 : 0,
      u.maxBytes ?? cur.maxBytes, u.owner === undefined ? cur.owner : u.owner, id,
    ]);
    if (u.replayWindowDays !== undefined) await sql.run('UPDATE lists SET replay_window_days = ? WHERE id = ?', [u.replayWindowDays, id]);
    if (u.hideSubjects !== undefined) await sql.run('UPDATE lists SET hide_subjects = ? WHERE id = ?', [u.hideSubjects ? 1 : 0, id]);
    if (u.replyTo !== undefined) await sql.run('UPDATE lists SET reply_to = ? WHERE id = ?', [u.replyTo, id]);
  });
}
