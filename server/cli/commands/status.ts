// `letterlock status [--watch]`: each recent post's fan-out, with rate and ETA.

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { nodeId } from '../../config/config.ts';
import { globals, openStore } from '../context.ts';
import { date, duration, emit, plural, size, table } from '../output.ts';
import { MAX_STATUS_POSTS, statusSnapshot, type StatusSnapshot } from '../status.ts';

function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export function statusText(s: StatusSnapshot): string {
  const q = s.queue;
  // The node on a line of its own: the queue line's shape is what scripts read.
  const head = `${s.node ? `node ${s.node}\n` : ''}queue: ${q.queued} queued, ${q.sending} sending, ${q.sent} sent, ${q.failed} failed, ${q.bounced} bounced; ${plural(s.held, 'held post')}`;
  if (s.posts.length === 0) return `${head}\nNo posts yet.`;
  const rows = s.posts.map((p) => [
    String(p.id), p.list ?? '?', date(Date.parse(p.received)), size(p.size), `${p.wrapped}/${p.members}`, String(p.queued), String(p.deferred),
    String(p.sent), String(p.failed + p.bounced), p.ratePerSecond === null ? '-' : `${p.ratePerSecond}/s`,
    p.etaSeconds === null ? '-' : p.etaSeconds === 0 ? 'done' : duration(p.etaSeconds * 1000), p.state.replace(/-/g, ' '),
  ]);
  return `${head}\n\n${table(rows, ['POST', 'LIST', 'RECEIVED', 'SIZE', 'WRAPPED', 'QUEUED', 'DEFERRED', 'SENT', 'FAILED', 'RATE', 'ETA', 'STATE'])}`;
}

export function register(program: Command): void {
  program.command('status').description("recent posts' fan-out: wrapped, queued, deferred, sent, failed, with rate and ETA")
    .option('--watch', 'refresh until Ctrl-C')
    .option('--interval <seconds>', 'refresh interval with --watch (default 2)', intArg(1, 3600), 2)
    .option('--limit <n>', `how many recent posts (default 10, at most ${MAX_STATUS_POSTS})`, intArg(1, MAX_STATUS_POSTS), 10)
    .addHelpText('after', `
WRAPPED is copies made / copies due (the members); DEFERRED copies wait for a retry
after the relay refused them for now; FAILED counts failed and bounced copies. RATE
is copies accepted by the relay per second since the post came in; ETA is the time
left at that rate. The store is read only, so it is safe beside a running server.

--json prints one snapshot: {"at", "node" (this data folder's node id), "queue": {...as queue --json}, "held", "posts": [{"id",
"list", "messageId", "received", "size", "members", "wrapped", "wrapDone", "queued",
"sending", "deferred", "sent", "failed", "bounced", "ratePerSecond", "etaSeconds",
"state"}]}, state being wrapping, delivering, done or done-with-failures. With --watch,
--json prints one such snapshot per line (JSON Lines) at each refresh.

Examples:
  letterlock status
  letterlock status --watch --interval 5
  letterlock status --json --limit 50`)
    .action(async (o: { watch?: boolean; interval: number; limit: number }, cmd: Command) => {
      const g = globals(cmd);
      const store = await openStore(cmd);
      const snap = () => statusSnapshot(store.sql, { limit: o.limit, node: nodeId(store.config) });
      if (!o.watch) {
        try {
          const s = await snap();
          emit(g, s, () => statusText(s));
        } finally {
          await store.sql.close();
        }
        return;
      }
      const tty = Boolean(process.stdout.isTTY) && !g.json;
      const show = async () => {
        const s = await snap();
        if (g.json) process.stdout.write(`${JSON.stringify(s)}\n`);
        else process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : '\n'}${statusText(s)}\n${tty ? `\n(refreshing every ${o.interval}s; Ctrl-C to stop)\n` : ''}`);
      };
      await show();
      await new Promise<void>((resolve) => {
        // A failed refresh (the database busy a moment) shows at the next one.
        const timer = setInterval(() => { show().catch(() => {}); }, o.interval * 1000);
        const stop = () => { clearInterval(timer); resolve(); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await store.sql.close();
    });
}
