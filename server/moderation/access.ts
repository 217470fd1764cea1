// Moderating in the browser (issue 12 item 4). A list's owner or moderator proves
// their registered key by signing a single-use challenge, as a member does for the
// archive, and gets a short-lived session. For each held post they open, the
// post's session key K is unwrapped with the list key and re-wrapped to their
// key: the server handles only K, in memory, and never renders the post. A
// decision (approve, reject) is a statement signed by the same key, naming the
// server, list, held post, action, a fresh nonce and the time.
//
// Who moderates: await moderatorsOf() (the owner, the list's moderators, and for a
// list bound to Mailman the owners and moderators of its synced roster), checked
// again on every request, with the key registered for that address right now
// (registeredKeyOf: on this list, else on another list of this server). Removing
// a moderator or changing their key ends their session.
//
// Challenges and sessions share the archive's tables; their address column holds
// "moderate:<address>", which no real address can be (':' is refused in one), so
// an archive challenge or session is never taken for a moderator's and back.

import * as openpgp from 'openpgp';
import {
  DECISION_SKEW_MS, MAX_HELD_BYTES_PER_ANSWER, MAX_HELD_LISTED, MODERATION_ACTIONS, moderationLoginStatement, parseModerationStatement, readPublicKey, verifyStatement,
  type ChallengeResponse, type DecisionResponse, type HeldList, type HeldMessage, type HeldMeta, type LoginResponse, type ModerationAction, type SignedDecision,
} from '../../shared/index.ts';
import { ApiFailure, busy, notFound, unauthorized } from '../http/errors.ts';
import type { ListKeys } from '../lists/lists.ts';
import { moderatorsOf } from '../ops/held-notice.ts';
import type { Outcome } from '../pipeline/run.ts';
import { hashToken, newToken } from '../registry/tokens.ts';
import type { Sql } from '../store/db.ts';
import { heldSummaries, getHeld, type HeldRecord } from '../store/held.ts';
import type { ListRecord } from '../store/lists.ts';
import { getMember } from '../store/members.ts';
import { registeredKeyOf } from '../store/notify.ts';
import { deleteSessions, getSession, insertChallengeUnderCap, insertSession, recordNonce, takeChallenge } from '../store/registry.ts';

export const MODERATION_CHALLENGE_TTL_MS = 2 * 60_000;
export const MODERATION_SESSION_TTL_MS = 30 * 60_000;
const SCOPE = 'moderate:';

export interface ModeratorSession {
  list: ListRecord;
  address: string;
  fingerprint: string;
  publicKey: string;
}

export interface ModerationDeps {
  sql: Sql;
  publicUrl: string;
  keysFor(list: ListRecord): Promise<ListKeys>;
  pipeline?: { approve(heldId: number): Promise<Outcome>; reject(heldId: number): Promise<Outcome> };
  now?: () => number;
  maxPendingChallenges?: number;
  /** Bytes of held posts per answer (tests lower it); MAX_HELD_BYTES_PER_ANSWER by default. */
  maxAnswerBytes?: number;
}

const loginFailed = () => new ApiFailure(401, 'SIGNATURE_INVALID', 'The log-in signature is not valid for a moderator of this list.');
const decisionInvalid = (why: string) => new ApiFailure(401, 'SIGNATURE_INVALID', `The decision is not valid: ${why}.`);

export class ModerationAccess {
  /** Held posts with a decision under way: a second decision on one waits for none, it is refused. */
  private readonly deciding = new Set<number>();

  constructor(private readonly d: ModerationDeps) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  private async isModerator(list: ListRecord, address: string): Promise<boolean> {
    return (await moderatorsOf(this.d.sql, list)).includes(address.toLowerCase());
  }

  /** Issued to anyone, as the archive's are: the answer does not tell who moderates. */
  async challenge(list: ListRecord, address: string): Promise<ChallengeResponse> {
    const { token, hash } = newToken();
    const expiresAt = new Date(this.now() + MODERATION_CHALLENGE_TTL_MS).toISOString();
    const statement = moderationLoginStatement({ server: this.d.publicUrl, list: list.address, address, challengeId: token, expiresAt });
    const busyNow = await insertChallengeUnderCap(this.d.sql, this.d.maxPendingChallenges ?? 10_000, this.now(), hash, list.id, SCOPE + address, statement, this.now() + MODERATION_CHALLENGE_TTL_MS);
    if (busyNow) {
      throw busy('Too many log-ins are under way on this server. Try again in a moment.', ((busyNow.soonest ?? this.now()) - this.now()) / 1000);
    }
    return { challengeId: token, statement, expiresAt };
  }

