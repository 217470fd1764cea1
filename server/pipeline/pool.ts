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
import { LazyPool } from './lazy-pool.ts';

const ENTRY = fileURLToPath(new URL('./open-worker.ts', import.meta.url));

export interface OpenPoolOptions {
  /** Worker threads; 0 or absent: one per core. */
  threads?: number;
  /** Time one parse or open may take before the post is refused. */
  budgetMs: number;
  /** Heap limit of one worker, in MB: a decompression or parser blow-up ends that worker, not the server. */
  maxHeapMb?: number;
}

export class OpenPool extends LazyPool<Task, TaskResult<ParsedMail | OpenedMail>> {
  private readonly keyBytes = new WeakMap<PrivateKey, Uint8Array>();

  /** Threads start with the first task, so commands that never open a post pay nothing. */
  constructor(private readonly o: OpenPoolOptions) {
    super(ENTRY);
  }

  protected start(filename: string): Piscina<Task, TaskResult<ParsedMail | OpenedMail>> {
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
    const pool = await this.forTask();
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
    await (await this.detach())?.destroy();
  }
}
