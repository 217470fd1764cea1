// `letterlock backup` and `letterlock restore`, as functions.
//
// A backup is one OpenPGP message encrypted to the operator's public key. Inside
// is a tar (server/ops/tar.ts) of what a data folder needs to run:
//   letterlock-backup.json  manifest: format, time, schema version, SHA-256 of each file
//   letterlock.db           a consistent copy made with SQLite's online backup API
//   letterlock.json         the configuration, if the folder has one
//   secret                  the server secret file, if the folder has one
// so `gpg --decrypt FILE | tar -x` recovers it by hand. Not inside: logs, the
// Maildir of the demo relay, the admin token (made again at start).
//
// Where the plaintext copy lives: SQLite's backup API writes to a file, so the
// copy is made in a private folder (mode 0700, file 0600) inside the data folder
// itself, read into memory and removed at once (in `finally`; a copy left by a
// killed run is swept by the next backup). The data folder already holds the
// same data under the same protection, so the copy exposes nothing new, while
// a shared /tmp or another disk would. The database holds no post plaintext, but
// does hold list and archive keys encrypted under the server secret, and the
// secret file is in the bundle: hence the encryption to the operator's key.
//
// Everything is held in memory (the DB, the bundle, its ciphertext): a data
// folder above MAX_DB_BYTES is refused with a clear error rather than tried.

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as openpgp from 'openpgp';
import { DB_FILE } from '../app.ts';
import { CONFIG_FILE, parseConfig } from '../config/config.ts';
import { defaultSecretFile, readSecretFile, SECRET_ENV, verifySecret } from '../config/secret.ts';
import { openDb } from '../store/db.ts';
import { isPostgresUrl } from '../store/open.ts';
import { SCHEMA_VERSION } from '../store/migrations.ts';
import { packTar, TarError, unpackTar, type TarEntry } from './tar.ts';

export const MANIFEST = 'letterlock-backup.json';
export const BACKUP_FORMAT = 'letterlock-backup';
/** The largest database a backup takes (everything is in memory, three copies at most). */
export const MAX_DB_BYTES = 1024 * 1024 * 1024;
const MAX_KEY_FILE_BYTES = 1024 * 1024;
const MAX_SMALL_FILE_BYTES = 1024 * 1024;
/** Left-over snapshot folders older than this are from a killed run. */
const STALE_SNAPSHOT_MS = 3_600_000;

export type BackupCode =
  | 'NOT_INITIALIZED' | 'KEY_UNREADABLE' | 'KEY_IS_SECRET' | 'KEY_NOT_SECRET' | 'KEY_CANNOT_ENCRYPT' | 'KEY_LOCKED' | 'BAD_PASSPHRASE'
  | 'OUT_EXISTS' | 'WRITE_FAILED' | 'TOO_LARGE' | 'DB_DAMAGED' | 'NOT_A_BACKUP' | 'WRONG_KEY' | 'CORRUPT' | 'NOT_EMPTY' | 'SCHEMA_TOO_NEW' | 'CONFIG_INVALID'
  | 'POSTGRES';

/** A refusal with a stable code and a sentence the operator can act on. */
export class BackupError extends Error {
  override name = 'BackupError';
  constructor(readonly code: BackupCode, message: string) {
    super(message);
  }
}