  async login(list: ListRecord, challengeId: string, signature: string): Promise<LoginResponse> {
    const challenge = await takeChallenge(this.d.sql, hashToken(challengeId), list.id, this.now());
    if (!challenge || !challenge.address.startsWith(SCOPE)) {
      throw new ApiFailure(401, 'CHALLENGE_INVALID', 'The log-in challenge is unknown, used or expired. Ask for a new one.');
    }
    const address = challenge.address.slice(SCOPE.length);
    const registered = await registeredKeyOf(this.d.sql, list.id, address, this.now());
    if (!registered || !await this.isModerator(list, address)) throw loginFailed();
    const { key } = await readPublicKey(registered.publicKey).catch(() => {
      throw loginFailed();
    });
    if (!(await verifyStatement(challenge.statement, signature, key, new Date(this.now())))) throw loginFailed();
    const { token, hash } = newToken();
    const expiresAt = this.now() + MODERATION_SESSION_TTL_MS;
    await insertSession(this.d.sql, hash, list.id, SCOPE + address, registered.fingerprint, expiresAt);
    return { token, expiresAt: new Date(expiresAt).toISOString(), address, fingerprint: registered.fingerprint };
  }

  /** The moderator behind a bearer token, checked against the list's moderators and registered keys right now. */
  async session(list: ListRecord, bearer: string | undefined): Promise<ModeratorSession> {
    if (!bearer || !/^[A-Za-z0-9_-]{43}$/.test(bearer)) throw unauthorized('Sign in as a moderator of this list first.');
    const s = await getSession(this.d.sql, hashToken(bearer), this.now());
    if (!s || s.listId !== list.id || !s.address.startsWith(SCOPE)) throw unauthorized('Sign in as a moderator of this list first.');
    const address = s.address.slice(SCOPE.length);
    const registered = await registeredKeyOf(this.d.sql, list.id, address, this.now());
    if (!registered || registered.fingerprint !== s.fingerprint || !await this.isModerator(list, address)) {
      await deleteSessions(this.d.sql, list.id, s.address);
      throw unauthorized('Your moderator session has ended. Sign in again.');
    }
    return { list, address, fingerprint: registered.fingerprint, publicKey: registered.publicKey };
  }

  async held(session: ModeratorSession): Promise<HeldList> {
    // Bounded in SQL, oldest first (the order a moderator works through them); payloads are not read here.
    const rows = await heldSummaries(this.d.sql, session.list.id, MAX_HELD_LISTED + 1);
    return {
      held: rows.slice(0, MAX_HELD_LISTED).map((r) => meta({ id: r.id, sender: r.sender, size: r.size, reason: r.reason, receivedAt: r.received_at })),
      more: rows.length > MAX_HELD_LISTED,
    };
  }

  async messages(session: ModeratorSession, ids: number[]): Promise<HeldMessage[]> {
    const records = [];
    for (const id of new Set(ids)) {
      const h = await getHeld(this.d.sql, id);
      if (!h || h.listId !== session.list.id) throw notFound(`No held post ${id} on this list.`);
      records.push(h);
    }
    const { listKey } = await this.d.keysFor(session.list);
    const { key: moderatorKey } = await readPublicKey(session.publicKey).catch(() => {
      throw new ApiFailure(403, 'FORBIDDEN', 'Your registered key cannot be used.');
    });
    const out: HeldMessage[] = [];
    let bytes = 0;
    // One at a time: each may be as large as the list's size limit. The answer
    // stops before the byte bound (the first always goes); the client asks again.
    for (const h of records) {
      const size = typeof h.payload === 'string' ? h.payload.length : h.payload.byteLength;
      if (out.length > 0 && bytes + size > (this.d.maxAnswerBytes ?? MAX_HELD_BYTES_PER_ANSWER)) break;
      bytes += size;
      const { wrappedKey, body } = await rewrapHeld(h, listKey, moderatorKey);
      const sender = h.sender ? await getMember(this.d.sql, session.list.id, h.sender.toLowerCase()) : null;
      out.push({
        meta: meta(h),
        wrappedKey: Buffer.from(wrappedKey).toString('base64'),
        body: Buffer.from(body).toString('base64'),
        senderKey: sender ? { address: sender.address, fingerprint: sender.fingerprint, publicKey: sender.publicKey } : null,
      });
    }
    return out;
  }

