// The fan-out of recent posts, read from the store (a running server may be
// writing it: SQLite readers do not block it): how many copies were wrapped,
// and how many are queued, deferred (retrying), sent and failed, with a rate and
// an ETA. Read-only; only ids, counts and times, never content.

import type { Sql } from '../store/db.ts';
import { countHeld } from '../store/held.ts';
import { countMembers } from '../store/members.ts';
import { recentPosts, type RecentPost } from '../store/posts.ts';
import { QueueStore } from '../store/queue.ts';
import { queueStats } from './commands/queue.ts';

export interface FanoutStatus {
  id: number;
  list: string | null;
  messageId: string | null;
  received: string;
  size: number;
  /** Copies the fan-out will make: the wrapped count once wrapping is done, else the list's members now. */
  members: number;
  wrapped: number;
  wrapDone: boolean;
  queued: number;
  sending: number;
  deferred: number;
  sent: number;
  failed: number;
  bounced: number;
  /** Copies accepted by the relay per second, from the first wrap to the last acceptance; null before any. */
  ratePerSecond: number | null;
  /** Seconds until every copy is settled (at that rate, and not before the deferred copies' next attempt); 0 when done, null when unknown. */
  etaSeconds: number | null;
  state: 'wrapping' | 'delivering' | 'done' | 'done-with-failures';
}

export interface StatusSnapshot {
  at: string;
  /** The node id of the data folder asking (several nodes on one database); absent when not known. */
  node?: string;
  queue: ReturnType<typeof queueStats>;
  held: number;
  posts: FanoutStatus[];
}

export const MAX_STATUS_POSTS = 200;

/**
 * Seconds until every copy is settled: the copies not waiting for a retry go at
 * the measured rate; deferred copies cannot go before their next attempt.
 */
function eta(active: number, rate: number | null, retryAt: number, now: number): number | null {
  const waiting = retryAt > now ? Math.ceil((retryAt - now) / 1000) : 0;
  if (active <= 0) return Math.max(waiting, 1);
  if (!rate) return null;
  return Math.max(Math.ceil(active / rate), waiting);
}

export async function statusSnapshot(sql: Sql, o: { limit?: number; now?: number; node?: string } = {}): Promise<StatusSnapshot> {
  const now = o.now ?? Date.now();
  const limit = Math.min(Math.max(1, o.limit ?? 10), MAX_STATUS_POSTS);
  const queue = new QueueStore(sql);
  const posts = await recentPosts(sql, limit);
  const out: FanoutStatus[] = [];
  for (const p of posts) {
    const states = await queue.copyStates(p.id);
    const memberCount = p.wrap_done === 1 ? 0 : await countMembers(sql, p.list_id);
    out.push(fanoutOf(p, states, memberCount, now));
  }
  const held = await countHeld(sql);
  return { at: new Date(now).toISOString(), ...(o.node ? { node: o.node } : {}), queue: queueStats(await queue.stats()), held, posts: out };
}

function fanoutOf(p: RecentPost, states: Awaited<ReturnType<QueueStore['copyStates']>>, memberCount: number, now: number): FanoutStatus {
  const c = { queued: 0, sending: 0, deferred: 0, sent: 0, failed: 0, bounced: 0 };
  let last: number | null = null;
  let retryAt = 0;
  for (const r of states) {
    if (r.state === 'queued') {
      c[r.retried ? 'deferred' : 'queued'] += r.n;
      if (r.retried) retryAt = Math.max(retryAt, r.next ?? 0);
    }
    if (r.state === 'sending' || r.state === 'claimed') c.sending += r.n;
    else if (r.state === 'sent') { c.sent += r.n; last = Math.max(last ?? 0, r.last ?? 0); } else if (r.state === 'failed') c.failed += r.n;
    else if (r.state === 'bounced') c.bounced += r.n;
  }
  const wrapped = c.queued + c.sending + c.deferred + c.sent + c.failed + c.bounced;
  const wrapDone = p.wrap_done === 1;
  const total = wrapDone ? wrapped : Math.max(wrapped, memberCount);
  const settled = c.sent + c.failed + c.bounced;
  const remaining = Math.max(0, total - settled);
  const seconds = last !== null ? Math.max(0.001, (last - p.created_at) / 1000) : null;
  const rate = seconds !== null && c.sent > 0 ? c.sent / seconds : null;
  const done = wrapDone && remaining === 0;
  return {
    id: p.id, list: p.address, messageId: p.message_id, received: new Date(p.created_at).toISOString(), size: p.size,
    members: total, wrapped, wrapDone, ...c,
    ratePerSecond: rate === null ? null : Math.round(rate * 10) / 10,
    etaSeconds: done ? 0 : eta(remaining - c.deferred, rate, retryAt, now),
    state: !wrapDone ? 'wrapping' : !done ? 'delivering' : c.failed + c.bounced > 0 ? 'done-with-failures' : 'done',
  };
}
