// The SQLite database of one data folder: schema and connection settings.
// Only ciphertext, wrapped keys, addresses, public keys and metadata live here;
// no column ever holds a post's plaintext (DESIGN.md, rule 1).

import Database from 'better-sqlite3';
import { ensureMailmanSchema } from '../mailman/store.ts';
import { ensureBounceSchema } from './bounces.ts';
import { ensureRegistrySchema } from './registry.ts';
import { ensureReplaySchema } from './replay.ts';

export type Db = Database.Database;

/** SQLite refusing a write for a reason outside the data (disk full, I/O, busy, read-only): worth retrying. */
export function isStorageError(e: unknown): boolean {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|NOMEM|PROTOCOL)/.test(c);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS lists (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL UNIQUE,
  owner TEXT,
  list_fingerprint TEXT NOT NULL,
  list_public TEXT NOT NULL,
  list_private TEXT NOT NULL,      -- armored, encrypted under the server secret
  archive_fingerprint TEXT NOT NULL,
  archive_public TEXT NOT NULL,
  archive_private TEXT NOT NULL,   -- armored, encrypted under the server secret
  post_policy TEXT NOT NULL DEFAULT 'members' CHECK (post_policy IN ('members','moderated','announce')),
  posters TEXT NOT NULL DEFAULT '[]', -- JSON array of addresses (announce lists)
  require_signature INTEGER NOT NULL DEFAULT 1,
  max_bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS members (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  public_key TEXT NOT NULL,        -- armored, checked by the key policy when added
  encryption_key BLOB NOT NULL,    -- body of the encryption (sub)key packet, validated once
  expires_at INTEGER,              -- earliest expiry of primary and encryption key (ms), NULL: never
  key_state TEXT NOT NULL DEFAULT 'valid' CHECK (key_state IN ('valid','revoked')),
  added_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, address)
);

-- Every key ID of a member's key (primary and subkeys, 40-hex fingerprint and
-- 16-hex key ID), so a signature made by a signing subkey finds its member.
CREATE TABLE IF NOT EXISTS member_key_ids (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  key_id TEXT NOT NULL,
  PRIMARY KEY (list_id, address, fingerprint)
);
CREATE INDEX IF NOT EXISTS member_key_ids_lookup ON member_key_ids(list_id, key_id);

-- A held post is kept as the OpenPGP payload that arrived (encrypted to the list
-- key) plus the outer envelope facts; never the outer Subject or body text.
CREATE TABLE IF NOT EXISTS held (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  sender TEXT,
  envelope_from TEXT,
  payload BLOB NOT NULL,
  payload_armored INTEGER NOT NULL,
  outer TEXT NOT NULL,             -- JSON: from, message id, threading, date
  size INTEGER NOT NULL,
  reason TEXT NOT NULL,
  received_at INTEGER NOT NULL
);

-- One row per accepted post: the archive record and the shared body of every
-- queued copy (stored once). Only threading metadata beside the ciphertext.
CREATE TABLE IF NOT EXISTS posts (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  message_id TEXT,
  in_reply_to TEXT,
  refs TEXT NOT NULL DEFAULT '[]',
  date INTEGER,
  size INTEGER NOT NULL,
  body BLOB NOT NULL,              -- one SEIPD packet under the post's K
  archive_pkesk BLOB NOT NULL,     -- K wrapped to the archive key
  -- Fan-out state: K wrapped to the list key (never bare) lets wrapping resume
  -- after a crash; it is dropped once every member's row is queued.
  list_pkesk BLOB,
  wrap_after TEXT NOT NULL DEFAULT '', -- last member address wrapped
  wrap_done INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_list ON posts(list_id, id);

-- The outbound queue. A copy row holds one wrapped key (PKESK) and points at the
-- post body; notice/bounce/report rows hold a short content-free text mail.
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL,
  post_id INTEGER REFERENCES posts(id),
  kind TEXT NOT NULL CHECK (kind IN ('copy','notice','bounce','report')),
  rcpt TEXT NOT NULL,
  pkesk BLOB,
  mail BLOB,
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','claimed','sending','sent','failed','bounced')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  resent_after_crash INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_at, id);
CREATE INDEX IF NOT EXISTS deliveries_post ON deliveries(post_id, state);

-- Failures and missed posts the list owner has to hear about, sent in batches.
CREATE TABLE IF NOT EXISTS owner_reports (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL,
  rcpt TEXT NOT NULL,
  post_id INTEGER,
  reason TEXT NOT NULL,            -- a code and the relay's reply, never post content
  reported INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
`;

export function openDb(path: string): Db {
  const db = new Database(path);
  // WAL + synchronous=NORMAL: a commit survives a killed process (the crash the
  // queue must survive) without an fsync per delivered copy.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  ensureRegistrySchema(db); // the key registry's and archive's tables (registry.ts)
  addColumn(db, 'lists', 'replay_window_days', 'INTEGER NOT NULL DEFAULT 7'); // replay protection (replay.ts)
  // How copies show a post before it is opened (delivery/display.ts).
  addColumn(db, 'lists', 'hide_subjects', 'INTEGER NOT NULL DEFAULT 0');
  addColumn(db, 'lists', 'reply_to', "TEXT NOT NULL DEFAULT 'list'");
  addColumn(db, 'posts', 'display', 'BLOB'); // author name and clear subject, encrypted to the list key
  addColumn(db, 'posts', 'bare_text', 'INTEGER NOT NULL DEFAULT 0'); // signed content is not MIME: delivered inline
  // Operators are told (server/ops/): held notices and the owner's digest, each switchable per list; moderators beside the owner.
  addColumn(db, 'lists', 'notify_held', 'INTEGER NOT NULL DEFAULT 1');
  addColumn(db, 'lists', 'notify_digest', 'INTEGER NOT NULL DEFAULT 1');
  addColumn(db, 'lists', 'moderators', "TEXT NOT NULL DEFAULT '[]'");
  ensureReplaySchema(db);
  ensureBounceSchema(db);
  // Beside Mailman (issue 11): the Mailman list a list is bound to (NULL: standalone), and its roster tables.
  addColumn(db, 'lists', 'mailman_list_id', 'TEXT');
  ensureMailmanSchema(db);
  return db;
}

/** Migration for data folders made before a column existed: adds it once, with its default. */
function addColumn(db: Db, table: string, column: string, definition: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
}

export function getMeta(db: Db, key: string): string | null {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value ?? null;
}

export function setMeta(db: Db, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
}