interface ManifestFile { name: string; bytes: number; sha256: string }
interface Manifest { format: typeof BACKUP_FORMAT; version: 1; createdAt: string; schemaVersion: number; files: ManifestFile[] }

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function readBounded(path: string, max: number, what: string, code: BackupCode): Buffer {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new BackupError(code, `${what} ${path} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof BackupError) throw e;
    throw new BackupError(code, `${what} ${path} cannot be read (${(e as { code?: string }).code ?? 'error'})`);
  }
  if (size > max) throw new BackupError('TOO_LARGE', `${what} ${path} is larger than ${max} bytes`);
  return readFileSync(path);
}

const isArmored = (b: Uint8Array) => Buffer.from(b.subarray(0, 64)).toString('latin1').trimStart().startsWith('-----BEGIN PGP');

async function readAnyKey(path: string): Promise<openpgp.Key> {
  const bytes = readBounded(path, MAX_KEY_FILE_BYTES, 'the key file', 'KEY_UNREADABLE');
  try {
    return isArmored(bytes) ? await openpgp.readKey({ armoredKey: bytes.toString('utf8') }) : await openpgp.readKey({ binaryKey: bytes });
  } catch {
    throw new BackupError('KEY_UNREADABLE', `${path} is not an OpenPGP key (export one with: gpg --export --armor YOUR-ID > ${basename(path)})`);
  }
}

/**
 * Whether the folder's database is PostgreSQL (its `database` setting, or
 * LETTERLOCK_DATABASE): backup and restore copy a SQLite file and nothing else.
 * The URL is never repeated (it may carry a password).
 */
/** The folder's `database` setting (LETTERLOCK_DATABASE first), if any; read raw, as the server would. */
function databaseSetting(dataDir: string): string | undefined {
  const env = process.env.LETTERLOCK_DATABASE;
  if (env) return env;
  try {
    const raw = JSON.parse(readFileSync(join(dataDir, CONFIG_FILE), 'utf8')) as { database?: unknown };
    return typeof raw.database === 'string' && raw.database !== '' ? raw.database : undefined;
  } catch {
    return undefined; // no or unreadable config: the SQLite default (an unreadable one is reported further on)
  }
}

function onPostgres(dataDir: string): boolean {
  const d = databaseSetting(dataDir);
  return d !== undefined && isPostgresUrl(d);
}

/** The SQLite file the server uses: the `database` setting (relative to the folder), else letterlock.db. */
function sqliteFile(dataDir: string): string {
  const d = databaseSetting(dataDir);
  return d === undefined ? join(dataDir, DB_FILE) : resolve(dataDir, d);
}

const PG_BACKUP = 'back the database up with PostgreSQL\'s own tools (pg_dump -Fc, restored with pg_restore), and keep letterlock.json and the server secret with that dump: the database cannot be used without the secret';

// ---- backup -------------------------------------------------------------------

export interface BackupOptions {
  dataDir: string;
  /** The operator's OpenPGP public key file (armored or binary). */
  to: string;
  /** Where to write; default letterlock-backup-<UTC time>.pgp in the working folder. Never overwritten. */
  out?: string;
  now?: Date;
}

export interface BackupResult {
  file: string;
  bytes: number;
  dbBytes: number;
  schemaVersion: number;
  /** The operator key's fingerprint. */
  recipient: string;
  files: string[];
  /** Things the operator must know (e.g. the secret is not inside). */
  notes: string[];
}

export function defaultBackupName(now: Date): string {
  return `letterlock-backup-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.pgp`;
}

/** Removes snapshot folders a killed backup left behind (their names say what they are). */
function sweepSnapshots(dataDir: string, now: number): void {
  for (const name of readdirSync(dataDir)) {
    if (!name.startsWith('.backup-')) continue;
    const p = join(dataDir, name);
    try {
      if (now - statSync(p).mtimeMs > STALE_SNAPSHOT_MS) rmSync(p, { recursive: true, force: true });
    } catch { /* gone already */ }
  }
}

/** A consistent copy of the live database (the server may keep running), checked, as bytes. */
async function snapshot(dataDir: string): Promise<{ db: Buffer; schemaVersion: number }> {
  const live = sqliteFile(dataDir);
  if (!existsSync(live)) throw new BackupError('NOT_INITIALIZED', `${live} does not exist (is ${dataDir} a Letterlock data folder? see: letterlock init)`);
  if (statSync(live).size > MAX_DB_BYTES) throw new BackupError('TOO_LARGE', `${live} is larger than ${MAX_DB_BYTES} bytes: copy it with sqlite3's .backup and encrypt it with gpg instead`);
  sweepSnapshots(dataDir, Date.now());
  const dir = mkdtempSync(join(dataDir, '.backup-')); // mode 0700
  const copy = join(dir, DB_FILE);
  try {
    writeFileSync(copy, '', { mode: 0o600, flag: 'wx' }); // SQLite keeps the mode of a file it finds
    const src = new Database(live, { fileMustExist: true });
    try {
      src.pragma('busy_timeout = 5000');
      // All pages in one step: a step-wise copy restarts whenever the server writes.
      await src.backup(copy, { progress: () => 1 << 30 });
    } finally {
      src.close();
    }
    const db = new Database(copy);
    let schemaVersion: number;
    try {
      db.pragma('journal_mode = DELETE'); // one self-contained file, no -wal beside it
      const check = db.pragma('integrity_check', { simple: true });
      if (check !== 'ok') throw new BackupError('DB_DAMAGED', `${live} fails SQLite's integrity check (${String(check).slice(0, 200)}): no backup was written`);
      schemaVersion = db.pragma('user_version', { simple: true }) as number;
    } finally {
      db.close();
    }
    return { db: readFileSync(copy), schemaVersion };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') throw new BackupError('DB_DAMAGED', `${live} is damaged (${code}): no backup was written`);
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function backup(o: BackupOptions): Promise<BackupResult> {
  const dataDir = resolve(o.dataDir);
  const now = o.now ?? new Date();
  const key = await readAnyKey(o.to);
  if (key.isPrivate()) {
    throw new BackupError('KEY_IS_SECRET', `${o.to} holds a secret key: give the public key (gpg --export --armor YOUR-ID), and keep the secret key away from the server`);
  }
  try {
    await key.getEncryptionKey();
  } catch {
    throw new BackupError('KEY_CANNOT_ENCRYPT', `the key in ${o.to} has no usable encryption key (expired or revoked?)`);
  }
  const out = resolve(o.out ?? defaultBackupName(now));
  if (existsSync(out)) throw new BackupError('OUT_EXISTS', `${out} exists: a backup never overwrites a file (choose another --out)`);

  if (onPostgres(dataDir)) {
    throw new BackupError('POSTGRES', `${dataDir} keeps its data in PostgreSQL (its database setting), and letterlock backup copies a SQLite database only: ${PG_BACKUP}`);
  }
  const notes: string[] = [];
  const { db, schemaVersion } = await snapshot(dataDir);
  const files: TarEntry[] = [{ name: DB_FILE, data: db }];
  const configPath = join(dataDir, CONFIG_FILE);
  if (existsSync(configPath)) files.push({ name: CONFIG_FILE, data: readBounded(configPath, MAX_SMALL_FILE_BYTES, 'the config', 'CONFIG_INVALID') });
  let secretFile = defaultSecretFile(dataDir);
  try {
    const raw = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as { secretFile?: unknown }) : {};
    if (typeof raw.secretFile === 'string') secretFile = resolve(dataDir, raw.secretFile);
  } catch { /* an unreadable config is copied as it is; the server reports it at start */ }
  let secret: Buffer | null = null;
  if (existsSync(secretFile)) {
    readSecretFile(secretFile); // refuses a group- or world-readable file, as the server does
    secret = readFileSync(secretFile);
    files.push({ name: 'secret', data: secret });
  } else {
    notes.push(`the server secret is not in this backup (no file ${secretFile}${process.env[SECRET_ENV] ? `; it comes from ${SECRET_ENV}` : ''}): keep it with the backup, the database cannot be used without it`);
  }

  const manifest: Manifest = {
    format: BACKUP_FORMAT, version: 1, createdAt: now.toISOString(), schemaVersion,
    files: files.map((f) => ({ name: f.name, bytes: f.data.length, sha256: sha256(f.data) })),
  };
  const bundle = packTar([{ name: MANIFEST, data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }, ...files], now.getTime());
  let sealed: Uint8Array;
  try {
    sealed = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: bundle, format: 'binary' }), encryptionKeys: key, format: 'binary' });
  } finally {
    // The bundle holds the secret in clear: not left for the garbage collector to keep.
    bundle.fill(0);
    secret?.fill(0);
  }
  const part = `${out}.part`;
  try {
    writeFileSync(part, sealed, { mode: 0o600, flag: 'wx' });
    renameSync(part, out);
  } catch (e) {
    rmSync(part, { force: true });
    const code = (e as { code?: string }).code;
    throw new BackupError(code === 'EEXIST' ? 'OUT_EXISTS' : 'WRITE_FAILED', `cannot write ${code === 'EEXIST' ? part : out} (${code ?? 'error'})`);
  }
  return {
    file: out, bytes: sealed.length, dbBytes: db.length, schemaVersion, recipient: key.getFingerprint().toUpperCase(),
    files: files.map((f) => f.name), notes,
  };
}

