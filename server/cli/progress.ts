// Progress of long work on stderr: a cli-progress bar on a terminal, plain lines
// otherwise (a log, a pipe, a test), at most one every few seconds plus the first
// and the last, so a slow run still shows life and a fast one stays short.

import cliProgress from 'cli-progress';

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function startProgress(label: string, total: number, o: { tty?: boolean; everyMs?: number } = {}): Progress {
  const tty = o.tty ?? Boolean(process.stderr.isTTY);
  if (tty) {
    const bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`,
      stream: process.stderr, hideCursor: true, etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0);
    return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
  }
  const every = o.everyMs ?? 2000;
  let done = 0;
  let lastAt = Date.now();
  const line = () => process.stderr.write(`${label}: ${done}/${total} (${total ? Math.floor((done / total) * 100) : 100}%)\n`);
  line();
  return {
    tick: (n = 1) => {
      done += n;
      if (Date.now() - lastAt >= every && done < total) { lastAt = Date.now(); line(); }
    },
    stop: () => line(),
  };
}
