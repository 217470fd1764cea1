// The pools' threads run a plain build of their entry, with no loader: no tsx hooks
// (and no hooks thread) in any pool thread, under the test runner as under tsx.
// A changed source gives a new build (never stale worker code); the cache folder
// must be private; a build removed while a process runs is put back, same bytes.

import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
});