// ---- restore ------------------------------------------------------------------

export interface RestoreOptions {
  /** The backup file (binary or armored OpenPGP). */
  file: string;
  /** The operator's secret key file. */
  key: string;
  /** For a passphrase-protected key. */
  passphrase?: string;
  dataDir: string;
  /** Replace the database, config and secret of a folder that is not empty (the server must be stopped). */
  force?: boolean;
}

export interface RestoreResult {
  dataDir: string;
  createdAt: string;
  /** The schema version in the backup, and after the forward migrations. */
  schemaFrom: number;
  schemaTo: number;
  files: string[];
  notes: string[];
}

async function readSecretKey(path: string, passphrase: string | undefined): Promise<openpgp.PrivateKey> {
  const key = await readAnyKey(path);
  if (!key.isPrivate()) throw new BackupError('KEY_NOT_SECRET', `${path} holds a public key: restoring needs the secret key the backup was encrypted to`);
  if (key.isDecrypted()) return key;
  if (passphrase === undefined) throw new BackupError('KEY_LOCKED', `the key in ${path} is protected by a passphrase: give it (--passphrase-file FILE)`);
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch {
    throw new BackupError('BAD_PASSPHRASE', `the passphrase does not unlock the key in ${path}`);
  }
}

/** Opens the backup and checks it is whole: right key, intact ciphertext, intact bundle. */
async function openBackup(file: string, key: openpgp.PrivateKey): Promise<{ manifest: Manifest; files: Map<string, Uint8Array>; bundle: Uint8Array }> {
  const bytes = readBounded(file, MAX_DB_BYTES + 16 * 1024 * 1024, 'the backup', 'NOT_A_BACKUP');
  let message: openpgp.Message<Uint8Array>;
  try {
    message = isArmored(bytes)
      ? await openpgp.readMessage({ armoredMessage: bytes.toString('utf8') }) as openpgp.Message<Uint8Array>
      : await openpgp.readMessage({ binaryMessage: bytes });
  } catch {
    throw new BackupError('NOT_A_BACKUP', `${file} is not an OpenPGP message (damaged, or not a Letterlock backup)`);
  }
  const mine = new Set(key.getKeys().map((k) => k.getKeyID().toHex()));
  const theirs = message.getEncryptionKeyIDs().map((id) => id.toHex());
  if (!theirs.some((id) => mine.has(id) || id === '0000000000000000')) {
    throw new BackupError('WRONG_KEY', `${file} is encrypted to key ID ${theirs.join(', ') || '(none)'}, not to the key given (${key.getFingerprint().toUpperCase()})`);
  }
  let bundle: Uint8Array;
  try {
    bundle = (await openpgp.decrypt({ message, decryptionKeys: key, format: 'binary' })).data as Uint8Array;
  } catch {
    throw new BackupError('CORRUPT', `${file} does not decrypt (the file is damaged, or the key is not the one it was made for)`);
  }
  let entries: TarEntry[];
  try {
    entries = unpackTar(bundle, 8);
  } catch (e) {
    bundle.fill(0);
    throw new BackupError('CORRUPT', `${file}: the decrypted bundle is damaged (${e instanceof TarError ? e.message : 'unreadable'})`);
  }
  const files = new Map(entries.map((e) => [e.name, e.data]));
  let manifest: Manifest;
  try {
    manifest = JSON.parse(Buffer.from(files.get(MANIFEST) ?? []).toString('utf8')) as Manifest;
  } catch {
    throw new BackupError('NOT_A_BACKUP', `${file} has no readable ${MANIFEST}: not a Letterlock backup`);
  }
  if (manifest?.format !== BACKUP_FORMAT || manifest.version !== 1 || !Array.isArray(manifest.files)) {
    throw new BackupError('NOT_A_BACKUP', `${file} is not a Letterlock backup of a format this version reads`);
  }
  for (const f of manifest.files) {
    const data = files.get(f.name);
    if (!data || data.length !== f.bytes || sha256(data) !== f.sha256) throw new BackupError('CORRUPT', `${file}: ${f.name} does not match its checksum`);
  }
  if (!manifest.files.some((f) => f.name === DB_FILE)) throw new BackupError('NOT_A_BACKUP', `${file} holds no database`);
  return { manifest, files, bundle };
}

