// The wrap pool: worker threads (piscina, sized to the cores like the open pool)
// that wrap K to the members of a fan-out page, so the wrap step, the fan-out's
// main CPU cost, uses every core while the main thread keeps serving SMTP, HTTP
// and delivery. A page is split into one slice per thread. K crosses to a worker
// in memory only: a fresh copy is moved (transferred) into the task, so no copy
// stays behind in the main thread, and the worker zeroes it after the slice.
// Pages smaller than `minPerThread` × 2 are cheaper on the main thread than a round trip
// (measured with `npm run bench:seal`), and the caller wraps those itself.

import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { SessionKey } from '../../shared/index.ts';
import type { WrapResult, WrapTask } from './wrap-worker.ts';
import { LazyPool } from './lazy-pool.ts';

const ENTRY = fileURLToPath(new URL('./wrap-worker.ts', import.meta.url));

export interface WrapPoolOptions {
  /** Worker threads; 0 or absent: one per core. */
  threads?: number;
  /** Fewest members per slice: smaller pages are wrapped on the main thread. */
  minPerThread?: number;
  /** The threads' nice value (10: they yield to the main thread); benchmarks only. */
  priority?: number;
  /**
   * 'slice' (the default): the Curve25519 recipients of one slice share one ephemeral
   * key pair, one X25519 operation each instead of two (recipient.ts says why that is
   * safe); 'recipient': a fresh pair per PKESK, as RFC 9580's synopsis has it.
   */
  ephemeral?: 'slice' | 'recipient';
}

/** Largest slice a task carries: bounds one task's memory and its time on a thread. */
const MAX_SLICE = 2000;
/**
 * Time a slice may take before the caller gives up on the pool for that page and
 * wraps it on the main thread (a wrap is about 0.1 ms on a quiet core, 1 ms on a
 * very busy one): a stuck or dead thread must not hold the fan-out.
 */
const SLICE_BUDGET_MS = 2_000;
const PER_MEMBER_BUDGET_MS = 5;

export class WrapPool extends LazyPool<WrapTask, WrapResult> {
  readonly threads: number;
  readonly minPerThread: number;

  constructor(private readonly o: WrapPoolOptions = {}) {
    super(ENTRY);
    this.threads = o.threads || availableParallelism();
    this.minPerThread = o.minPerThread ?? 16;
  }

  protected start(filename: string): Piscina<WrapTask, WrapResult> {
    return new Piscina({
      filename,
      minThreads: this.threads,
      // Not piscina's default 'sync' Atomics: between tasks an idle thread then blocks in
      // Atomics.wait, stopping its event loop, which its docs allow only for tasks that leave
      // nothing asynchronous behind. Our task is async (crypto) and with
      // 'sync' a posted slice now and then was never picked up, the thread asleep, until
      // the budget below ran out (test/bench/wrap-stall.ts: 5 runs in 8 stalled; with
      // 'disabled' or 'async', none in 12). Plain messages cost nothing at a slice's size.
      atomics: 'disabled',
      maxThreads: this.threads,
      // Plain JavaScript built from the sources (worker-build.ts): no loader, no hooks thread.
      execArgv: [],
      // (No idle timeout: the threads stay for the server's life, minThreads = maxThreads.)
      ...(this.o.priority === undefined ? {} : { workerData: { priority: this.o.priority } }),
    });
  }

  /** True when a page of `n` members is worth sending to the pool. */
  worthIt(n: number): boolean {
    return n >= this.minPerThread * 2;
  }

  /**
   * Wraps K to each packet, in order; null where the packet could not be parsed
   * or wrapped. Rejects only when the pool itself fails (a worker died).
   */
  async wrap(sessionKey: SessionKey, packets: readonly Uint8Array[]): Promise<Array<Uint8Array | null>> {
    if (sessionKey.algorithm !== 'aes256' || sessionKey.data.length !== 32) throw new Error('unexpected session key');
    const slices = Math.max(1, Math.min(this.threads, Math.floor(packets.length / this.minPerThread)), Math.ceil(packets.length / MAX_SLICE));
    const size = Math.ceil(packets.length / slices);
    const pool = await this.forTask();
    const jobs: Array<Promise<WrapResult>> = [];
    for (let from = 0; from < packets.length; from += size) {
      const key = new Uint8Array(sessionKey.data); // moved to the worker, which zeroes it
      const slice = packets.slice(from, from + size);
      const ends = new Uint32Array(slice.length);
      let total = 0;
      for (let i = 0; i < slice.length; i++) ends[i] = total += slice[i]!.byteLength;
      const bytes = new Uint8Array(total);
      for (let i = 0; i < slice.length; i++) bytes.set(slice[i]!, i ? ends[i - 1]! : 0);
      const task: WrapTask = { key, packets: bytes, ends, ephemeral: this.o.ephemeral ?? 'slice' };
      // A slice that never comes back (a stuck thread) must not hold the fan-out, and every
      // post after it, forever: past a generous budget the page is wrapped on the main thread.
      // Our own referenced timer, not AbortSignal.timeout (which holds its signal weakly and
      // whose abort then depends on piscina still knowing the task): past the budget the
      // slice is rejected whatever became of it. (bench:seal's one-page row saw a slice that
      // never answered and was never aborted, the process idle, on the code before this.)
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const e = Object.assign(new Error('wrap slice outlasted its time budget'), { name: 'AbortError' });
          controller.abort(e);
          reject(e);
        }, SLICE_BUDGET_MS + slice.length * PER_MEMBER_BUDGET_MS);
      });
      const run = pool.run(task, { transferList: [key.buffer, bytes.buffer, ends.buffer], signal: controller.signal });
      run.catch(() => {}); // the race below reports it, or the deadline came first
      jobs.push(Promise.race([run, deadline]).finally(() => clearTimeout(timer)));
    }
    const out: Array<Uint8Array | null> = [];
    for (const r of await Promise.all(jobs)) {
      let at = 0;
      for (const end of r.ends) {
        out.push(end > at ? r.bytes.subarray(at, end) : null);
        at = end;
      }
    }
    return out;
  }

  /** Bounded: a shutdown never waits more than a few seconds on the threads. */
  async close(): Promise<void> {
    const p = await this.detach();
    if (!p) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p.destroy(), new Promise<void>((r) => { timer = setTimeout(r, 5_000); timer.unref(); })]);
    clearTimeout(timer);
  }
}
