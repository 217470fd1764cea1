// The values that flow one way through the pipeline. Each step takes the previous
// step's value and returns the next; plaintext (the decrypted packets) exists
// only in `Verified`, in memory, and never reaches the store or log.

import type { ClearFacts, InnerDisplay, OuterFacts, ProtectedThreading, PayloadForm, Sealed, Verification } from '../../shared/index.ts';
import type { ListRecord } from '../store/lists.ts';
import type { MemberRecord } from '../store/members.ts';
import type { ReasonCode } from './reasons.ts';

export interface Incoming {
  list: ListRecord;
  /** SMTP MAIL FROM; null for the null sender <>. */
  envelopeFrom: string | null;
  raw: Uint8Array;
}

export interface Parsed {
  list: ListRecord;
  envelopeFrom: string | null;
  size: number;
  form: PayloadForm;
  /** The OpenPGP payload exactly as found (armored text or binary): ciphertext. */
  payload: string | Uint8Array;
  outer: OuterFacts;
  /** The outer Subject and From name as sent in clear: memory only, never stored in clear; null for a held post. */
  clear: ClearFacts | null;
}

/** Opened with the list key (in the open pool) and checked against the claimed sender's key. */
export interface Verified extends Parsed {
  /** The sender's signed packets, bodies byte for byte: plaintext, memory only. */
  innerPackets: Uint8Array;
  /** The member in From; null when From is not a member. */
  member: MemberRecord | null;
  /** The signature check against that member's key; null without a member. */
  verification: Verification | null;
  /** Hex SHA-256 of the verified signature packet; null unless a member's signature verified. */
  signatureDigest: string | null;
  /** Lower-cased bare addresses of the signed (protected) To and Cc; null when the signed content states none. */
  protectedRecipients: string[] | null;
  /** Whether the signed content is MIME, and its protected Subject and author name. */
  inner: InnerDisplay | null;
  /** The verified sender's signed Message-ID, In-Reply-To and References (pipeline/replay.ts threadingOf). */
  threading?: ProtectedThreading | null;
}

export type Decision =
  | { action: 'accept' }
  | { action: 'hold'; reason: 'moderated' }
  | { action: 'refuse'; code: ReasonCode }
  /** Mailman's "discard" (bound lists only): answered 250, not delivered, logged. */
  | { action: 'discard' };

export interface SealedPost {
  verified: Verified;
  sealed: Sealed;
}

/** One page of the fan-out: the PKESKs of some members, notices for the rest. */
export interface WrappedPage {
  copies: Array<{ rcpt: string; pkesk: Uint8Array }>;
  missed: Array<{ rcpt: string; code: 'KEY_EXPIRED' | 'KEY_REVOKED' | 'KEY_NO_ENCRYPTION' }>;
  /** The last member address of the page: where a resumed fan-out continues. */
  last: string;
}
