// A real PostgreSQL 15 (Debian's postgresql package) for tests: its own cluster in a
// temporary folder, on 127.0.0.1 and a free port, its socket inside that folder.
// Start one per test file (initdb is the slow part) and give each test its own
// database with createDatabase().
//
// PostgreSQL refuses to run as root, so as root the cluster belongs to the
// `postgres` system user the package creates, and its commands run through runuser.

import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Where Debian's postgresql-15 puts its programs (LETTERLOCK_PG_BIN: elsewhere). */
const DEFAULT_BIN = process.env.LETTERLOCK_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface RunningPostgres {
  /** postgres://postgres@127.0.0.1:PORT (no database: add one, or use createDatabase). */
  readonly base: string;
  readonly port: number;
  /** The cluster's folder (data/, the socket, the log). */
  readonly dir: string;
  /** A fresh empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: connections are closed) and removes the folder. Idempotent. */
  stop(): Promise<void>;
  /** The server's log so far (for a failing test's message). */
  log(): string;
}

/** Each running server and how to stop it synchronously (at process exit). */
const running = new Map<RunningPostgres, () => void>();
let exitHook = false;

function asOwner(isRoot: boolean, cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { if (out.length < 20_000) out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { if (out.length < 20_000) out += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** Connects until the server answers a query (it accepts connections only once recovery is done). */
async function waitReady(url: string, budgetMs: number, alive: () => boolean): Promise<void> {
  const until = Date.now() + budgetMs;
  let last: unknown;
  for (;;) {
    if (!alive()) throw new Error('PostgreSQL exited during start');
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (e) {
      last = e;
      await c.end().catch(() => {});
    }
    if (Date.now() > until) throw new Error(`PostgreSQL did not accept connections within ${budgetMs} ms: ${(last as Error)?.message}`);
    // Polling a socket: the next attempt after a short pause, not a guess at the start time.
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startPostgres(opts: { startBudgetMs?: number; bin?: string } = {}): Promise<RunningPostgres> {
  const bin = opts.bin ?? DEFAULT_BIN;
  for (const b of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(join(bin, b))) {
      throw new Error(`PostgreSQL 15 is not installed (${join(bin, b)} is missing): install the Debian package postgresql (as root: node test/setup/ensure.mjs --no-npm --system postgresql)`);
    }
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  let uid = -1;
  let gid = -1;
  if (isRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0 || g.status !== 0) throw new Error('running as root, and there is no postgres system user (the Debian package postgresql creates it)');
    uid = Number(id.stdout.trim());
    gid = Number(g.stdout.trim());
  }
  const dir = mkdtempSync(join(tmpdir(), 'letterlock-pg-'));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  mkdirSync(sock);
  if (isRoot) {
    chownSync(dir, uid, gid);
    chownSync(sock, uid, gid);
  }
  const logFile = join(dir, 'postgres.log');
  const superuser = isRoot ? 'postgres' : userInfo().username;
  const [icmd, iargs] = asOwner(isRoot, join(bin, 'initdb'), ['-D', data, '-U', superuser, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
  const init = await run(icmd, iargs, 120_000);
  if (init.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${init.code}): ${init.out.slice(-2000)}`);
  }

  let port = 0;
  let started = false;
  // A free port can be taken between the probe and the start: try a few.
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    // fsync and synchronous commit off: tests only, a crash of the test machine loses nothing worth keeping.
    const o = `-h 127.0.0.1 -p ${port} -k ${sock} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB`;
    const [ccmd, cargs] = asOwner(isRoot, join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', o, '-w', '-t', '120', 'start']);
    const r = await run(ccmd, cargs, 150_000);
    if (r.code === 0) started = true;
    else if (!/could not bind|Address already in use/i.test(readLog(logFile) + r.out)) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`pg_ctl start failed (exit ${r.code}): ${r.out.slice(-1000)} ${readLog(logFile).slice(-2000)}`);
    }
  }
  if (!started) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL could not get a free port: ${readLog(logFile).slice(-2000)}`);
  }

  const base = `postgres://${encodeURIComponent(superuser)}@127.0.0.1:${port}`;
  let stopped = false;
  let dbs = 0;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    const [scmd, sargs] = asOwner(isRoot, join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    spawnSync(scmd, sargs, { stdio: 'ignore', timeout: 60_000 });
    rmSync(dir, { recursive: true, force: true });
  };
  const self: RunningPostgres = {
    base,
    port,
    dir,
    async createDatabase() {
      const name = `t${++dbs}_${process.pid}`;
      const c = new pg.Client({ connectionString: `${base}/postgres` });
      c.on('error', () => {});
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `${base}/${name}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      running.delete(self);
      const [scmd, sargs] = asOwner(isRoot, join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      const r = await run(scmd, sargs, 90_000);
      if (r.code !== 0) {
        const [kcmd, kargs] = asOwner(isRoot, join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
        await run(kcmd, kargs, 60_000);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => readLog(logFile),
  };
  // A test process that ends without stop() (a failed beforeAll, an uncaught error)
  // must not leave a server behind.
  running.set(self, stopSync);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const s of running.values()) s();
    });
  }
  // And one killed outright (SIGKILL, a hook timeout) gets a watchdog: a shell that
  // polls for this process once a second and stops the server when it is gone.
  const [wcmd, wargs] = asOwner(isRoot, join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && [ -d ${q(data)} ]; do sleep 1; done; [ -d ${q(data)} ] && ${[wcmd, ...wargs].map(q).join(' ')} >/dev/null 2>&1; rm -rf ${q(dir)}`],
    { detached: true, stdio: 'ignore' }).unref();
  try {
    await waitReady(`${base}/postgres`, opts.startBudgetMs ?? 60_000, () => !stopped);
  } catch (e) {
    await self.stop();
    throw e;
  }
  return self;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
