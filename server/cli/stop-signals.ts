// How a long-running command (serve, the demo) stops on SIGTERM and Ctrl-C.
// A repeated SIGTERM while closing (a supervisor, a second kill) is ignored: the
// close is bounded by a timer, and dying by the signal's default action mid-close
// would leave copies 'sending' (re-sent at the next start). A second Ctrl-C is a
// person who wants out now: it stops at once, exit 130, saying so.

const CLOSE_LIMIT_MS = 15_000;

/**
 * Installs the handlers. `close` is called once, at the first signal; it returns
 * the close to wait for, or nothing when there is nothing to close yet (exit 0 at
 * once). The process exits 0 when the close resolves, 1 when it fails or takes
 * longer than `limitMs`. Returns whether a stop has begun.
 */
export function onStopSignals(close: () => Promise<unknown> | undefined, o: { name?: string; limitMs?: number } = {}): () => boolean {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (signal === 'SIGINT') {
        process.stderr.write(`${o.name ?? 'letterlock'}: stopped without finishing the close (second Ctrl-C)\n`);
        process.exit(130);
      }
      return;
    }
    stopping = true;
    const closing = close();
    if (!closing) process.exit(0);
    // A close that hangs (a relay that never answers) must not keep the process.
    setTimeout(() => process.exit(1), o.limitMs ?? CLOSE_LIMIT_MS).unref();
    closing.then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return () => stopping;
}
