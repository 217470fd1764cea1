// The Mailman Core's REST endpoint from the configuration: URL, and the admin
// credentials either inline or in a credentials file that only its owner may
// read (mode 0600 or stricter), as the server secret's file.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, type Config } from '../config/config.ts';
import type { EventLog } from '../log/log.ts';
import type { Sql } from '../store/db.ts';
import type { QueueStore } from '../store/queue.ts';
import { MailmanRest, type MailmanEndpoint } from './rest.ts';
import { MailmanService } from './sync.ts';

const CredentialsFile = z.object({ user: z.string().min(1).max(200), pass: z.string().min(1).max(1000) }).strict();

/** `dataDir` resolves a relative credentialsFile. */
export function mailmanEndpoint(m: NonNullable<Config['mailman']>, dataDir: string): MailmanEndpoint {
  if (!m.credentialsFile) return { url: m.url, user: m.user!, pass: m.pass! };
  const path = isAbsolute(m.credentialsFile) ? m.credentialsFile : join(dataDir, m.credentialsFile);
  if (!existsSync(path)) throw new ConfigError(`mailman.credentialsFile ${path} does not exist`);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError(`mailman.credentialsFile ${path} has mode ${mode.toString(8).padStart(4, '0')}: it must not be readable by group or others (chmod 600 ${path})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ConfigError(`mailman.credentialsFile ${path}: not JSON; write {"user": "...", "pass": "..."}`);
  }
  const r = CredentialsFile.safeParse(parsed);
  if (!r.success) throw new ConfigError(`mailman.credentialsFile ${path}: must be {"user": "...", "pass": "..."}`);
  return { url: m.url, ...r.data };
}

/** The REST client for the configured Core, with page bounds from mailman.maxRoster; null without a `mailman` section. */
export function mailmanClient(config: Config, dataDir: string): MailmanRest | null {
  if (!config.mailman) return null;
  const pageSize = 1000;
  return new MailmanRest(mailmanEndpoint(config.mailman, dataDir), {
    timeoutMs: Math.max(1000, config.mailman.syncTimeoutMs),
    pageSize,
    maxPages: Math.ceil(config.mailman.maxRoster / pageSize),
  });
}

/**
 * The roster service for a process that runs the pipeline outside `serve` (the
 * CLI's held approve): without it a bound list's post would meet the standalone
 * policy, so the pipeline refuses to run one (see run.ts). Not started: no timers.
 */
export function mailmanService(config: Config, dataDir: string, deps: { sql: Sql; queue: QueueStore; log: EventLog; onQueued?(): void }): MailmanService | undefined {
  const rest = mailmanClient(config, dataDir);
  if (!rest || !config.mailman) return undefined;
  const publicUrl = config.publicUrl ?? `http://${config.http.host}:${config.http.port}`;
  return new MailmanService({ ...deps, rest, settings: config.mailman, publicUrl: () => publicUrl });
}
