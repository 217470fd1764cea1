// Runs the real `letterlock` command: the package's bin (server/cli/letterlock.mjs,
// what `npx letterlock` and a global install execute), with the server secret in
// LETTERLOCK_SECRET unless a test says otherwise. `npx` itself costs about a second
// of CPU per run, so it is used where the npx path is what is being tested
// (viaNpx) and the bin is run directly elsewhere.

import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'server', 'cli', 'letterlock.mjs');
export const CLI_SECRET = 'cli-test-secret-0123456789abcdef';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function envFor(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, LETTERLOCK_SECRET: CLI_SECRET, NO_COLOR: '1', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  // The overrides of a developer's shell must not leak into the command under test.
  for (const k of ['LETTERLOCK_DATA', 'LETTERLOCK_DATABASE', 'LETTERLOCK_SMTP_PORT', 'LETTERLOCK_HTTP_PORT', 'LETTERLOCK_RELAY', 'LETTERLOCK_BACKUP_KEY', 'LETTERLOCK_KEY_PASSPHRASE']) if (!(k in env)) delete e[k];
  return e;
}

/** One run to its end (generous timeout: npx, tsx and key generation on a busy 2-core machine). */
export function letterlock(args: string[], env: Record<string, string | undefined> = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: envFor(env), encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `npx letterlock ...` from the project folder (its own bin; --offline: never fetched from a registry). */
export function viaNpx(args: string[], env: Record<string, string | undefined> = {}): Run {
  const r = spawnSync('npx', ['--offline', 'letterlock', ...args], { cwd: ROOT, env: envFor(env), encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking the test's event loop (needed while an in-process server runs). */
export function letterlockAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: envFor(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`letterlock ${args.join(' ')} did not finish in 120 s\n${stderr}`)); }, 120_000);
    p.once('exit', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

/** The failure is one `letterlock: ...` line on stderr, and no stack trace anywhere. */
export function oneLine(r: Run): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('letterlock: ')) throw new Error(`expected one "letterlock:" line, got:\n${r.stderr}`);
  if (/^\s+at /m.test(r.stderr + r.stdout)) throw new Error(`stack trace in output:\n${r.stderr}`);
  return lines[0]!;
}

/**
 * The same command through the same code path as the bin (server/cli/main.ts's
 * main(), which the bin's run() calls), in this process: its stdout and stderr
 * captured, the environment the bin would get, the exit code main() returns.
 * Starting Node and tsx costs seconds of CPU per run, so the tests about what a
 * command says and does use this; the tests about the bin itself (npx, the secret
 * file, a server) spawn it. One run at a time (it swaps process.env and the streams).
 */
let inProcessBusy = false;
export async function letterlockIn(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  if (inProcessBusy) throw new Error('letterlockIn: one run at a time');
  inProcessBusy = true;
  const { main } = await import('../../server/cli/main.ts');
  const saved = { env: process.env, out: process.stdout.write, err: process.stderr.write, exitCode: process.exitCode };
  let stdout = '';
  let stderr = '';
  const capture = (add: (s: string) => void) => ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as typeof process.stdout.write;
  process.env = envFor(env);
  process.exitCode = undefined;
  process.stdout.write = capture((s) => { stdout += s; });
  process.stderr.write = capture((s) => { stderr += s; });
  try {
    const status = await main(args);
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.env = saved.env;
    process.exitCode = saved.exitCode;
    inProcessBusy = false;
  }
}
