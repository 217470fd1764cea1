// Pool start-up (not a test): time from creating a pool until every thread has
// answered a first task, the worker entry loaded through tsx (the pools before) and
// as a plain build (worker-build.ts, the pools now; the build included, once per process).
// Run: npx tsx test/bench/pool-start.ts [rounds]
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { buildWorker } from '../../server/pipeline/worker-build.ts';

const rounds = Math.min(20, Math.max(1, Number(process.argv[2] ?? 3) || 3));
const threads = availableParallelism();
const probeFile = fileURLToPath(new URL('../../server/pipeline/worker-probe.ts', import.meta.url));

async function start(entry: string, how: 'tsx' | 'plain'): Promise<number> {
  const t0 = performance.now();
  const filename = how === 'tsx' ? fileURLToPath(new URL(`../../server/pipeline/${entry}.ts`, import.meta.url)) : await buildWorker(fileURLToPath(new URL(`../../server/pipeline/${entry}.ts`, import.meta.url)));
  const pool = new Piscina({ filename, minThreads: threads, maxThreads: threads, atomics: 'disabled', execArgv: how === 'tsx' ? ['--import', 'tsx'] : [] });
  // One probe per thread, each held until all have started, so every thread loads the entry.
  await Promise.all(Array.from({ length: threads }, () => pool.run(probeFile, { name: 'probe' })));
  const ms = performance.now() - t0;
  await pool.destroy();
  return ms;
}

for (const entry of ['wrap-worker', 'open-worker']) {
  const got: Record<string, number[]> = { tsx: [], plain: [] };
  for (let r = 0; r < rounds; r++) for (const how of ['tsx', 'plain'] as const) got[how]!.push(await start(entry, how));
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(`${entry}, ${threads} threads, ${rounds} rounds: through tsx ${med(got.tsx!).toFixed(0)} ms (median; ${got.tsx!.map((x) => x.toFixed(0)).join(', ')}), plain build ${med(got.plain!).toFixed(0)} ms (${got.plain!.map((x) => x.toFixed(0)).join(', ')})`);
}
process.exit(0);
