// The list server's HTTP API, version 1: every request and response body as a zod
// schema, so the server validates what arrives and the extension validates what
// it receives with the same definitions. JSON everywhere; binary as base64.
// Errors are always { error: code, message } with a fitting HTTP status.

import { z } from 'zod';

export const API_PREFIX = '/v1';

// ---- common pieces ---------------------------------------------------------

const MAX_ARMORED_KEY = 64 * 1024;
const MAX_ARMORED_SIGNATURE = 8 * 1024;

export const Address = z.string().trim().toLowerCase().max(254).regex(/^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+\.[^\s@<>()",;:\\[\]]+$/, 'not an email address');
/**
 * An address the server already holds for a member (answers, never requests): the
 * operator may register one on a single-label domain, as the demo's alice@localhost,
 * and a reader must still find that member's key to check their signature.
 */
export const MemberAddress = z.string().trim().toLowerCase().max(254).regex(/^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+$/, 'not an email address');
/** 40 hex digits for a v4 key, 64 for a v6 key (RFC 9580 §5.5.4). */
export const Fingerprint = z.string().regex(/^([0-9A-F]{40}|[0-9A-F]{64})$/, 'a 40- or 64-digit upper-case hex fingerprint');
export const KeyId = z.string().regex(/^[0-9A-F]{16}$/, 'a 16-digit upper-case hex key ID');
export const ArmoredPublicKey = z.string().max(MAX_ARMORED_KEY).includes('-----BEGIN PGP PUBLIC KEY BLOCK-----');
export const ArmoredSignature = z.string().max(MAX_ARMORED_SIGNATURE).includes('-----BEGIN PGP SIGNATURE-----');
export const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
/** Single-use tokens (confirmation, unsubscribe, session): 32 random bytes, base64url. */
export const Token = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a token');

export const ApiError = z.object({ error: z.string(), message: z.string() });
export type ApiError = z.infer<typeof ApiError>;

/** Error codes the API answers with, beside the key-policy codes of shared/errors.ts. */
export const API_ERROR_CODES = [
  'BAD_REQUEST', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'RATE_LIMITED', 'UNAUTHORIZED', 'FORBIDDEN',
  'TOKEN_INVALID', 'CHALLENGE_INVALID', 'SIGNATURE_INVALID', 'NOT_A_MEMBER', 'ALREADY_MEMBER', 'CONFLICT', 'BUSY',
] as const;

/** How a subscriber receives list mail (the type is DeliveryForm in envelope/copy.ts). */
export const DeliveryFormSchema = z.enum(['pgp-mime', 'inline']);

// ---- list discovery --------------------------------------------------------
// GET /v1/lists/:address

export const ListInfo = z.object({
  address: Address,
  name: z.string(),
  description: z.string().nullable(),
  policy: z.object({
    posting: z.enum(['members', 'moderated', 'announce']),
    signatureRequired: z.boolean(),
    maxBytes: z.number().int().positive(),
    subscription: z.enum(['open', 'moderated']),
    /** Replay protection: posts signed longer ago than this are refused (absent from older servers). */
    replayWindowDays: z.number().int().positive().optional(),
  }),
  listKey: z.object({ fingerprint: Fingerprint, armored: ArmoredPublicKey }),
  /** Base URL of this API, as the server knows itself (for the extension to pin). */
  apiBase: z.string().url(),
});
export type ListInfo = z.infer<typeof ListInfo>;

// ---- subscription ----------------------------------------------------------
// POST /v1/lists/:address/subscriptions          SubscribeRequest -> SubscribeResponse (202)
// POST /v1/lists/:address/subscriptions/confirm  ConfirmRequest   -> ConfirmResponse

export const SubscribeRequest = z.object({
  address: Address,
  publicKey: ArmoredPublicKey,
  delivery: DeliveryFormSchema.default('pgp-mime'),
});
export type SubscribeRequest = z.infer<typeof SubscribeRequest>;

export const SubscribeResponse = z.object({ status: z.literal('confirmation-sent'), expiresAt: z.string() });
export type SubscribeResponse = z.infer<typeof SubscribeResponse>;

export const ConfirmRequest = z.object({ token: Token });
export type ConfirmRequest = z.infer<typeof ConfirmRequest>;

export const ConfirmResponse = z.object({
  status: z.enum(['member', 'pending-approval']),
  address: Address,
  fingerprint: Fingerprint,
});
export type ConfirmResponse = z.infer<typeof ConfirmResponse>;

/** The confirmation mail carries this line (inside the encryption) for the extension to find. */
export const CONFIRMATION_TOKEN_LINE = /^Letterlock-Confirm: ([A-Za-z0-9_-]{43})$/m;

// ---- signed requests (key change, unsubscribe, delivery form) --------------
// POST /v1/lists/:address/requests   SignedRequest -> SignedRequestResponse
// The statement is made by statementText() in ./statements.ts and signed with a
// detached signature by the member's current key.

export const SignedAction = z.enum(['unsubscribe', 'key-change', 'delivery']);
export type SignedAction = z.infer<typeof SignedAction>;

export const SignedRequest = z.object({
  statement: z.string().max(4096),
  signature: ArmoredSignature,
  /** For key-change: the new key (its user ID must hold the member's address). */
  newPublicKey: ArmoredPublicKey.optional(),
});
export type SignedRequest = z.infer<typeof SignedRequest>;

export const SignedRequestResponse = z.object({ status: z.enum(['unsubscribed', 'key-changed', 'delivery-changed']) });

// POST /v1/lists/:address/revocations  { revocationCertificate } -> { status: 'revoked' }
export const RevocationRequest = z.object({ revocationCertificate: z.string().max(MAX_ARMORED_KEY) });

// POST /v1/lists/:address/unsubscribe  { address } -> 202 (confirmation mailed)
export const UnsubscribeByMailRequest = z.object({ address: Address });

// ---- archive log-in ---------------------------------------------------------
// POST /v1/lists/:address/auth/challenge  ChallengeRequest -> ChallengeResponse
// POST /v1/lists/:address/auth/login      LoginRequest     -> LoginResponse
// Authenticated requests send "Authorization: Bearer <token>".

export const ChallengeRequest = z.object({ address: Address });
export const ChallengeResponse = z.object({
  challengeId: Token,
  /** The exact text to sign (detached signature); see loginStatement(). */
  statement: z.string(),
  expiresAt: z.string(),
});
export type ChallengeResponse = z.infer<typeof ChallengeResponse>;

export const LoginRequest = z.object({ challengeId: Token, signature: ArmoredSignature });
export type LoginRequest = z.infer<typeof LoginRequest>;
export const LoginResponse = z.object({ token: Token, expiresAt: z.string(), address: Address, fingerprint: Fingerprint });
export type LoginResponse = z.infer<typeof LoginResponse>;

// ---- archive -----------------------------------------------------------------
// GET  /v1/lists/:address/archive/threads?before=<cursor>&limit=<n≤100>  -> ThreadPage
// GET  /v1/lists/:address/archive/thread?id=<n> | ?messageId=<id>         -> Thread (the one holding that post)
// POST /v1/lists/:address/archive/messages   { ids: number[] ≤ 50 }      -> ArchiveMessages
// GET  /v1/lists/:address/members/keys/:keyId                            -> MemberKey

export const MessageMeta = z.object({
  id: z.number().int().positive(),
  messageId: z.string().nullable(),
  inReplyTo: z.string().nullable(),
  references: z.array(z.string()),
  date: z.string().nullable(),
  size: z.number().int().nonnegative(),
});
export type MessageMeta = z.infer<typeof MessageMeta>;

export const Thread = z.object({
  rootId: z.number().int().positive(),
  messages: z.array(MessageMeta),
  lastDate: z.string().nullable(),
});
export type Thread = z.infer<typeof Thread>;

export const ThreadPage = z.object({ threads: z.array(Thread), nextCursor: z.string().nullable() });
export type ThreadPage = z.infer<typeof ThreadPage>;

export const ArchiveMessagesRequest = z.object({ ids: z.array(z.number().int().positive()).min(1).max(50) });
export type ArchiveMessagesRequest = z.infer<typeof ArchiveMessagesRequest>;

export const ArchiveMessage = z.object({
  meta: MessageMeta,
  /** K re-wrapped to the signed-in member's key: one PKESK packet. */
  wrappedKey: Base64,
  /** The stored encrypted body: one SEIPD packet. wrappedKey ‖ body is an OpenPGP message. */
  body: Base64,
});
export type ArchiveMessage = z.infer<typeof ArchiveMessage>;

export const ArchiveMessages = z.object({ messages: z.array(ArchiveMessage) });
export type ArchiveMessages = z.infer<typeof ArchiveMessages>;

export const MemberKey = z.object({ address: MemberAddress, fingerprint: Fingerprint, publicKey: ArmoredPublicKey });
export type MemberKey = z.infer<typeof MemberKey>;
