// The open pool: worker threads (piscina) that run the input-controlled part of
// the pipeline (open-worker.ts) with a time budget per task. When the budget
// runs out the task's thread is terminated (piscina does this for aborted
// tasks) and the post is refused as TOO_COMPLEX; the event loop that serves
// SMTP, HTTP and delivery never waits on a post's parsing or decryption.

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { PrivateKey } from 'openpgp';
import { Piscina } from 'piscina';
import { fail, type ErrorCode } from '../../shared/index.ts';
import type { OpenedMail, OpenTask, ParsedMail, ParseTask, Task, TaskResult } from './open-worker.ts';
import { workerFile } from './worker-build.ts';
import type { WorkerFacts } from './worker-probe.ts';

const ENTRY = fileURLToPath(new URL('./open-worker.ts', import.meta.url));

export interface OpenPoolOptions {
  /** Worker threads; 0 or absent: one per core. */
  threads?: number;
  /** Time one parse or open may take before the post is refused. */
  budgetMs: number;
  /** Heap limit of one worker, in MB: a decompression or parser blow-up ends that worker, not the server. */
  maxHeapMb?: number;
}

export class OpenPool {
  private piscina: Promise<Piscina<Task, TaskResult<ParsedMail | OpenedMail>>> | null = null;
  private readonly keyBytes = new WeakMap<PrivateKey, Uint8Array>();

  constructor(private readonly o: OpenPoolOptions) {}

  /** Threads start with the first task, so commands that never open a post pay nothing. */
  private get pool(): Promise<Piscina<Task, TaskResult<ParsedMail | OpenedMail>>> {
    if (this.piscina) return this.piscina;
    const p = this.start();
    this.piscina = p;
    p.catch(() => { if (this.piscina === p) this.piscina = null; }); // the next post tries again
    return p;
  }

  private async start(): Promise<Piscina<Task, TaskResult<ParsedMail | OpenedMail>>> {
    const filename = await workerFile(ENTRY);
    const threads = this.o.threads || availableParallelism();
    return new Piscina({
      filename,
      minThreads: threads,
      maxThreads: threads,
      // Plain JavaScript built from the sources (worker-build.ts): no loader, no hooks
      // thread, the same code under tsx, a test runner or a global install.
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: this.o.maxHeapMb ?? 1024 },
      // As in the wrap pool (wrap-pool.ts): 'sync' Atomics now and then leave an async
      // task unpicked by a sleeping thread, which here would refuse a good post as TOO_COMPLEX.
      atomics: 'disabled',
      idleTimeout: 60_000,
    });
  }

  /** Starts the threads now (a server does at start), so the first post does not wait for them to load. */
  warm(): void {
    this.pool.catch(() => {}); // a failed start is reported by the first post
  }

  /** How a thread of this pool was started (tests): run as the pool runs its tasks, by name. */
  async probe(tsFile: string): Promise<WorkerFacts> {
    const pool = (await this.pool) as unknown as Piscina<string, WorkerFacts>;
    return pool.run(tsFile, { name: 'probe' });
  }

  /** Resolves when the pool is started (benchmarks and tests). */
  async ready(): Promise<void> {
    await this.pool;
  }

  /** Finds the payload and the outer facts of a raw mail. */
  parse(raw: Uint8Array, maxBytes: number): Promise<ParsedMail> {
    return this.run<ParsedMail>({ kind: 'parse', raw, maxBytes } satisfies ParseTask);
  }

  /** Decrypts the payload with the list key and checks it against the member's key (if any). */
  open(payload: string | Uint8Array, maxBytes: number, listKey: PrivateKey, memberKey: string | null, date = new Date(), contentMax?: number): Promise<OpenedMail> {
    let bytes = this.keyBytes.get(listKey);
    if (!bytes) {
      bytes = listKey.write();
      this.keyBytes.set(listKey, bytes);
    }
    const task: OpenTask = { kind: 'open', payload, maxBytes, listKey: bytes, listFingerprint: listKey.getFingerprint(), memberKey, date: date.getTime(), ...(contentMax === undefined ? {} : { contentMax }) };
    return this.run<OpenedMail>(task);
  }

  private async run<T>(task: Task): Promise<T> {
    let result: TaskResult<ParsedMail | OpenedMail>;
    // (Before the budget starts: building the worker is not the post's time. workerFile
    // puts the build back if it was removed, for a thread piscina starts anew.)
    const [pool] = await Promise.all([this.pool, workerFile(ENTRY)]);
    try {
      result = await pool.run(task, { signal: AbortSignal.timeout(this.o.budgetMs) });
    } catch (e) {
      // Aborted at the budget, or the worker died (its heap limit, a crash):
      // either way this one input is refused and the pool replaces the thread.
      const name = e && typeof e === 'object' && 'name' in e ? String((e as { name: unknown }).name) : '';
      const code = e && typeof e === 'object' && 'code' in e ? String((e as { code: unknown }).code) : '';
      if (name === 'AbortError' || name === 'TimeoutError' || code === 'ERR_WORKER_OUT_OF_MEMORY') fail('TOO_COMPLEX');
      throw e;
    }
    if (!result.ok) {
      if (result.code === 'INTERNAL') throw Object.assign(new Error('open worker failed'), { code: 'INTERNAL' });
      try {
        fail(result.code as ErrorCode);
      } catch (e) {
        if (result.outer) Object.assign(e as object, { outer: result.outer }); // the refused post's outer facts (Message-ID)
        throw e;
      }
    }
    return result.value as T;
  }

  async close(): Promise<void> {
    const starting = this.piscina;
    this.piscina = null;
    await (await starting?.catch(() => null))?.destroy();
  }
}
