// Step 4, decide: the list's policy, as a pure function of who sent the post and
// how its signature checked out. Accept, hold for a moderator, or refuse.

import { decideMailman, type MailmanPolicyFacts } from '../mailman/policy.ts';
import type { Decision, Verified } from './types.ts';

/** `mailman`: the facts of a list bound to Mailman (its settings decide instead of the list's own policy). */
export function decide(v: Pick<Verified, 'list' | 'member' | 'verification' | 'outer'>, options: { approved?: boolean; mailman?: MailmanPolicyFacts } = {}): Decision {
  if (options.mailman) return decideMailman(v, options.mailman, options.approved ?? false);
  const { list, member, verification } = v;
  if (!member || !verification) return { action: 'refuse', code: list.postPolicy === 'announce' ? 'NOT_POSTER' : 'NOT_MEMBER' };
  if (member.keyState !== 'valid') return { action: 'refuse', code: 'KEY_STATE_INVALID' };
  if (!verification.valid) {
    // Without a signature requirement only a missing signature is let through:
    // a signature that does not verify is evidence of tampering or forgery.
    if (!(verification.code === 'UNSIGNED' && !list.requireSignature)) return { action: 'refuse', code: verification.code };
  }
  if (list.postPolicy === 'announce' && !list.posters.includes(member.address)) return { action: 'refuse', code: 'NOT_POSTER' };
  if (list.postPolicy === 'moderated' && !options.approved) return { action: 'hold', reason: 'moderated' };
  return { action: 'accept' };
}
