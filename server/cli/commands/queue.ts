// `letterlock queue`: the delivery queue by state, as a table.

import type { Command } from 'commander';
import { QueueStore } from '../../store/queue.ts';
import { globals, withStore } from '../context.ts';
import { emit, table } from '../output.ts';

/** Every state is shown, zero or not, so the shape is stable for scripts. */
const STATES = [
  ['queued', 'waiting for the relay (includes retries)'],
  ['sending', 'handed to the relay now'],
  ['sent', 'accepted by the relay'],
  ['failed', 'given up (listed in the list\'s failures; its owner is told, encrypted)'],
  ['bounced', 'bounced back by the recipient\'s server'],
  ['resent_after_crash', 'sent again after a crash or restart'],
] as const;

export function queueStats(s: Record<string, number>): Record<(typeof STATES)[number][0], number> {
  return Object.fromEntries(STATES.map(([k]) => [k, (s[k] ?? 0) + (k === 'sending' ? s.claimed ?? 0 : 0)])) as never;
}

export function register(program: Command): void {
  program.command('queue').description('the delivery queue: copies by state')
    .addHelpText('after', `
--json prints {"queued", "sending", "sent", "failed", "bounced", "resent_after_crash"}.
For each post's fan-out with rate and ETA, see: letterlock status

Example:
  letterlock queue --json`)
    .action(async (_o: unknown, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const s = queueStats(await new QueueStore(sql).stats());
      emit(globals(cmd), s, () => table(STATES.map(([k, what]) => [k, String(s[k]), what]), ['STATE', 'COPIES', '']));
    }));
}
