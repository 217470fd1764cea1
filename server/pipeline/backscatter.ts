// Bounces and notices that must stay asynchronous (a moderator's rejection, the
// held notice, a message some of its lists refused) follow backscatter rules:
// never to the null sender, to MAILER-DAEMON or postmaster, to a sender whose
// mail was automatic (RFC 3834 Auto-Submitted, Precedence bulk/junk/list), or to
// any list's own addresses on this server; and at most a few an hour per
// recipient and per list, counted in the database so a restart does not reset
// them. Refusals decided while the SMTP client waits are answered there (550)
// and never reach this module.

import { bouncesSince, logBounce } from '../store/bounces.ts';
import type { Sql } from '../store/db.ts';
import { listAddressesInDomain, type ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import type { EventLog, LogCode } from '../log/log.ts';
import { lockKeys } from '../store/registry.ts';

export const BOUNCE_LIMITS = { windowMs: 60 * 60 * 1000, perRecipient: 5, perList: 100 };

export type Suppression = 'NULL_SENDER' | 'AUTOMATIC_SENDER' | 'AUTO_SUBMITTED' | 'LIST_ADDRESS' | 'RATE_RECIPIENT' | 'RATE_LIST';

/** Role addresses of mail systems and of list software (RFC 3834 section 2 spirit), any case, any +tag. */
function isAutomaticLocal(local: string): boolean {
  const base = local.split('+', 1)[0]!;
  return base === 'mailer-daemon' || base === 'postmaster' || base === 'double-bounce' || base.startsWith('owner-')
    || base.endsWith('-request') || base.endsWith('-owner') || base.endsWith('-bounces') || base.endsWith('-bounce');
}

function split(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  return at > 0 && at < address.length - 1 ? { local: address.slice(0, at), domain: address.slice(at + 1) } : null;
}

/** Is `address` one of this server's list addresses: the list itself, list+anything, list-request/-owner/-bounces? */
export async function isListAddress(sql: Sql, address: string): Promise<boolean> {
  const a = split(address.toLowerCase());
  if (!a) return false;
  const lists = await listAddressesInDomain(sql, a.domain);
  return lists.some((l) => {
    const local = l.slice(0, l.lastIndexOf('@'));
    if (l.slice(local.length + 1) !== a.domain) return false;
    return a.local === local || a.local.startsWith(`${local}+`) || a.local.startsWith(`${local}-`);
  });
}

/** Why no bounce may go to `to` (before counting), or null. */
export async function bounceBarrier(sql: Sql, to: string | null, autoSubmitted: boolean): Promise<Suppression | null> {
  if (!to) return 'NULL_SENDER';
  const a = split(to.toLowerCase());
  if (!a) return 'NULL_SENDER';
  if (isAutomaticLocal(a.local)) return 'AUTOMATIC_SENDER';
  if (autoSubmitted) return 'AUTO_SUBMITTED';
  if (await isListAddress(sql, to)) return 'LIST_ADDRESS';
  return null;
}

export interface BounceDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  onQueued?(): void;
}

/**
 * Queues one bounce or notice to `to` unless a rule forbids it or a limit is
 * reached; the count and the queue row are written in one transaction.
 * Returns whether it was queued.
 */
export async function queueBounce(d: BounceDeps, list: ListRecord, to: string | null, autoSubmitted: boolean, mail: (to: string) => string, now = Date.now()): Promise<boolean> {
  const barrier = await bounceBarrier(d.sql, to, autoSubmitted);
  const rcpt = to?.toLowerCase() ?? '';
  const result = barrier ?? await d.sql.tx(async (): Promise<Suppression | null> => {
    // PostgreSQL: concurrent bounces to the same recipient or list count one after the other.
    await lockKeys(d.sql, [['bounce-rcpt', rcpt], ['bounce-list', String(list.id)]]);
    const count = bouncesSince(d.sql, now - BOUNCE_LIMITS.windowMs);
    if (await count({ rcpt }) >= BOUNCE_LIMITS.perRecipient) return 'RATE_RECIPIENT';
    if (await count({ listId: list.id }) >= BOUNCE_LIMITS.perList) return 'RATE_LIST';
    await logBounce(d.sql, list.id, rcpt, now, BOUNCE_LIMITS.windowMs);
    await d.queue.add({ listId: list.id, postId: null, kind: 'bounce', rcpt, mail: mail(rcpt) });
    return null;
  });
  if (result) {
    d.log.info('bounce.suppressed', { list: list.address, code: result satisfies LogCode });
    return false;
  }
  d.log.info('bounce.queued', { list: list.address });
  d.onQueued?.();
  return true;
}
