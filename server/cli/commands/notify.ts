// The per-list switches for what operators are told (server/ops/): held-post
// notices to moderators and the owner's digest, and the moderators themselves.
// Options of `list set` (list.ts adds them and calls applyNotify).

import type { Command } from 'commander';
import type { Sql } from '../../store/db.ts';
import { getNotifySettings, MAX_MODERATORS, setNotifySettings, type NotifySettings } from '../../store/notify.ts';
import { CliError, EXIT } from '../output.ts';
import { collectAddress } from './args.ts';

export interface NotifyOpts { notifyHeld?: boolean; digest?: boolean; moderator?: string[]; /** false: --no-moderators */ moderators?: boolean }

export const NOTIFY_HELP = `Operators are told, signed by the list key and encrypted to their registered key
(the key of their address on this list, else on another list of this server):
  --notify-held / --no-notify-held   a notice to the owner and each --moderator per held post (default on)
  --digest / --no-digest             the owner's digest: failed deliveries, keys expiring within 14 days,
                                     held posts waiting (daily by default: notify.digestIntervalSeconds)`;

/** Positive forms first: commander then leaves each undefined unless given. */
export function notifyOptions(c: Command): Command {
  return c.option('--notify-held', 'notices of held posts to the owner and moderators (the default)')
    .option('--no-notify-held', 'no notices of held posts')
    .option('--digest', "the owner's periodic digest (the default)")
    .option('--no-digest', "no digest for the owner")
    .option('--moderator <addr>', `who moderates beside the owner; replaces the list's moderators (repeat for several, at most ${MAX_MODERATORS})`, collectAddress)
    .option('--no-moderators', 'remove every moderator (the owner still moderates)');
}

/** Applies the options given; returns the list's settings. */
export async function applyNotify(sql: Sql, listId: number, o: NotifyOpts): Promise<NotifySettings> {
  if ((o.moderator?.length ?? 0) > MAX_MODERATORS) throw new CliError(`a list has at most ${MAX_MODERATORS} moderators`, EXIT.USAGE);
  const clear = o.moderators === false;
  return await setNotifySettings(sql, listId, {
    ...(o.notifyHeld === undefined ? {} : { held: o.notifyHeld }),
    ...(o.digest === undefined ? {} : { digest: o.digest }),
    ...(o.moderator ? { moderators: o.moderator } : clear ? { moderators: [] } : {}),
  });
}

export async function notifyJson(sql: Sql, listId: number): Promise<{ notifyHeld: boolean; digest: boolean; moderators: string[] }> {
  const s = await getNotifySettings(sql, listId);
  return { notifyHeld: s.held, digest: s.digest, moderators: s.moderators };
}

export async function notifyLine(sql: Sql, listId: number): Promise<string> {
  const s = await getNotifySettings(sql, listId);
  return `held notices ${s.held ? 'on' : 'off'}, digest ${s.digest ? 'on' : 'off'}, moderators ${s.moderators.length ? s.moderators.join(', ') : '(owner only)'}`;
}
