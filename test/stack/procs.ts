// Process and port plumbing for the mail stack: free loopback ports, waiting for
// a port to answer, and stopping whole process groups so no daemon outlives a test.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';

export class StackError extends Error {
  override name = 'StackError';
}

/** Distinct free loopback ports. All are held open until every one is chosen, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<import('node:net').Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once something accepts TCP connections on 127.0.0.1:port (and, if given, greets with `greeting`). */
export async function waitForPort(port: number, what: string, timeoutMs = 20_000, greeting?: RegExp, alive?: () => string | null): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const dead = alive?.();
    if (dead) throw new StackError(`${what} exited before listening on ${port}: ${dead}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port });
      let data = '';
      const done = (v: boolean) => { sock.destroy(); resolve(v); };
      sock.setTimeout(2000, () => { last = 'timeout'; done(false); });
      sock.once('error', (e) => { last = e.message; done(false); });
      sock.on('connect', () => { if (!greeting) done(true); });
      sock.on('data', (d: Buffer) => {
        data += d.toString('latin1');
        if (greeting && greeting.test(data)) done(true);
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new StackError(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms (${last})`);
}

/** Process ids whose process group is `pgid` (read from /proc). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      // Fields after the command name (which may hold spaces) start after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] !== 'Z' && Number(rest[2]) === pgid) out.push(Number(name));
    } catch { /* the process went away while reading */ }
  }
  return out;
}

/**
 * Live processes tied to a folder: it appears in their command line, environment
 * (Postfix's MAIL_CONFIG) or working directory (Postfix and Dovecot work inside
 * their folders). Used to prove that nothing of a stopped stack is left running.
 */
export function processesUsing(folder: string): Array<{ pid: number; command: string }> {
  const out: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const pid = Number(name);
    if (!isAlive(pid)) continue;
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ').trim();
      let cwd = '';
      try { cwd = readlinkSync(`/proc/${pid}/cwd`); } catch { /* kernel thread or gone */ }
      let environ = '';
      try { environ = readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { /* gone */ }
      if (command.includes(folder) || cwd.startsWith(folder) || environ.includes(folder)) out.push({ pid, command });
    } catch { /* gone while reading */ }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch { /* group already gone */ }
}

/**
 * SIGTERM to the group's leader first (a master process then stops and reaps its
 * own workers; skipped with `leaderFirst` false), then to the whole group, then SIGKILL after `graceMs`; resolves
 * when no member is left.
 */
export async function stopGroup(pgid: number, graceMs = 5000, leaderFirst = true): Promise<void> {
  if (groupMembers(pgid).length === 0) return;
  if (leaderFirst) {
    try {
      process.kill(pgid, 'SIGTERM');
    } catch { /* the leader is gone; its group may not be */ }
    const leaderEnd = Date.now() + Math.min(2000, graceMs);
    while (groupMembers(pgid).length > 0 && Date.now() < leaderEnd) await sleep(25);
    if (groupMembers(pgid).length === 0) return;
  }
  signalGroup(pgid, 'SIGTERM');
  const end = Date.now() + graceMs;
  while (groupMembers(pgid).length > 0 && Date.now() < end) await sleep(50);
  if (groupMembers(pgid).length === 0) return;
  signalGroup(pgid, 'SIGKILL');
  const hard = Date.now() + 5000;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > hard) throw new StackError(`processes of group ${pgid} survived SIGKILL: ${groupMembers(pgid).join(', ')}`);
    await sleep(50);
  }
}

// Groups started by this process, killed synchronously if it exits without stop()
// (a crashed test, an uncaught error): a daemon must never outlive its test.
const liveGroups = new Set<number>();
let exitHookInstalled = false;
export function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const g of liveGroups) signalGroup(g, 'SIGKILL');
    });
  }
}
export function untrackGroup(pgid: number): void {
  liveGroups.delete(pgid);
}

export interface Daemon {
  name: string;
  proc: ChildProcess;
  pgid: number;
  /** null while running; otherwise how it ended. */
  exited(): string | null;
  stop(): Promise<void>;
}

/**
 * Starts a long-running program in its own process group, stdout and stderr to
 * `logFile` (some daemons hold stderr open; a pipe would keep the test waiting).
 */
export function startDaemon(name: string, command: string, args: string[], logFile: string, options: SpawnOptions & { leaderFirst?: boolean } = {}): Daemon {
  const { leaderFirst = true, ...spawnOptions } = options;
  const fd = openSync(logFile, 'a');
  let proc: ChildProcess;
  try {
    proc = spawn(command, args, { ...spawnOptions, detached: true, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  if (proc.pid === undefined) throw new StackError(`${name}: could not start ${command}`);
  const pgid = proc.pid;
  trackGroup(pgid);
  let ended: string | null = null;
  proc.once('exit', (code, signal) => { ended = signal ? `signal ${signal}` : `exit code ${code}`; });
  proc.once('error', (e) => { ended = e.message; });
  return {
    name, proc, pgid,
    exited: () => ended,
    async stop() {
      await stopGroup(pgid, 5000, leaderFirst);
      untrackGroup(pgid);
    },
  };
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): string {
  const r = spawnSync(command, args, { encoding: 'utf8', env: options.env ?? process.env, input: options.input, cwd: options.cwd, timeout: 120_000 });
  if (r.error) throw new StackError(`${command} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new StackError(`${command} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
