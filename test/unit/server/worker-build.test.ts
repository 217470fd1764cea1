// The pools' threads run a plain build of their entry, with no loader: no tsx hooks
// (and no hooks thread) in any pool thread, under the test runner as under tsx.
// A changed source gives a new build (never stale worker code); the cache folder
// must be private; a build removed while a process runs is put back, same bytes.

import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { OpenPool } from '../../../server/pipeline/pool.ts';
import { buildWorker, workerFile } from '../../../server/pipeline/worker-build.ts';
import { WrapPool } from '../../../server/pipeline/wrap-pool.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-workerbuild-'));
const tsFile = join(dir, 'typed.ts');
writeFileSync(tsFile, 'export const n: number = 1;\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a built file in a thread with no execArgv and returns what it posts. */
function runBuilt(file: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(file, { execArgv: [] });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  });
}

describe('pool threads without a loader', () => {
  it('the wrap pool and the open pool run the plain build, with an empty execArgv, and cannot import TypeScript', async () => {
    const wrap = new WrapPool({ threads: 1 });
    const open = new OpenPool({ threads: 1, budgetMs: 30_000 });
    try {
      for (const [pool, name] of [[wrap, 'wrap-worker'], [open, 'open-worker']] as const) {
        const facts = await pool.probe(tsFile);
        expect(facts.execArgv).toEqual([]);
        expect(facts.typescript).toBe(false);
        expect(facts.module).toMatch(new RegExp(`^file:.*/${name}-[0-9a-f]{32}\\.mjs$`));
        // A self-check of the probe: the same import works where a TypeScript loader runs (here, the test runner).
        await expect(import(/* @vite-ignore */ tsFile)).resolves.toMatchObject({ n: 1 });
      }
    } finally {
      await wrap.close();
      await open.close();
    }
  }, 120_000);

  it('a changed source gives a new build with the new code; the same source, the same file', async () => {
    const src = join(dir, 'src');
    const cache = join(dir, 'cache');
    mkdirSync(src);
    writeFileSync(join(src, 'dep.ts'), 'export const version: number = 1;\n');
    writeFileSync(join(src, 'entry.ts'), "import { parentPort } from 'node:worker_threads';\nimport { version } from './dep.ts';\nparentPort!.postMessage(version);\n");
    const first = await buildWorker(join(src, 'entry.ts'), cache);
    expect(await runBuilt(first)).toBe(1);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(statSync(first).mode & 0o777).toBe(0o600);
    expect(await buildWorker(join(src, 'entry.ts'), cache)).toBe(first);
    writeFileSync(join(src, 'dep.ts'), 'export const version: number = 2;\n');
    const second = await buildWorker(join(src, 'entry.ts'), cache);
    expect(second).not.toBe(first);
    expect(await runBuilt(second)).toBe(2);
  }, 60_000);

  it('refuses a cache folder that others can read or write', async () => {
    const open = join(dir, 'open-cache');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    await expect(buildWorker(fileURLToPath(new URL('../../../server/pipeline/wrap-worker.ts', import.meta.url)), open)).rejects.toThrow(/mode 0700/);
  }, 60_000);

  it('a build removed while the process runs is written again, the same bytes', async () => {
    const entry = fileURLToPath(new URL('../../../server/pipeline/wrap-worker.ts', import.meta.url));
    const file = await workerFile(entry);
    const bytes = readFileSync(file);
    unlinkSync(file);
    expect(await workerFile(entry)).toBe(file);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  }, 60_000);

  it('when another user holds the shared default folder, a process builds into a private folder of its own, removed at exit', () => {
    // In a child process with a temporary folder of its own, so the default folder
    // other test files share is left alone. The squatter: another user's folder
    // (as root, owned by nobody) or, for a non-root run, one others may write.
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    chmodSync(tmp, 0o755);
    const uid = process.getuid!();
    const squatted = join(tmp, `letterlock-workers-${uid}`);
    mkdirSync(squatted, { mode: 0o777 });
    chmodSync(squatted, 0o777);
    if (uid === 0) chownSync(squatted, 65534, 65534);
    const entry = fileURLToPath(new URL('../../../server/pipeline/wrap-worker.ts', import.meta.url));
    const script = `
      import { statSync } from 'node:fs';
      import { dirname } from 'node:path';
      const { workerFile } = await import(${JSON.stringify(fileURLToPath(new URL('../../../server/pipeline/worker-build.ts', import.meta.url)))});
      const file = await workerFile(${JSON.stringify(entry)});
      const d = statSync(dirname(file));
      console.log(JSON.stringify({ file, mode: d.mode & 0o777, uid: d.uid }));`;
    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
    delete env.LETTERLOCK_WORKER_CACHE;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { file: string; mode: number; uid: number };
    expect(out.file.startsWith(`${tmp}/letterlock-workers-own-`)).toBe(true);
    expect(out.mode).toBe(0o700);
    expect(out.uid).toBe(uid);
    expect(r.stderr).toMatch(/must be a folder owned by this user with mode 0700.*building the worker threads' code in/);
    // Nothing was written into the other user's folder, and the own folder went with the process.
    expect(readdirSync(squatted)).toEqual([]);
    expect(existsSync(dirname(out.file))).toBe(false);

    // A folder the operator named is theirs to fix: an error, not a quiet fallback.
    const named = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...env, LETTERLOCK_WORKER_CACHE: squatted }, encoding: 'utf8', timeout: 60_000 });
    expect(named.status).not.toBe(0);
    expect(named.stderr).toMatch(/worker cache folder .* must be a folder owned by this user with mode 0700 \(remove it, or set LETTERLOCK_WORKER_CACHE\)/);
  }, 120_000);
});