  /**
   * Checks a signed decision and carries it out through the pipeline, exactly as
   * the operator's approval does. The statement must name this server, this
   * list, the signed-in moderator, this held post and a date within the skew; the
   * nonce is recorded only once the signature holds (a stranger cannot burn it).
   */
  async decide(session: ModeratorSession, heldId: number, req: SignedDecision): Promise<DecisionResponse> {
    const f = parseModerationStatement(req.statement, 'moderate');
    if (!f) throw decisionInvalid('it is not a Letterlock moderation statement');
    if (f.server !== this.d.publicUrl || f.list !== session.list.address || f.address !== session.address || f.held !== String(heldId)) {
      throw decisionInvalid('it names another server, list, moderator or held post');
    }
    if (!(MODERATION_ACTIONS as readonly string[]).includes(f.action ?? '')) throw decisionInvalid('unknown action');
    if (!f.nonce || !/^[A-Za-z0-9_-]{16,64}$/.test(f.nonce)) throw decisionInvalid('the nonce is missing or malformed');
    const date = Date.parse(f.date ?? '');
    if (!Number.isFinite(date) || Math.abs(date - this.now()) > DECISION_SKEW_MS) throw decisionInvalid('its date is too far from the server\'s clock');
    const { key } = await readPublicKey(session.publicKey).catch(() => {
      throw decisionInvalid('the registered key cannot be read');
    });
    if (!(await verifyStatement(req.statement, req.signature, key, new Date(this.now())))) throw decisionInvalid('the signature does not verify with your registered key');
    const held = await getHeld(this.d.sql, heldId);
    if (!held || held.listId !== session.list.id || !this.d.pipeline) throw notFound('No such held post (another moderator may have decided it already).');
    if (this.deciding.has(heldId)) throw new ApiFailure(409, 'CONFLICT', 'A decision on this held post is under way.');
    if (!await recordNonce(this.d.sql, session.list.id, `moderate:${f.nonce}`, this.now())) throw new ApiFailure(409, 'CONFLICT', 'This decision was already made once.');
    const action = f.action as ModerationAction;
    this.deciding.add(heldId);
    try {
      const outcome = action === 'approve' ? await this.d.pipeline.approve(heldId) : await this.d.pipeline.reject(heldId);
      return { held: heldId, action, result: outcome.result, code: outcome.result === 'refused' ? outcome.code : null };
    } finally {
      this.deciding.delete(heldId);
    }
  }
}

function meta(h: Pick<HeldRecord, 'id' | 'sender' | 'size' | 'reason' | 'receivedAt'>): HeldMeta {
  return { id: h.id, sender: h.sender ? h.sender.slice(0, 320) : null, size: h.size, reason: h.reason.slice(0, 100), receivedAt: new Date(h.receivedAt).toISOString() };
}

/**
 * The held post as the moderator reads it: its session key unwrapped with the
 * list key and wrapped again to the moderator's key (a PKESK of the version the
 * encrypted data needs), and the sender's encrypted data packet unchanged.
 */
