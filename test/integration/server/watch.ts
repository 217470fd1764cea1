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
}

/**
 * GETs `url` one request after another, `gapMs` apart, until stopped; every
 * request is timed. The gap keeps the rate under the API's per-IP limit; any
 * block of the server's loop longer than the gap still delays a request in flight.
 */
export class LatencyProbe {
  private readonly times: number[] = [];
  private readonly bad: LatencyReport['bad'] = [];
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
        await r.arrayBuffer();
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
    };
  }
}
