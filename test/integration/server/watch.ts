// Watching a running server from outside: its HTTP latency (a GET answered
// late means its event loop was blocked) and its resident memory.

import { readFileSync } from 'node:fs';

/** Resident memory of a process in MB, from /proc/PID/status (VmRSS). */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s on Linux)
}

export interface LatencyReport {
  requests: number;
  worstMs: number;
  p99Ms: number;
  /** Answers that were not 2xx or 429 (a 429 is still an answer from a live loop). */
  bad: Array<{ status: number | string; ms: number }>;
  /**
   * The server's own worst event-loop delay over the run (GET /health reports the worst
   * of its last completed second): unlike the answer times, it does not count the CPU
   * a busy machine gave to other processes. 0 if the URL does not report it.
   */
  loopWorstMs: number;
}

/** The server's /health figure for its event loop, if the body carries it. */
function loopDelayOf(body: ArrayBuffer): number | null {
  try {
    const v = (JSON.parse(Buffer.from(body).toString('utf8')) as { eventLoopDelay?: { lastSecondMs?: unknown } }).eventLoopDelay?.lastSecondMs;
    return typeof v === 'number' ? v : null;
  } catch {
    return null;
  }
}

/**
 * Waits until the server's event loop has settled after its start (module compilation,
 * pools), so a measure taken next is about the input, not the start-up.
 */
export async function settled(healthUrl: string, budgetMs = 60_000): Promise<void> {
  const until = Date.now() + budgetMs;
  for (;;) {
    const r = await fetch(healthUrl, { signal: AbortSignal.timeout(30_000) });
    const ms = loopDelayOf(await r.arrayBuffer());
    if (ms === null) throw new Error(`${healthUrl} reports no eventLoopDelay`);
    if (ms <= 200) return;
    if (Date.now() > until) throw new Error(`the server's event loop did not settle within ${budgetMs} ms (last second: ${ms} ms)`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/**
 * GETs `url` one request after another, `gapMs` apart, until stopped; every
 * request is timed. The gap keeps the rate under the API's per-IP limit; any
 * block of the server's loop longer than the gap still delays a request in flight.
 */
export class LatencyProbe {
  private readonly times: number[] = [];
  private readonly bad: LatencyReport['bad'] = [];
  private loopWorst = 0;
  /** Requests slower than `slowMs`: when they started (performance.now()) and how long they took. */
  readonly slow: Array<{ at: number; ms: number }> = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly url: string, private readonly gapMs = 250, private readonly slowMs = 500) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t0 = performance.now();
      let status: number | string;
      try {
        const r = await fetch(this.url, { signal: AbortSignal.timeout(300_000) });
        const loop = loopDelayOf(await r.arrayBuffer());
        if (loop !== null) this.loopWorst = Math.max(this.loopWorst, loop);
        status = r.status;
      } catch (e) {
        status = (e as Error).name;
      }
      const ms = performance.now() - t0;
      this.times.push(ms);
      if (ms > this.slowMs) this.slow.push({ at: t0, ms });
      if (typeof status !== 'number' || !(status < 300 || status === 429)) this.bad.push({ status, ms });
      await new Promise((r) => setTimeout(r, this.gapMs));
    }
  }

  /** The server's own worst event-loop delay so far (see LatencyReport). */
  get loopWorstMs(): number {
    return this.loopWorst;
  }

  /** The worst latency so far, without stopping. */
  get worstMs(): number {
    return this.times.reduce((a, b) => Math.max(a, b), 0);
  }

  async stop(): Promise<LatencyReport> {
    this.running = false;
    await this.loop;
    const sorted = [...this.times].sort((a, b) => a - b);
    return {
      requests: sorted.length,
      worstMs: sorted.at(-1) ?? 0,
      p99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
      bad: this.bad,
      loopWorstMs: this.loopWorst,
    };
  }
}
