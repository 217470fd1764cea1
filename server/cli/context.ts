// What every command needs from the global options: the data folder, the
// server secret, the opened store; each failure is a CliError with its exit code.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DB_FILE, openData } from '../app.ts';
import { CONFIG_FILE, type Config, dataDirFrom, loadConfig } from '../config/config.ts';
import { defaultSecretFile, loadSecret } from '../config/secret.ts';
import type { Sql } from '../store/db.ts';
import { getList, type ListRecord } from '../store/lists.ts';
import { CliError, EXIT } from './output.ts';

export interface Globals {
  data?: string;
  json?: boolean;
  debug?: boolean;
}

export function globals(cmd: Command): Globals {
  return cmd.optsWithGlobals<Globals>();
}

export function dataDirOf(cmd: Command): string {
  return dataDirFrom(globals(cmd).data);
}

export interface Store {
  dataDir: string;
  config: Config;
  secret: string;
  sql: Sql;
}

/** Refuses (exit 3) a folder that was never initialized, before creating anything in it. */
export function requireInitialized(dataDir: string): void {
  // A folder on PostgreSQL has no letterlock.db: its configuration names the database.
  if (!existsSync(join(dataDir, DB_FILE)) && !(existsSync(join(dataDir, CONFIG_FILE)) && loadConfig(dataDir).config.database)) {
    throw new CliError(`${dataDir} is not initialized (run: letterlock init --data ${dataDir})`, EXIT.UNREACHABLE);
  }
}

export async function openStore(cmd: Command): Promise<Store> {
  const dataDir = dataDirOf(cmd);
  requireInitialized(dataDir);
  const { config } = loadConfig(dataDir);
  const secret = loadSecret(config.secretFile ?? defaultSecretFile(dataDir));
  return { dataDir, config, secret, sql: await openData(dataDir, secret, config) };
}

/** Runs fn with the store open and closes it whatever happens. */
export async function withStore<T>(cmd: Command, fn: (s: Store) => Promise<T> | T): Promise<T> {
  const s = await openStore(cmd);
  try {
    return await fn(s);
  } finally {
    await s.sql.close();
  }
}

export async function needList(sql: Sql, address: string): Promise<ListRecord> {
  const l = await getList(sql, address);
  if (!l) throw new CliError(`no list ${address} here (see: letterlock list ls)`);
  return l;
}