export async function rewrapHeld(h: HeldRecord, listKey: openpgp.PrivateKey, moderatorKey: openpgp.PublicKey): Promise<{ wrappedKey: Uint8Array; body: Uint8Array }> {
  const damaged = () => new ApiFailure(422, 'OPENPGP_MALFORMED', `Held post ${h.id} cannot be read with the list key.`);
  let bytes: Uint8Array;
  let message: openpgp.Message<Uint8Array>;
  try {
    bytes = typeof h.payload === 'string' ? await dearmor(h.payload) : h.payload;
    message = await openpgp.readMessage({ binaryMessage: bytes });
  } catch {
    throw damaged();
  }
  // The sender's encrypted data packet, byte for byte (openpgp.js would write back a lazy stream).
  const body = encryptedDataOf(bytes);
  if (!body) throw damaged();
  const seipd = message.packets.findPacket(openpgp.enums.packet.symEncryptedIntegrityProtectedData) as
    { version?: number; cipherAlgorithm?: number; aeadAlgorithm?: number } | undefined;
  if (!seipd) throw damaged();
  let keys: Awaited<ReturnType<typeof openpgp.decryptSessionKeys>>;
  try {
    keys = await openpgp.decryptSessionKeys({ message, decryptionKeys: listKey });
  } catch {
    throw damaged();
  }
  const k = keys[0];
  // SEIPD v2 (RFC 9580) names its algorithms in the data packet and wants a v6 PKESK; v1 names the cipher in the PKESK.
  const v2 = seipd.version === 2 && seipd.cipherAlgorithm !== undefined && seipd.aeadAlgorithm !== undefined;
  const algorithm = v2 ? openpgp.enums.read(openpgp.enums.symmetric, seipd.cipherAlgorithm!) : k?.algorithm;
  if (!k || !algorithm) throw damaged();
  try {
    const wrapped = await openpgp.encryptSessionKey({
      data: k.data, algorithm: algorithm as openpgp.enums.symmetricNames,
      ...(v2 ? { aeadAlgorithm: openpgp.enums.read(openpgp.enums.aead as never, seipd.aeadAlgorithm!) as openpgp.enums.aeadNames } : {}),
      encryptionKeys: moderatorKey, format: 'binary', date: new Date(),
    });
    return { wrappedKey: wrapped, body };
  } catch {
    throw new ApiFailure(403, 'FORBIDDEN', 'Your registered key cannot be used to read held posts.');
  } finally {
    k.data.fill(0);
  }
}

async function dearmor(armored: string): Promise<Uint8Array> {
  const { data } = await openpgp.unarmor(armored);
  if (data instanceof Uint8Array) return data;
  throw new Error('armored payload did not read as bytes');
}

const SESSION_KEY_TAGS = new Set([1, 3]); // PKESK, SKESK
const DATA_TAGS = new Set([18, 20]); // SEIPD, AEAD data

/**
 * The encrypted data packet of a message held as it arrived: what follows its
 * session-key packets (the pipeline held it only after checking that shape).
 * Session-key packets have definite lengths (RFC 9580 §4.2.1: partial lengths
 * are for data packets only); null for anything else.
 */
export function encryptedDataOf(bytes: Uint8Array): Uint8Array | null {
  let at = 0;
  for (let n = 0; at < bytes.length && n < 1000; n++) {
    const b = bytes[at]!;
    if ((b & 0x80) === 0) return null;
    let tag: number, len: number, header: number;
    if (b & 0x40) {
      tag = b & 0x3f;
      const o1 = bytes[at + 1];
      if (o1 === undefined) return null;
      if (o1 < 192) { len = o1; header = 2; }
      else if (o1 < 224) { len = ((o1 - 192) << 8) + (bytes[at + 2] ?? 0) + 192; header = 3; }
      else if (o1 === 255) { len = ((bytes[at + 2] ?? 0) * 2 ** 24) + ((bytes[at + 3] ?? 0) << 16) + ((bytes[at + 4] ?? 0) << 8) + (bytes[at + 5] ?? 0); header = 6; }
      else { len = -1; header = 2; } // partial length
    } else {
      tag = (b >> 2) & 0x0f;
      const type = b & 3;
      if (type === 3) { len = -1; header = 1; }
      else {
        const size = [1, 2, 4][type]!;
        len = 0;
        for (let i = 1; i <= size; i++) len = len * 256 + (bytes[at + i] ?? 0);
        header = 1 + size;
      }
    }
    if (DATA_TAGS.has(tag)) return bytes.subarray(at);
    if (!SESSION_KEY_TAGS.has(tag) || len < 0 || at + header + len > bytes.length) return null;
    at += header + len;
  }
  return null;
}
