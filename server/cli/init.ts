// `letterlock init`: the data folder (mode 0700), its SQLite database, the config
// file, and the server secret (LETTERLOCK_SECRET, an existing 0600 file, or a new
// random one written with mode 0600).

import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CONFIG_FILE, ConfigError, parseConfig, writeConfig, type Config } from '../config/config.ts';
import { createSecretFile, defaultSecretFile, loadSecret, SECRET_ENV, secretVerifier, verifySecret } from '../config/secret.ts';
import { databaseSpec } from '../app.ts';
import { getMeta, setMeta } from '../store/db.ts';
import { openDatabase } from '../store/open.ts';

export interface InitOptions {
  dataDir: string;
  config: Partial<Record<keyof Config, unknown>>;
}

export interface InitResult {
  created: boolean;
  /** A new data folder on a database another node initialized (same secret). */
  joined: boolean;
  secretSource: string;
  secret: string;
}

export async function init(o: InitOptions): Promise<InitResult> {
  const dir = resolve(o.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const configPath = join(dir, CONFIG_FILE);
  const newFolder = !existsSync(configPath);
  if (newFolder) writeConfig(dir, o.config);
  const config = parseConfig(JSON.parse(JSON.stringify(o.config)), 'options');
  const secretFile = config.secretFile ? resolve(config.secretFile) : defaultSecretFile(dir);
  let secretSource: string;
  let secret: string;
  if (process.env[SECRET_ENV]) {
    secret = loadSecret(secretFile);
    secretSource = `environment variable ${SECRET_ENV}`;
  } else if (existsSync(secretFile)) {
    secret = loadSecret(secretFile);
    secretSource = `file ${secretFile}`;
  } else {
    createSecretFile(secretFile);
    secret = loadSecret(secretFile);
    secretSource = `new file ${secretFile} (mode 0600)`;
  }
  // On a shared PostgreSQL database that another node initialized, this checks the
  // secret against the stored verifier and joins it (created: false).
  const sql = await openDatabase(databaseSpec(dir));
  try {
    const existing = await getMeta(sql, 'secret_verifier');
    if (existing) {
      if (!verifySecret(secret, existing)) throw new ConfigError(`${dir} was initialized with a different server secret`);
      return { created: false, joined: newFolder, secretSource, secret };
    }
    await setMeta(sql, 'secret_verifier', secretVerifier(secret));
    await setMeta(sql, 'created_at', new Date().toISOString());
    return { created: true, joined: false, secretSource, secret };
  } finally {
    await sql.close();
  }
}
