// The database schema as an ordered list of forward migrations. The number of
// the last step applied is kept in SQLite's PRAGMA user_version. A step is never
// edited once shipped: a change to the schema is a new step at the end.
//
// Steps 1-6 are the schemas the project shipped before it counted versions
// (commit in brackets; test/fixtures/schemas/ has a data folder of each). Those
// folders have user_version 0 and could be at any of them, so these six steps
// are idempotent (IF NOT EXISTS, a column added only if missing) and all run.
// Steps from 7 on run only on folders whose user_version is below them, and
// need not be idempotent.
//
// No step may put a post's plaintext into a column (DESIGN.md, rule 1).

import type Database from 'better-sqlite3';
import { ConfigError } from '../config/config.ts';

type Conn = Database.Database;

export interface Migration {
  version: number;
  /** What the step is for, in a few words (shown by nothing; for readers). */
  what: string;
  up(db: Conn): void;
}

/** A database written by a newer Letterlock: refused rather than guessed at. */
export class SchemaError extends ConfigError {
  override name = 'SchemaError';
  readonly code = 'SCHEMA_TOO_NEW';
}

/** Adds a column once, with its default (for the idempotent pre-version steps). */
function addColumn(db: Conn, table: string, column: string, definition: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
  if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
}

const BASE = `
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

const REGISTRY = `
CREATE TABLE IF NOT EXISTS list_settings (
  list_id INTEGER PRIMARY KEY REFERENCES lists(id) ON DELETE CASCADE,
  name TEXT,
  description TEXT,
  subscription TEXT NOT NULL DEFAULT 'open' CHECK (subscription IN ('open','moderated'))
);

CREATE TABLE IF NOT EXISTS pending_tokens (
  token_hash TEXT PRIMARY KEY,
  purpose TEXT NOT NULL CHECK (purpose IN ('subscribe','unsubscribe')),
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  fingerprint TEXT,
  public_key TEXT,
  delivery TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX IF NOT EXISTS pending_tokens_expiry ON pending_tokens(expires_at);

CREATE TABLE IF NOT EXISTS pending_members (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  public_key TEXT NOT NULL,
  delivery TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, address)
);

CREATE TABLE IF NOT EXISTS member_prefs (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  delivery TEXT NOT NULL CHECK (delivery IN ('pgp-mime','inline')),
  PRIMARY KEY (list_id, address)
);

CREATE TABLE IF NOT EXISTS challenges (
  id_hash TEXT PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  statement TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);

CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_member ON sessions(list_id, address);

CREATE TABLE IF NOT EXISTS request_nonces (
  list_id INTEGER NOT NULL,
  nonce TEXT NOT NULL,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, nonce)
);

CREATE TABLE IF NOT EXISTS key_warnings (
  list_id INTEGER NOT NULL,
  address TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  warned_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, address, fingerprint)
);

CREATE TABLE IF NOT EXISTS thread_roots (
  post_id INTEGER PRIMARY KEY REFERENCES posts(id) ON DELETE CASCADE,
  list_id INTEGER NOT NULL,
  root_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS thread_roots_list ON thread_roots(list_id, root_id);
`;

const RATE_LIMITS = `
CREATE INDEX IF NOT EXISTS pending_tokens_list ON pending_tokens(list_id, expires_at);
CREATE INDEX IF NOT EXISTS challenges_expiry ON challenges(expires_at);
CREATE INDEX IF NOT EXISTS request_nonces_seen ON request_nonces(seen_at);

-- The API's rate limits: one row per counted request per limit (a sliding
-- window). key is a keyed hash of the IP or address, never the value itself.
CREATE TABLE IF NOT EXISTS rate_events (
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  at INTEGER NOT NULL,
  until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_key ON rate_events(bucket, key, at);
CREATE INDEX IF NOT EXISTS rate_events_until ON rate_events(until);
`;

const MEMBER_KEY_IDS = `
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
`;

const REPLAY = `
CREATE TABLE IF NOT EXISTS seen_signatures (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  digest TEXT NOT NULL,            -- hex SHA-256 of the verified signature packet
  signed_at INTEGER NOT NULL,      -- the signature's creation time (ms)
  post_id INTEGER,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, digest)
);
CREATE INDEX IF NOT EXISTS seen_signatures_age ON seen_signatures(list_id, signed_at);
CREATE INDEX IF NOT EXISTS posts_message_id ON posts(list_id, message_id);
`;

const MAILMAN = `
CREATE TABLE IF NOT EXISTS mailman_roster (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('member','owner','moderator','nonmember')),
  delivery_enabled INTEGER NOT NULL DEFAULT 1,
  moderation_action TEXT,
  PRIMARY KEY (list_id, address, role)
);

CREATE TABLE IF NOT EXISTS mailman_state (
  list_id INTEGER PRIMARY KEY REFERENCES lists(id) ON DELETE CASCADE,
  default_member_action TEXT NOT NULL DEFAULT 'defer',
  default_nonmember_action TEXT NOT NULL DEFAULT 'hold',
  subscription_policy TEXT NOT NULL DEFAULT 'confirm',
  emergency INTEGER NOT NULL DEFAULT 0,
  nonmember_lists TEXT NOT NULL DEFAULT '{}', -- JSON: accept/hold/reject/discard_these_nonmembers
  synced_at INTEGER,                           -- last complete roster read (ms)
  attempted_at INTEGER,
  last_error TEXT                              -- a MailmanError code, no free text
);

CREATE TABLE IF NOT EXISTS mailman_outbox (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('subscribe','unsubscribe')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS mailman_key_notices (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  noticed_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, address)
);

