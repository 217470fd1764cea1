// The posting policy of a list bound to Mailman, as Mailman's moderation rules
// would apply it: emergency holds everything; a regular member's own
// moderation_action, else the list's default_member_action; a nonmember's
// action from the accept/hold/reject/discard_these_nonmembers lists, the
// nonmember's own moderation_action, else default_nonmember_action. "defer"
// means no moderation: the post goes on. Letterlock then requires what it
// always does before a post is delivered: a valid signature by the sender's
// registered key. Held posts stay ciphertext; discard drops with a log line.
// A held post that a moderator approves is still delivered only if its signature
// verifies against a registered key: a nonmember without one is refused then.

import type { Sql } from '../store/db.ts';
import type { Decision, Verified } from '../pipeline/types.ts';
import type { MailmanAction } from './rest.ts';
import { getState, rosterOf, type MailmanState } from '../store/mailman.ts';

export interface MailmanPolicyFacts {
  /** Whether the sender is a regular member in Mailman's roster. */
  isMember: boolean;
  /** The Mailman action for this sender before Letterlock's own checks. */
  action: MailmanAction;
  /** Mailman's emergency switch: every post is held. */
  emergency: boolean;
}

/** Mailman's nonmember lists hold addresses and ^regexps; a regexp that does not compile is skipped. */
function listed(patterns: readonly string[], address: string): boolean {
  for (const p of patterns.slice(0, 10_000)) {
    if (p.startsWith('^')) {
      // Operator-written patterns, bounded in length; the address is at most 320 characters.
      if (p.length > 500) continue;
      try {
        if (new RegExp(p, 'i').test(address)) return true;
      } catch { /* not a regexp JavaScript reads */ }
    } else if (p.toLowerCase() === address) return true;
  }
  return false;
}

/** What Mailman's settings say about a post from `sender` (lower-cased From address, or null). */
/** `state`: the list's stored Mailman state when the caller has it (undefined: read here). */
export async function policyFacts(sql: Sql, listId: number, sender: string | null, state?: MailmanState | null): Promise<MailmanPolicyFacts> {
  const s = (state === undefined ? await getState(sql, listId) : state) ?? { defaultMemberAction: 'defer', defaultNonmemberAction: 'hold', emergency: false, nonmemberLists: { accept: [], hold: [], reject: [], discard: [] } } as Pick<MailmanState, 'defaultMemberAction' | 'defaultNonmemberAction' | 'emergency' | 'nonmemberLists'>;
  const address = sender?.toLowerCase() ?? '';
  const rows = address ? await rosterOf(sql, listId, address) : [];
  const member = rows.find((r) => r.role === 'member');
  if (member) return { isMember: true, action: member.moderationAction ?? s.defaultMemberAction, emergency: s.emergency };
  // Mailman's nonmember-moderation rule: the nonmember's own action first (defer: no moderation), then the legacy lists, then the default.
  let action: MailmanAction = s.defaultNonmemberAction;
  const nonmember = rows.find((r) => r.role === 'nonmember');
  if (nonmember?.moderationAction) action = nonmember.moderationAction === 'defer' ? 'accept' : nonmember.moderationAction;
  else if (listed(s.nonmemberLists.accept, address)) action = 'accept';
  else if (listed(s.nonmemberLists.hold, address)) action = 'hold';
  else if (listed(s.nonmemberLists.reject, address)) action = 'reject';
  else if (listed(s.nonmemberLists.discard, address)) action = 'discard';
  return { isMember: false, action, emergency: s.emergency };
}

/**
 * The decision for a bound list. `approved`: a moderator approved the held post.
 * A post that is let through still needs the sender's registered key and a valid signature.
 */
export function decideMailman(v: Pick<Verified, 'list' | 'member' | 'verification'>, facts: MailmanPolicyFacts, approved: boolean): Decision {
  const { list, member, verification } = v;
  // A signature that fails against the sender's registered key is refused whatever the policy: it is forgery or tampering.
  if (member && verification && !verification.valid && !(verification.code === 'UNSIGNED' && !list.requireSignature)) {
    return { action: 'refuse', code: verification.code };
  }
  if (member && member.keyState !== 'valid') return { action: 'refuse', code: 'KEY_STATE_INVALID' };
  if (!approved) {
    // Mailman's emergency rule comes before moderation: everything is held.
    if (facts.emergency) return { action: 'hold', reason: 'moderated' };
    if (facts.action === 'reject') return { action: 'refuse', code: facts.isMember ? 'REJECTED_BY_POLICY' : 'NOT_MEMBER' };
    if (facts.action === 'discard') return { action: 'discard' };
    if (facts.action === 'hold') return { action: 'hold', reason: 'moderated' };
  }
  // Accepted (or approved): delivered only with a verified signature by a registered key.
  if (!member || !verification) return { action: 'refuse', code: facts.isMember ? 'NO_REGISTERED_KEY' : 'NOT_MEMBER' };
  return { action: 'accept' };
}
