// `letterlock held ...`: posts held for a moderator (kept encrypted), approved or rejected.

import { mailmanService } from '../../mailman/endpoint.ts';
import type { Command } from 'commander';
import { listKeyCache } from '../../app.ts';
import { createEventLog } from '../../log/log.ts';
import { OpenPool } from '../../pipeline/pool.ts';
import { HeldUnavailable, Pipeline } from '../../pipeline/run.ts';
import { Fanout } from '../../pipeline/wrap.ts';
import { getHeld, listHeld } from '../../store/held.ts';
import { allLists } from '../../store/lists.ts';
import { QueueStore } from '../../store/queue.ts';
import { globals, needList, withStore } from '../context.ts';
import { CliError, date, emit, iso, note, size, table } from '../output.ts';
import { idArg } from './args.ts';
import { notifyQueued } from '../../store/wakeup.ts';

/** Held reasons as a moderator reads them; unknown codes are shown as they are. */
const REASONS: Record<string, string> = {
  moderated: 'moderated list',
  HELD_FOR_MODERATION: 'moderated list',
};

export function register(program: Command): void {
  const held = program.command('held').description('posts held for a moderator: list, approve, reject')
    .addHelpText('after', `
Held posts stay encrypted to the list key; approving one runs its fan-out (a running
server delivers the copies), rejecting one tells the sender why.

Examples:
  letterlock held list news@lists.example.org
  letterlock held approve 12
  letterlock held reject 13`);

  held.command('list [list]').description('held posts, oldest first (all lists, or one)')
    .addHelpText('after', '\n--json prints [{"id", "list", "sender", "messageId", "size", "received", "reason"}].')
    .action(async (listAddr: string | undefined, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const g = globals(cmd);
      const l = listAddr ? await needList(sql, listAddr) : null;
      const names = new Map((await allLists(sql)).map((x) => [x.id, x.address]));
      const rows = await listHeld(sql, l?.id);
      if (rows.length === 0) note(g, l ? `No held posts for ${l.address}.` : 'No held posts.');
      emit(g, rows.map((h) => ({
        id: h.id, list: names.get(h.listId) ?? null, sender: h.sender, messageId: h.outer.messageId ?? null, size: h.size,
        received: iso(h.receivedAt), reason: h.reason,
      })), () => table(rows.map((h) => [
        String(h.id), names.get(h.listId) ?? '?', `from ${h.sender ?? '(unknown)'}`, date(h.receivedAt), size(h.size), REASONS[h.reason] ?? h.reason,
      ])));
    }));

  for (const verb of ['approve', 'reject'] as const) {
    held.command(verb).argument('<id>', 'the held post (see: letterlock held list)', idArg)
      .description(verb === 'approve' ? 'accept a held post: its copies are queued for every member' : 'refuse a held post: the sender gets one bounce saying why')
      .addHelpText('after', `\n--json prints {"id", "result", "copies", "code"}.`)
      .action(async (id: number, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql, secret, config, dataDir }) => {
        if (!await getHeld(sql, id)) throw new CliError(`no held post ${id} (see: letterlock held list)`);
        const queue = new QueueStore(sql);
        const log = createEventLog({ file: `${dataDir}/logs/cli.log`, stdout: false });
        const keysFor = listKeyCache(secret);
        const pool = new OpenPool({ threads: 1, budgetMs: config.pipeline.budgetMs });
        // Lists bound to Mailman: the Core's roster and policy apply here too (issue 11).
        const mailman = mailmanService(config, dataDir, { sql, queue, log });
        const pipeline = new Pipeline({ sql, queue, log, keysFor, pool, fanout: new Fanout({ sql, queue, log, keysFor, ...(mailman ? { mailman } : {}) }), ...(mailman ? { mailman } : {}) });
        try {
          const outcome = await (verb === 'approve' ? pipeline.approve(id) : pipeline.reject(id)).catch((e: unknown) => {
            // Decided meanwhile, or being decided now (a moderator, the running server).
            throw e instanceof HeldUnavailable ? new CliError(e.why === 'gone' ? `no held post ${id} (decided already)` : `held post ${id} is being decided right now (by a moderator or another command); try again in a moment`) : e;
          });
          // The fan-out runs here, to the end, before the command returns.
          const copies = outcome.result === 'accepted' ? (await outcome.fanout).copies : 0;
          await notifyQueued(sql); // the running nodes (PostgreSQL) start on the copies now
          const code = outcome.result === 'refused' ? outcome.code : null;
          emit(globals(cmd), { id, result: outcome.result, copies, code },
            () => `held post ${id}: ${outcome.result}${outcome.result === 'accepted' ? ` (${copies} copies queued; a running server delivers them)` : code ? ` (${code})` : ''}`);
        } finally {
          await pool.close();
        }
      }));
  }
}
