// Why a post is refused, in plain words for the SMTP reply or the bounce. Protocol refusals reuse
// the coded sentences of shared/errors.ts; the list policy adds its own few.

import { ERROR_MESSAGES, type ErrorCode } from '../../shared/index.ts';

export const REFUSAL_MESSAGES = {
  NOT_MEMBER: 'Only members of this list may post to it, and the sender address is not a member.',
  NOT_POSTER: 'This is an announce-only list: only its named posters may post to it.',
  REJECTED_BY_MODERATOR: 'A moderator of this list declined the post.',
  KEY_STATE_INVALID: 'The key registered for the sender address is expired or revoked, so posts from it cannot be accepted.',
  // Replay protection (pipeline/replay.ts)
  REPLAYED: 'This list already accepted a post with this very signature: a signed post is accepted once. Write and sign a new message to post again.',
  WRONG_LIST: 'The signed headers of this post address other recipients, not this list, so it was not meant for this list. Address the list in To or Cc and sign again.',
  // Lists bound to Mailman (server/mailman/policy.ts)
  REJECTED_BY_POLICY: 'The list\'s moderation settings reject posts from this sender.',
  NO_REGISTERED_KEY: 'The sender is a member of this list but has no registered OpenPGP key, so the post cannot be checked. Register a key with the list first (the Letterlock extension does this when you subscribe).',
  SIGNATURE_TOO_OLD: 'The signature on this post is older than this list accepts (or carries no date). Sign the message again and send it now.',
} as const;

export type RefusalCode = keyof typeof REFUSAL_MESSAGES;
export type ReasonCode = ErrorCode | RefusalCode;

export function reasonSentence(code: ReasonCode): string {
  return code in REFUSAL_MESSAGES ? REFUSAL_MESSAGES[code as RefusalCode] : ERROR_MESSAGES[code as ErrorCode];
}

/** Thrown by a pipeline step for a policy refusal (protocol refusals are LetterlockErrors). */
export class Refusal extends Error {
  override name = 'Refusal';
  constructor(readonly code: ReasonCode) {
    super(reasonSentence(code));
  }
}
