// Moderating in the browser: the HTTP API a list's owner and moderators use to
// read held posts decrypted on their own machine and to approve or reject them
// with a signed request. The server re-wraps a held post's session key to the
// moderator's registered key (as the archive does for members) and never renders
// plaintext.
//
// POST /v1/lists/:address/moderation/auth/challenge  ChallengeRequest -> ChallengeResponse (a moderate-login statement)
// POST /v1/lists/:address/moderation/auth/login      LoginRequest     -> LoginResponse
// GET  /v1/lists/:address/moderation/held                              -> HeldList
// POST /v1/lists/:address/moderation/held/messages   { ids ≤ 10 }     -> HeldMessages
// POST /v1/lists/:address/moderation/held/:id/decision  SignedDecision -> DecisionResponse
//
// Both statements have their own first line, so neither parses as an archive
// log-in or a member's signed request (shared/api/statements.ts), and those do
// not parse as these: a signature made for one purpose is useless for another.

import { z } from 'zod';
import { Address, ArmoredPublicKey, ArmoredSignature, Base64, Fingerprint } from './types.ts';

export const MODERATION_ACTIONS = ['approve', 'reject'] as const;
export type ModerationAction = (typeof MODERATION_ACTIONS)[number];

/** How far a decision's date may be from the server's clock. */
export const DECISION_SKEW_MS = 10 * 60_000;
/** Held messages per request (each can be as large as the list's size limit). */
export const MAX_HELD_PER_REQUEST = 10;
/** Bytes of held posts in one answer: the server sends those that fit (always the first asked for); the client asks again for the rest. */
export const MAX_HELD_BYTES_PER_ANSWER = 16 * 1024 * 1024;
/** Held posts listed at once (oldest first). */
export const MAX_HELD_LISTED = 200;

export interface ModerationLoginFields {
  server: string;
  list: string;
  address: string;
  challengeId: string;
  expiresAt: string;
}

export interface DecisionFields {
  server: string;
  list: string;
  address: string;
  held: number;
  action: ModerationAction;
  /** Random per decision; the server refuses one it has seen. */
  nonce: string;
  date: string;
}

function text(kind: string, fields: Record<string, string>): string {
  const body = Object.entries(fields).map(([k, v]) => {
    if (/[\r\n]/.test(v)) throw new Error(`statement field ${k} has a line break`);
    return `${k}: ${v}`;
  });
  return [`letterlock-${kind}: v1`, ...body, ''].join('\n');
}

export function moderationLoginStatement(f: ModerationLoginFields): string {
  return text('moderate-login', { server: f.server, list: f.list, address: f.address, challenge: f.challengeId, expires: f.expiresAt });
}

export function decisionStatement(f: DecisionFields): string {
  return text('moderate', {
    server: f.server, list: f.list, address: f.address, held: String(f.held), action: f.action, nonce: f.nonce, date: f.date,
  });
}

/** The fields of a moderation statement of the given kind, or null when it is not one (never throws). */
export function parseModerationStatement(statement: string, kind: 'moderate-login' | 'moderate'): Record<string, string> | null {
  if (statement.length > 4096) return null;
  const [first, ...rest] = statement.split('\n');
  if (first !== `letterlock-${kind}: v1` || rest[rest.length - 1] !== '') return null;
  const fields: Record<string, string> = {};
  for (const line of rest.slice(0, -1)) {
    const i = line.indexOf(': ');
    if (i <= 0 || Object.hasOwn(fields, line.slice(0, i))) return null;
    fields[line.slice(0, i)] = line.slice(i + 2);
  }
  return fields;
}

export const HeldMeta = z.object({
  id: z.number().int().positive(),
  /** The From address of the post, as the server read it from the outer message (null: unreadable). */
  sender: z.string().max(320).nullable(),
  size: z.number().int().nonnegative(),
  /** Why it was held: a reason code of the pipeline (server/pipeline/reasons.ts). */
  reason: z.string().max(100),
  receivedAt: z.string(),
});
export type HeldMeta = z.infer<typeof HeldMeta>;

export const HeldList = z.object({ held: z.array(HeldMeta).max(MAX_HELD_LISTED), more: z.boolean() });
export type HeldList = z.infer<typeof HeldList>;

export const HeldMessagesRequest = z.object({ ids: z.array(z.number().int().positive()).min(1).max(MAX_HELD_PER_REQUEST) });
export type HeldMessagesRequest = z.infer<typeof HeldMessagesRequest>;

export const HeldMessage = z.object({
  meta: HeldMeta,
  /** The held post's session key re-wrapped to the moderator's registered key: a PKESK packet. */
  wrappedKey: Base64,
  /** The sender's encrypted data packet as it arrived. wrappedKey ‖ body is an OpenPGP message. */
  body: Base64,
  /** The sender's registered key on this list, when they have one (to check the post's signature). */
  senderKey: z.object({ address: Address, fingerprint: Fingerprint, publicKey: ArmoredPublicKey }).nullable(),
});
export type HeldMessage = z.infer<typeof HeldMessage>;

/** In the order asked for; fewer than asked when the rest would not fit in one answer. */
export const HeldMessages = z.object({ messages: z.array(HeldMessage) });
export type HeldMessages = z.infer<typeof HeldMessages>;

/** A decision: the decisionStatement() text and a detached signature over it by the moderator's key. */
export const SignedDecision = z.object({ statement: z.string().max(4096), signature: ArmoredSignature });
export type SignedDecision = z.infer<typeof SignedDecision>;

export const DecisionResponse = z.object({
  held: z.number().int().positive(),
  action: z.enum(MODERATION_ACTIONS),
  /** approve: 'accepted' (delivered to the list) or 'refused' (the post no longer passes, with its code). */
  result: z.string(),
  code: z.string().nullable(),
});
export type DecisionResponse = z.infer<typeof DecisionResponse>;