CREATE TABLE IF NOT EXISTS mailman_invitations (
  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
  address TEXT NOT NULL,
  invited_at INTEGER NOT NULL,
  PRIMARY KEY (list_id, address)
);
`;

const BOUNCES = `
CREATE TABLE IF NOT EXISTS bounce_log (
  id INTEGER PRIMARY KEY,
  list_id INTEGER NOT NULL,
  rcpt TEXT NOT NULL,
  sent_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bounce_log_rcpt ON bounce_log(rcpt, sent_at);
CREATE INDEX IF NOT EXISTS bounce_log_list ON bounce_log(list_id, sent_at);
`;

/** PostgreSQL's step 2 (migrations-pg.ts) in SQLite's types: who claimed a row in flight and until when; periodic job runs. */
export const SQLITE_LEASE_STEP = `
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;
CREATE TABLE job_runs (
  name TEXT PRIMARY KEY,
  node TEXT,
  started_at INTEGER NOT NULL,
  finished_at INTEGER
);
`;

/** PostgreSQL's step 3: which node is wrapping a post, and until when. */
export const SQLITE_WRAP_LEASE_STEP = `
ALTER TABLE posts ADD COLUMN wrap_owner TEXT;
ALTER TABLE posts ADD COLUMN wrap_until INTEGER;
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, what: 'lists, members, held posts, posts, queue, owner reports [16cfc1f]', up: (db) => db.exec(BASE) },
  { version: 2, what: 'key registry and archive access [7603d95]', up: (db) => db.exec(REGISTRY) },
  { version: 3, what: 'HTTP rate limits, purge indexes [4c87578]', up: (db) => db.exec(RATE_LIMITS) },
  { version: 4, what: 'member key IDs for subkey signatures [80e406d]', up: (db) => db.exec(MEMBER_KEY_IDS) },
  {
    version: 5,
    what: 'replay protection and bounce counts [386727b]',
    up: (db) => {
      addColumn(db, 'lists', 'replay_window_days', 'INTEGER NOT NULL DEFAULT 7');
      db.exec(REPLAY);
      db.exec(BOUNCES);
    },
  },
  {
    version: 6,
    what: 'how copies show a post before it is opened [8c4e915, c7f9740]',
    up: (db) => {
      addColumn(db, 'lists', 'hide_subjects', 'INTEGER NOT NULL DEFAULT 0');
      // 8c4e915 added this column with DEFAULT 'author'; folders from then keep
      // that default, so lists.ts writes reply_to explicitly on insert.
      addColumn(db, 'lists', 'reply_to', "TEXT NOT NULL DEFAULT 'list'");
      addColumn(db, 'posts', 'display', 'BLOB'); // author name and clear subject, encrypted to the list key
      addColumn(db, 'posts', 'bare_text', 'INTEGER NOT NULL DEFAULT 0'); // signed content is not MIME: delivered inline
    },
  },
  {
    version: 7,
    what: 'operators are told: held notices and the owner digest per list, moderators beside the owner',
    // addColumn, not ALTER: folders written between the ops work and the
    // version count already have these columns at user_version 0.
    up: (db) => {
      addColumn(db, 'lists', 'notify_held', 'INTEGER NOT NULL DEFAULT 1');
      addColumn(db, 'lists', 'notify_digest', 'INTEGER NOT NULL DEFAULT 1');
      addColumn(db, 'lists', 'moderators', "TEXT NOT NULL DEFAULT '[]'");
    },
  },
  {
    version: 8,
    what: 'beside Mailman 3: the Mailman list a list is bound to, its roster, settings, outbox, key notices and invitations',
    up: (db) => {
      addColumn(db, 'lists', 'mailman_list_id', 'TEXT'); // NULL: a standalone list
      db.exec(MAILMAN);
    },
  },
  {
    version: 9,
    what: 'posts keep the outer Message-ID beside the signed one they go by (duplicates are found by the outer one)',
    up: (db) => {
      addColumn(db, 'posts', 'outer_message_id', 'TEXT'); // NULL: message_id is the outer one (posts before step 9)
      db.exec('CREATE INDEX IF NOT EXISTS posts_outer_message_id ON posts(list_id, outer_message_id)');
    },
  },
  {
    version: 10,
    what: 'several nodes: delivery claims under a lease, periodic job runs (PostgreSQL step 2)',
    up: (db) => db.exec(SQLITE_LEASE_STEP),
  },
  {
    version: 11,
    what: "several nodes: a post's fan-out under one node's lease (PostgreSQL step 3)",
    up: (db) => db.exec(SQLITE_WRAP_LEASE_STEP),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function schemaVersion(db: Conn): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database to SCHEMA_VERSION, one step per transaction (a step that
 * fails leaves the folder at the step before it, and the error is thrown).
 * BEGIN IMMEDIATE: a second process opening the folder at the same time waits
 * (busy_timeout) and then finds the work done.
 */
export function migrate(db: Conn, steps: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  const latest = steps[steps.length - 1]!.version;
  const from = schemaVersion(db);
  if (from > latest) throw tooNew(from, latest);
  // The usual case: nothing to do, and no write lock taken (a running server may be writing).
  if (from === latest) return { from, to: from };
  for (const step of steps) {
    db.transaction(() => {
      const now = schemaVersion(db);
      if (now > latest) throw tooNew(now, latest);
      if (now >= step.version) return;
      step.up(db);
      db.pragma(`user_version = ${step.version}`);
    }).immediate();
  }
  return { from, to: schemaVersion(db) };
}

function tooNew(found: number, latest: number): SchemaError {
  return new SchemaError(`the database has schema version ${found}, newer than this Letterlock knows (${latest}): run the newer Letterlock that wrote it, or restore a backup made before the upgrade`);
}
