// The scripts that run before anything is installed (issue 13):
// - test/setup/ensure.mjs says what a first install does and keeps reporting while
//   npm ci runs (here a stand-in npm that takes a while), and passes its failure on;
// - `npm run stack -- --help` prints usage and installs nothing: with a PATH on which
//   ensure would have to install (postfix is hidden) and an apt-get that records any
//   call, the help must leave no record, while ensure itself does leave one.

import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../server/harness.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const base = tempDir('launchers');
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Run { code: number | null; out: string; stdout: string; ms: number }

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }, budgetMs = 60_000): Promise<Run> {
  const t0 = performance.now();
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${budgetMs} ms:\n${out}`)); }, budgetMs);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, out, stdout, ms: performance.now() - t0 }); });
  });
}

function fakeTool(dir: string, name: string, body: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

/** A copy of ensure.mjs in a project folder of its own, with a lock and no node_modules. */
function project(name: string): string {
  const dir = join(base, name);
  mkdirSync(join(dir, 'test', 'setup'), { recursive: true });
  copyFileSync(join(ROOT, 'test', 'setup', 'ensure.mjs'), join(dir, 'test', 'setup', 'ensure.mjs'));
  writeFileSync(join(dir, 'package-lock.json'), '{}\n');
  return dir;
}

it('ensure.mjs announces a first install, reports progress while npm ci runs, and says when it is done', async () => {
  const dir = project('install');
  const bin = join(base, 'bin-slow-npm');
  // Takes ~1.5 s, "builds" better-sqlite3 half way, then writes npm's install marker.
  fakeTool(bin, 'npm', [
    '[ "$1" = ci ] || exit 9',
    'sleep 0.7; mkdir -p node_modules/better-sqlite3/build',
    'sleep 0.8; echo "added 1 package"; touch node_modules/.package-lock.json',
  ].join('\n'));
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, ENSURE_HEARTBEAT_MS: '200' };
  const r = await run(process.execPath, ['test/setup/ensure.mjs'], { cwd: dir, env });
  expect(r.code, r.out).toBe(0);
  expect(r.out).toMatch(/^\[ensure\] installing the npm packages .*\(npm ci\)/);
  expect(r.out).toContain('better-sqlite3');
  expect(r.out).toMatch(/minutes on 2 cores/);
  const beats = r.out.split('\n').filter((l) => /^\[ensure\] still installing, 0:0\d elapsed: /.test(l));
  expect(beats.length, r.out).toBeGreaterThanOrEqual(3);
  expect(r.out).toMatch(/still installing, .*: compiling better-sqlite3/);
  expect(r.out).toContain('added 1 package');
  expect(r.out).toMatch(/\[ensure\] npm packages installed in 0:0\d\.\n$/);

  // Installed now: a second run says nothing and installs nothing.
  const again = await run(process.execPath, ['test/setup/ensure.mjs'], { cwd: dir, env });
  expect(again.code).toBe(0);
  expect(again.out).toBe('');
});

it('ensure.mjs passes a failed npm ci on: its exit code and one line', async () => {
  const dir = project('failing');
  const bin = join(base, 'bin-failing-npm');
  fakeTool(bin, 'npm', 'echo "npm error something broke" >&2; exit 7');
  const r = await run(process.execPath, ['test/setup/ensure.mjs'], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(r.code).toBe(7);
  expect(r.out).toContain('npm error something broke');
  expect(r.out).toMatch(/\[ensure\] npm ci failed; see the output above\.\n$/);
  expect(existsSync(join(dir, 'node_modules', '.package-lock.json'))).toBe(false);
});

it('npm run stack -- --help prints usage fast and installs nothing; a bad option is one line, exit 2', async () => {
  const bin = join(base, 'bin-apt');
  const record = join(base, 'apt-get-called');
  fakeTool(bin, 'apt-get', `echo "$@" >> '${record}'; exit 1`);
  // postfix lives in /usr/sbin: without it on PATH, ensure has to install it.
  const path = [bin, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
  const env = { ...process.env, PATH: path };

  const control = await run(process.execPath, ['test/setup/ensure.mjs', '--no-npm', '--system', 'postfix'], { cwd: ROOT, env });
  expect(control.code).not.toBe(0);
  if (process.getuid?.() === 0) expect(existsSync(record), control.out).toBe(true); // as root ensure runs apt-get
  else expect(control.out).toContain('apt-get install');
  rmSync(record, { force: true });

  const help = await run('npm', ['run', 'stack', '--', '--help'], { cwd: ROOT, env });
  expect(help.code, help.out).toBe(0);
  expect(help.stdout).toContain('usage: npm run stack [-- --no-members] [--keep]');
  expect(help.stdout).toContain('installs nothing');
  expect(help.out).not.toContain('[ensure]');
  expect(existsSync(record) ? readFileSync(record, 'utf8') : '').toBe('');
  expect(help.ms).toBeLessThan(30_000);

  const bad = await run('npm', ['run', '--silent', 'stack', '--', '--members'], { cwd: ROOT, env });
  expect(bad.code).toBe(2);
  expect(bad.out).toBe('npm run stack: unknown option "--members"; it takes --no-members, --keep, --mailman (see npm run stack -- --help)\n');
  expect(existsSync(record)).toBe(false);
});
