// Step 3b, replay: between verify and seal. A signed post is accepted once per
// list, only while its signature is recent, and only on a list its signed
// headers name:
// - a post whose outer Message-ID this list accepted within the window is a
//   duplicate (an MTA retry, or the same mail sent twice): answered as success,
//   not posted again;
// - a signature dated before the list's window (default 7 days) is refused as
//   SIGNATURE_TOO_OLD, one dated beyond the clock skew ahead as
//   SIGNATURE_FROM_FUTURE;
// - signed protected To/Cc headers that do not name this list: WRONG_LIST;
// - a signature whose digest this list accepted before: REPLAYED.
// Signed content that is bare text (inline PGP from some clients) has no signed
// headers: only the digest and the window apply to it. An unsigned post (lists
// that do not require signatures) has only the Message-ID check.
// The digest is recorded in the same transaction as the archive record
// (archive.ts), which checks again: two copies racing through the pipeline give
// one post. A held post is judged by the window at the time it was held.

import { SIGNATURE_CLOCK_SKEW_MS } from '../../shared/index.ts';
import type { Sql } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import { acceptedMessageId, signatureSeen } from '../store/replay.ts';
import { Refusal, type ReasonCode } from './reasons.ts';
import type { Verified } from './types.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export function replayWindowMs(list: Pick<ListRecord, 'replayWindowDays'>): number {
  return list.replayWindowDays * DAY_MS;
}

type ReplayFacts = Pick<Verified, 'list' | 'verification' | 'signatureDigest' | 'protectedRecipients'>;

/** The pure part: the window and the signed recipients, judged at time `at` (ms). */
export function judgeFreshness(v: ReplayFacts, at: number): ReasonCode | null {
  if (!v.verification?.valid) return null; // nothing signed to judge (unsigned posts where allowed)
  if (v.protectedRecipients !== null && !v.protectedRecipients.includes(v.list.address.toLowerCase())) return 'WRONG_LIST';
  const signedAt = v.verification.signedAt?.getTime() ?? null;
  if (signedAt === null || signedAt < at - replayWindowMs(v.list)) return 'SIGNATURE_TOO_OLD';
  if (signedAt > at + SIGNATURE_CLOCK_SKEW_MS) return 'SIGNATURE_FROM_FUTURE';
  return null;
}

export type ReplayVerdict = { action: 'new' } | { action: 'duplicate'; postId: number };

/**
 * The post's Message-ID, In-Reply-To and References as archived and delivered:
 * the verified sender's signed (protected) ones where the content states them,
 * else the outer ones. A webmail gives the outer mail ids of its own, while
 * readers see (and reply to) the protected ones. Duplicates are still found by
 * the outer Message-ID (duplicateOf): a mail sent again is a duplicate, the same
 * signature under a new outer id a replay.
 */
export function threadingOf(v: Pick<Verified, 'outer' | 'threading'>): { messageId: string | null; inReplyTo: string | null; references: string[] } {
  const t = v.threading ?? null;
  return {
    messageId: t?.messageId ?? v.outer.messageId,
    inReplyTo: t?.inReplyTo ?? v.outer.inReplyTo,
    references: t?.references.length ? t.references : v.outer.references,
  };
}

/** A duplicate of an accepted post's outer Message-ID within the window, or null. */
export async function duplicateOf(sql: Sql, v: Pick<Verified, 'list' | 'outer'>, now: number): Promise<number | null> {
  return v.outer.messageId ? await acceptedMessageId(sql, v.list.id, v.outer.messageId, now - replayWindowMs(v.list)) : null;
}

/**
 * Runs the checks; throws a Refusal for a replay. `heldAt` (ms) is when a held
 * post arrived: its window counts from then, not from the approval.
 */
export async function checkReplay(v: Verified, sql: Sql, options: { now?: number; heldAt?: number } = {}): Promise<ReplayVerdict> {
  const now = options.now ?? Date.now();
  const dup = await duplicateOf(sql, v, now);
  if (dup !== null) return { action: 'duplicate', postId: dup };
  const code = judgeFreshness(v, options.heldAt ?? now);
  if (code) throw new Refusal(code);
  if (v.signatureDigest && await signatureSeen(sql, v.list.id, v.signatureDigest)) throw new Refusal('REPLAYED');
  return { action: 'new' };
}