const REPLACED = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`, CONFIG_FILE, 'secret'];

export async function restore(o: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(o.dataDir);
  const existed = existsSync(dataDir);
  if (existed) {
    if (!statSync(dataDir).isDirectory()) throw new BackupError('NOT_EMPTY', `${dataDir} is not a folder`);
    if (readdirSync(dataDir).length && !o.force) {
      throw new BackupError('NOT_EMPTY', `${dataDir} is not empty: restore into a new folder, or add --force to replace its database, config and secret (stop the server first)`);
    }
  }
  // The backup holds a SQLite file; a folder set to PostgreSQL would go on using the
  // PostgreSQL database and silently ignore what was restored.
  if (onPostgres(dataDir)) {
    throw new BackupError('POSTGRES', `${dataDir} keeps its data in PostgreSQL (its database setting${process.env.LETTERLOCK_DATABASE ? ' or LETTERLOCK_DATABASE' : ''}), and letterlock restore writes a SQLite database only: restore into a folder without that setting, or restore a PostgreSQL dump with pg_restore and put letterlock.json and the server secret back beside it`);
  }
  const key = await readSecretKey(o.key, o.passphrase);
  const { manifest, files, bundle } = await openBackup(o.file, key);
  const notes: string[] = [];

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const staging = mkdtempSync(join(dataDir, '.restore-'));
  const staged: string[] = [];
  try {
    // The database: whole, and of a schema this version can run.
    const dbPath = join(staging, DB_FILE);
    writeFileSync(dbPath, files.get(DB_FILE)!, { mode: 0o600 });
    staged.push(DB_FILE);
    let schemaFrom: number;
    let verifier: string | undefined;
    try {
      const db = new Database(dbPath, { fileMustExist: true });
      try {
        const check = db.pragma('integrity_check', { simple: true });
        if (check !== 'ok') throw new BackupError('CORRUPT', `the database in ${o.file} fails SQLite's integrity check (${String(check).slice(0, 200)})`);
        schemaFrom = db.pragma('user_version', { simple: true }) as number;
        verifier = (db.prepare("SELECT value FROM meta WHERE key = 'secret_verifier'").get() as { value: string } | undefined)?.value;
      } finally {
        db.close();
      }
    } catch (e) {
      if (e instanceof BackupError) throw e;
      throw new BackupError('CORRUPT', `the database in ${o.file} cannot be read (${(e as { code?: string }).code ?? 'error'})`);
    }
    if (schemaFrom > SCHEMA_VERSION) {
      throw new BackupError('SCHEMA_TOO_NEW', `the backup's database has schema version ${schemaFrom}, newer than this Letterlock knows (${SCHEMA_VERSION}): restore it with the Letterlock that made it, or a newer one`);
    }

    const secret = files.get('secret');
    const configBytes = files.get(CONFIG_FILE);
    if (configBytes) {
      let config: Record<string, unknown>;
      try {
        config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as Record<string, unknown>;
        parseConfig(config, CONFIG_FILE);
      } catch (e) {
        throw new BackupError('CONFIG_INVALID', `the configuration in ${o.file} is not valid for this Letterlock (${(e as Error).message.slice(0, 300)})`);
      }
      let rewritten = false;
      if (secret && typeof config.secretFile === 'string') {
        // The secret goes into the restored folder; a path from the old machine would not find it.
        notes.push(`the secret file was at ${config.secretFile}; it is restored as ${join(dataDir, 'secret')} and secretFile is removed from ${CONFIG_FILE}`);
        delete config.secretFile;
        rewritten = true;
      }
      if (typeof config.database === 'string') {
        // The database is restored as DATA/letterlock.db; a setting naming another file
        // would have the server open that file instead and ignore what was restored.
        notes.push(`the database was at ${config.database}; it is restored as ${join(dataDir, DB_FILE)} and database is removed from ${CONFIG_FILE}`);
        delete config.database;
        rewritten = true;
      }
      if (rewritten) {
        writeFileSync(join(staging, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
      } else {
        writeFileSync(join(staging, CONFIG_FILE), configBytes, { mode: 0o600 });
      }
      staged.push(CONFIG_FILE);
    }
    if (secret) {
      writeFileSync(join(staging, 'secret'), secret, { mode: 0o600 });
      staged.push('secret');
      if (verifier && !verifySecret(Buffer.from(secret).toString('utf8').trim(), verifier)) {
        notes.push('the secret file in the backup does not match its database: the server will need the right secret (LETTERLOCK_SECRET)');
      }
    } else {
      notes.push(`the backup holds no secret file: start the server with the secret it ran with (${SECRET_ENV} or a mode-0600 file)`);
    }

    // Into place: stale WAL files of a replaced database would be replayed into the restored one.
    for (const name of REPLACED) rmSync(join(dataDir, name), { force: true });
    for (const name of staged) renameSync(join(staging, name), join(dataDir, name));
    chmodSync(dataDir, 0o700);

    // Older schemas move forward now, so a problem shows here rather than at start.
    const db = openDb(join(dataDir, DB_FILE));
    const schemaTo = db.pragma('user_version', { simple: true }) as number;
    db.close();
    return { dataDir, createdAt: manifest.createdAt, schemaFrom, schemaTo, files: staged, notes };
  } catch (e) {
    if (!existed) {
      rmSync(dataDir, { recursive: true, force: true });
    }
    throw e;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    bundle.fill(0); // it holds the secret file in clear
  }
}
