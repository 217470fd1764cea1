// What `npm start` (server-demo.ts) and `npm run demo:post` (send-post.ts) must agree
// on: the data folder, the overrides, and where the running demo really listens.
// The server writes the ports it bound into a run file in its data folder, so a
// post always goes to the demo of that folder, whatever overrides started it.

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';

export const DEMO_LIST = 'demo@lists.localhost';
export const DEMO_PEOPLE = ['alice', 'bob', 'carol'] as const;
export type DemoPerson = (typeof DEMO_PEOPLE)[number];
export const DEFAULT_DEMO_DIR = '.letterlock-demo';
export const DEFAULT_PORTS = { smtp: 2525, http: 8025, inbox: 8026 } as const;
/** The overrides both demo commands read, besides the data folder's letterlock.json. */
export const DEMO_ENV = ['LETTERLOCK_DEMO_DIR', 'LETTERLOCK_SMTP_PORT', 'LETTERLOCK_HTTP_PORT'] as const;
const RUN_FILE = 'demo-server.json';

export function demoDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.LETTERLOCK_DEMO_DIR || DEFAULT_DEMO_DIR);
}

export const passphraseOf = (p: DemoPerson) => `${p}-pass`;
export const displayName = (p: string) => p[0]!.toUpperCase() + p.slice(1);

/** A path as a person would type it from here: relative inside this folder, else absolute. */
export function shown(p: string, cwd = process.cwd()): string {
  const r = relative(cwd, p);
  if (r === '') return '.';
  return r.startsWith('..') || isAbsolute(r) ? p : r;
}

export const quote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);

/**
 * The environment prefix that makes a printed command reach this demo: the data
 * folder unless it is the default, and any port override that is set.
 */
export function envPrefix(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const parts: string[] = [];
  if (resolve(dir) !== resolve(DEFAULT_DEMO_DIR)) parts.push(`LETTERLOCK_DEMO_DIR=${quote(shown(dir))}`);
  for (const k of ['LETTERLOCK_SMTP_PORT', 'LETTERLOCK_HTTP_PORT'] as const) if (env[k]) parts.push(`${k}=${quote(env[k]!)}`);
  return parts.length ? `${parts.join(' ')} ` : '';
}

const RunInfo = z.object({
  pid: z.number().int().positive(),
  smtp: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }),
  http: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }),
  listFingerprint: z.string().regex(/^[0-9A-F]{40,64}$/),
});
export type RunInfo = z.infer<typeof RunInfo>;

export function writeRunInfo(dir: string, info: RunInfo): void {
  const file = join(dir, RUN_FILE);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** Removes the run file if it is still this process's own. */
export function removeRunInfo(dir: string, pid = process.pid): void {
  if (readRunInfo(dir)?.pid === pid) rmSync(join(dir, RUN_FILE), { force: true });
}

/** The running demo of this folder, or null (no run file, a bad one, or its process is gone). */
export function readRunInfo(dir: string): RunInfo | null {
  const file = join(dir, RUN_FILE);
  if (!existsSync(file)) return null;
  let info: RunInfo;
  try {
    info = RunInfo.parse(JSON.parse(readFileSync(file, 'utf8').slice(0, 4096)));
  } catch {
    return null;
  }
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as { code?: string }).code === 'ESRCH') return null; // EPERM: alive, someone else's
  }
  return info;
}

/** The gpg commands that read `reader`'s newest copy, decoded for people to read. */
export function gpgSteps(dir: string, maildir: string, reader: DemoPerson, author: DemoPerson): string[] {
  const d = shown(dir);
  const gpg = `gpg --homedir "$G" --batch --pinentry-mode loopback --passphrase ${passphraseOf(reader)}`;
  return [
    `G=$(mktemp -d); ${gpg} --import ${quote(`${d}/people/${reader}.sec.asc`)} ${quote(`${d}/people/${author}.pub.asc`)}`,
    `${gpg} --decrypt "$(ls ${quote(`${shown(maildir)}/${reader}@localhost/new`)}/* | tail -1)" | npx tsx server/demo/show-mail.ts`,
  ];
}
