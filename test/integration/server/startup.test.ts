// Startup is all or nothing (issue 10, item 6). `letterlock serve` once opened
// SMTP first: with the HTTP port taken or the admin token unwritable it stayed up
// answering 250 with no HTTP and no delivery, and ignored SIGTERM. Here the
// server runs as a child process: a failed start must exit non-zero in bounded
// time with one clear line and no stack trace, SMTP must never have listened,
// nothing must stay listening; SIGTERM on a running server must exit 0 promptly.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initData, SECRET, spawnServer, tempDir, until, type Child } from './harness.ts';
import { freePorts } from '../../stack/procs.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const dirs: string[] = [];
const blockers: Server[] = [];

async function dataFolder(): Promise<string> {
  const d = tempDir('startup');
  dirs.push(d);
  await initData(d, 9); // no relay needed: nothing is delivered here
  return d;
}

afterAll(async () => {
  for (const b of blockers) await new Promise((r) => b.close(r));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** How the server process ends: exit code, or the signal that ended it. */
const exitOf = (c: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  new Promise((r) => c.proc.once('exit', (code, signal) => r({ code, signal })));

/** A port that was free a moment ago. */
const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

/** Something else listening on a port, as another program would. */
async function occupy(): Promise<number> {
  const s = createServer((c) => c.destroy());
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  blockers.push(s);
  return (s.address() as { port: number }).port;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1' });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/** Runs `serve` to its exit (bounded): exit code, output and time taken. */
function serveUntilExit(dataDir: string, env: Record<string, string>): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = performance.now();
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', 'serve', '--data', dataDir], {
    cwd: ROOT, env: { ...process.env, LETTERLOCK_SECRET: SECRET, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`serve did not exit within 45 s:\n${out}`)); }, 45_000);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, out, ms: performance.now() - t0 }); });
  });
}

function events(dataDir: string): string[] {
  const text = readFileSync(join(dataDir, 'logs', 'server.log'), 'utf8');
  return text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event: string }).event);
}

function oneClearLine(out: string, pattern: RegExp): void {
  const errors = out.split('\n').filter((l) => l.startsWith('letterlock: '));
  expect(errors, out).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(out).not.toMatch(/^\s+at /m); // no stack trace
}

let smtpPort = 0;
beforeAll(async () => {
  smtpPort = await freePort();
});

it('HTTP port in use: exits non-zero with one line; SMTP never listened', async () => {
  const dataDir = await dataFolder();
  const httpPort = await occupy();
  const r = await serveUntilExit(dataDir, { LETTERLOCK_HTTP_PORT: String(httpPort), LETTERLOCK_SMTP_PORT: String(smtpPort) });
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  oneClearLine(r.out, new RegExp(`^letterlock: HTTP port 127\\.0\\.0\\.1:${httpPort} is in use: set http\\.port in letterlock\\.json or LETTERLOCK_HTTP_PORT$`));
  const ev = events(dataDir);
  expect(ev).toContain('server.start_failed');
  expect(ev).not.toContain('smtp.listening');
  expect(await listening(smtpPort)).toBe(false);
});

it('SMTP port in use: exits non-zero with one line; HTTP is closed again', async () => {
  const dataDir = await dataFolder();
  const busySmtp = await occupy();
  const httpPort = await freePort();
  const r = await serveUntilExit(dataDir, { LETTERLOCK_HTTP_PORT: String(httpPort), LETTERLOCK_SMTP_PORT: String(busySmtp) });
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  oneClearLine(r.out, new RegExp(`^letterlock: SMTP port 127\\.0\\.0\\.1:${busySmtp} is in use: set smtp\\.port in letterlock\\.json or LETTERLOCK_SMTP_PORT$`));
  const ev = events(dataDir);
  expect(ev).toContain('http.listening'); // it had opened HTTP ...
  expect(ev).toContain('server.start_failed');
  expect(await listening(httpPort)).toBe(false); // ... and nothing stays listening
});

it('admin token cannot be written (a directory in its place): exits non-zero with one line; SMTP never listened', async () => {
  const dataDir = await dataFolder();
  mkdirSync(join(dataDir, 'admin-token'));
  const httpPort = await freePort();
  const r = await serveUntilExit(dataDir, { LETTERLOCK_HTTP_PORT: String(httpPort), LETTERLOCK_SMTP_PORT: String(smtpPort) });
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  oneClearLine(r.out, /^letterlock: the admin token .*admin-token is not a file/);
  expect(events(dataDir)).not.toContain('smtp.listening');
  expect(await listening(smtpPort)).toBe(false);
  expect(await listening(httpPort)).toBe(false);
});

it('SIGTERM on a running server: exit 0, promptly, ports closed', async () => {
  const dataDir = await dataFolder();
  const child = await spawnServer(dataDir);
  expect(await listening(child.smtpPort)).toBe(true);
  const t0 = performance.now();
  const exited = exitOf(child);
  child.proc.kill('SIGTERM');
  const { code, signal } = await exited;
  const ms = performance.now() - t0;
  console.log(`startup test: SIGTERM to exit in ${ms.toFixed(0)} ms`);
  // On failure: how it ended, and what the server said last.
  expect({ code, signal }, child.output().slice(-3000)).toEqual({ code: 0, signal: null });
  expect(ms).toBeLessThan(10_000);
  expect(await listening(child.smtpPort)).toBe(false);
  expect(await listening(child.httpPort)).toBe(false);
});

it('SIGTERM repeated while the server closes (a supervisor asking again): still a clean exit 0', async () => {
  const dataDir = await dataFolder();
  const child = await spawnServer(dataDir);
  const exited = exitOf(child);
  let ended = false;
  void exited.then(() => { ended = true; });
  child.proc.kill('SIGTERM');
  // Asked again every few ms until it is gone: the close takes longer than that, so
  // some of these arrive while it runs (the default action would end it by the signal).
  let again = 0;
  while (!ended) {
    await new Promise((r) => setTimeout(r, 5));
    if (!ended && child.proc.exitCode === null && child.proc.signalCode === null) {
      child.proc.kill('SIGTERM');
      again++;
    }
  }
  const { code, signal } = await exited;
  console.log(`startup test: ${again} more SIGTERMs while closing`);
  expect(again).toBeGreaterThan(0);
  expect({ code, signal }, child.output().slice(-3000)).toEqual({ code: 0, signal: null });
});

it('Ctrl-C twice: the second stops at once, exit 130 with one line saying the close was not finished', async () => {
  const dataDir = await dataFolder();
  const child = await spawnServer(dataDir);
  // An SMTP client that stays connected keeps the close waiting (up to smtp-server's
  // closeTimeout, 5 s), so the second Ctrl-C surely lands mid-close.
  const client = connect({ port: child.smtpPort, host: '127.0.0.1' });
  let greeted = '';
  client.on('data', (d: Buffer) => { greeted += d.toString(); });
  client.on('error', () => {});
  await until('the SMTP greeting', () => greeted.startsWith('220'), { detail: child.output });
  const exited = exitOf(child);
  child.proc.kill('SIGINT');
  await until('the close to begin', () => child.output().includes('server.stopping'), { detail: child.output });
  child.proc.kill('SIGINT');
  const { code, signal } = await exited;
  client.destroy();
  // 130, not 0: the second Ctrl-C ended the process before the close (held by the client) did.
  expect({ code, signal }, child.output().slice(-3000)).toEqual({ code: 130, signal: null });
  expect(child.output()).toContain('letterlock: stopped without finishing the close (second Ctrl-C)\n');
});
