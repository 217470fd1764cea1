// What the open pool and the wrap pool share about their threads' life: piscina started
// on first use from the plain build of the entry (worker-build.ts), a failed start tried
// again on the next use, the build put back before each task (a /tmp cleaner may remove
// it, and piscina starts replacement threads from it), and a close that also stops a start
// still under way.

import type { Piscina } from 'piscina';
import { workerFile } from './worker-build.ts';
import type { WorkerFacts } from './worker-probe.ts';

export abstract class LazyPool<T, R> {
  private piscina: Promise<Piscina<T, R>> | null = null;

  constructor(private readonly entry: string) {}

  /** The piscina of this pool, on the built file. */
  protected abstract start(filename: string): Piscina<T, R>;

  private get pool(): Promise<Piscina<T, R>> {
    if (this.piscina) return this.piscina;
    const p = workerFile(this.entry).then((filename) => this.start(filename));
    this.piscina = p;
    p.catch(() => { if (this.piscina === p) this.piscina = null; }); // the next use tries again
    return p;
  }

  /** The started pool, its build on disk (before a task's time budget starts: building is not the task's time). */
  protected async forTask(): Promise<Piscina<T, R>> {
    const [pool] = await Promise.all([this.pool, workerFile(this.entry)]);
    return pool;
  }

  /** Starts the threads now, so the first task does not wait for them to load. */
  warm(): void {
    this.pool.catch(() => {}); // a failed start is reported by the first task
  }

  /** How a thread of this pool was started (tests): run as the pool runs its tasks, by name. */
  async probe(tsFile: string): Promise<WorkerFacts> {
    const pool = (await this.pool) as unknown as Piscina<string, WorkerFacts>;
    return pool.run(tsFile, { name: 'probe' });
  }

  /** Resolves when the pool's threads are started (benchmarks and tests). */
  async ready(): Promise<void> {
    await this.pool;
  }

  /** Detaches the pool for closing: the started piscina, or null (none, or its start failed). */
  protected async detach(): Promise<Piscina<T, R> | null> {
    const starting = this.piscina;
    this.piscina = null;
    return (await starting?.catch(() => null)) ?? null;
  }
}
