// The pools' worker threads run plain JavaScript, not TypeScript through a loader.
// A worker entry (wrap-worker.ts, open-worker.ts) and our modules it imports are
// bundled once per process by esbuild (tsx's own compiler, so installed wherever
// tsx is) into one .mjs file, and piscina starts that file with no execArgv: no
// --import tsx, hence no module-hooks thread per worker thread and no synchronous
// requests to one (Node 20 runs loader hooks off-thread and blocks the importing
// thread on them). Packages stay outside the bundle, imported by the absolute
// path they resolve to from the sources, so a worker shares its packages' code
// with the main thread (piscina's workerData lives in piscina's own module).
//
// The file's name is the hash of its content, and the content is built from the
// sources every time a process first needs it: a changed source gives a new file,
// never a stale one. The cache folder is private (0700, ours, not a symlink),
// because whatever is in it runs with the server's rights. When the shared default
// folder is not (another local user made it first, to stop our pools), this process
// builds into a fresh private folder of its own instead, removed at exit; a folder
// the operator named (LETTERLOCK_WORKER_CACHE) is never replaced: that is an error.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

/** Builds older than this are removed when a new one is written (other checkouts' builds included). */
const KEEP_MS = 7 * 24 * 3600_000;
/** At most this many entries of the cache folder are looked at when pruning. */
const PRUNE_SCAN = 1000;

interface Built { file: string; code: Uint8Array }
const builds = new Map<string, Promise<Built>>();

/** The folder for worker builds: LETTERLOCK_WORKER_CACHE, or one per user under the system's temporary folder. */
export function workerCacheDir(): string {
  return process.env.LETTERLOCK_WORKER_CACHE || defaultCacheDir();
}

function defaultCacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return join(tmpdir(), `letterlock-workers-${uid}`);
}

let ownDir: string | null = null;

/** This process's own private folder (mkdtemp: a fresh random name, 0700), removed at exit. */
function processDir(): string {
  if (!ownDir) {
    const made = mkdtempSync(join(tmpdir(), 'letterlock-workers-own-'));
    ownDir = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return ownDir;
}

/**
 * `dir` when it is a private folder of ours; for the shared default folder that is
 * not (taken by another user), this process's own folder, with a warning.
 */
function usableDir(dir: string): string {
  try {
    privateDir(dir);
    return dir;
  } catch (e) {
    if (dir !== defaultCacheDir() || process.env.LETTERLOCK_WORKER_CACHE) throw e;
    const first = ownDir === null;
    const own = processDir();
    if (first) process.emitWarning(`${(e as Error).message}; building the worker threads' code in ${own} for this process instead`, { code: 'LETTERLOCK_WORKER_CACHE' });
    return own;
  }
}

/**
 * The plain .mjs file for a worker entry (an absolute path to a .ts file), built
 * from the current sources once per process; later calls share that build. The
 * pools call this before every task: a build removed meanwhile (a /tmp cleaner
 * under a server that runs for weeks) is written again from memory, the same
 * bytes, so a thread piscina starts later loads this process's code.
 */
export async function workerFile(entry: string): Promise<string> {
  let p = builds.get(entry);
  if (!p) {
    p = build(entry, workerCacheDir());
    builds.set(entry, p);
    p.catch(() => builds.delete(entry)); // a failed build is tried again by the next pool
  }
  let b = await p;
  if (!existsSync(b.file)) {
    const dir = usableDir(dirname(b.file));
    if (dir !== dirname(b.file)) {
      b = { file: join(dir, basename(b.file)), code: b.code };
      builds.set(entry, Promise.resolve(b));
    }
    place(b.file, b.code);
  }
  return b.file;
}

/** Builds `entry` into `dir` (no per-process sharing); returns the file's path. */
export async function buildWorker(entry: string, dir = workerCacheDir()): Promise<string> {
  return (await build(entry, dir)).file;
}

async function build(entry: string, wanted: string): Promise<Built> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    plugins: [packagesByPath],
  });
  const out = result.outputFiles[0];
  if (!out || result.outputFiles.length !== 1) throw new Error(`worker build of ${basename(entry)} gave ${result.outputFiles.length} files`);
  const code = out.contents;
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 32);
  const dir = usableDir(wanted);
  const file = join(dir, `${basename(entry).replace(/\.[cm]?ts$/, '')}-${hash}.mjs`);
  let same = false;
  try {
    same = Buffer.from(code).equals(readFileSync(file));
  } catch {
    // not there yet
  }
  if (same) {
    const now = new Date();
    utimesSync(file, now, now); // in use: not pruned below by another process
  } else {
    place(file, code);
    prune(dir, file);
  }
  return { file, code };
}

/** Written beside, then renamed: another process starting at the same moment sees no file or the whole one. */
function place(file: string, code: Uint8Array): void {
  privateDir(dirname(file));
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, code, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Bare imports (packages) stay outside the bundle, each replaced by the file URL it
 * resolves to from the importing source, with the conditions an ESM import uses.
 */
const RESOLVING = Symbol('resolving');
const packagesByPath: Plugin = {
  name: 'packages-by-path',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === RESOLVING) return undefined;
      if (args.path.startsWith('node:') || builtinModules.includes(args.path)) return { path: args.path, external: true };
      const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: RESOLVING });
      if (r.errors.length > 0) return { errors: r.errors };
      return { path: pathToFileURL(realpathSync(r.path)).href, external: true };
    });
  },
};

/** Creates the folder 0700, or checks that an existing one is ours, private and a real folder. */
function privateDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new Error(`worker cache folder ${dir} must be a folder owned by this user with mode 0700 (remove it, or set LETTERLOCK_WORKER_CACHE)`);
  }
}

/** Removes builds (and left-over temporary files) older than KEEP_MS. */
function prune(dir: string, keep: string): void {
  try {
    const now = Date.now();
    for (const name of readdirSync(dir).slice(0, PRUNE_SCAN)) {
      const path = join(dir, name);
      if (path === keep || !/\.(mjs|tmp)$/.test(name)) continue;
      try {
        if (now - statSync(path).mtimeMs > KEEP_MS) unlinkSync(path);
      } catch {
        // gone already, or another process's
      }
    }
  } catch {
    // pruning is housekeeping only
  }
}
