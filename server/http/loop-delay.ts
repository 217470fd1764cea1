// The main event loop's delay, for /health: the figure that shows whether any
// work (a post's parsing, a slow query) held up SMTP, HTTP and delivery. Node's
// histogram is sampled every second into a ring of the last 60 seconds.

import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopDelay {
  /** Worst delay in the last second and in the last minute, in ms. */
  snapshot(): { lastSecondMs: number; maxLastMinuteMs: number };
  stop(): void;
}

export function watchLoopDelay(): LoopDelay {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const ring: number[] = [];
  const timer = setInterval(() => {
    ring.push(histogram.max / 1e6);
    if (ring.length > 60) ring.shift();
    histogram.reset();
  }, 1000);
  timer.unref();
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    snapshot() {
      const current = histogram.max / 1e6;
      return { lastSecondMs: round(ring.at(-1) ?? current), maxLastMinuteMs: round(Math.max(current, ...ring)) };
    },
    stop() {
      clearInterval(timer);
      histogram.disable();
    },
  };
}
