// Members-only archive access (DESIGN.md step 8, rule 5). A member proves their
// key by signing a single-use challenge and gets a short-lived session; for each
// message they open, K is unwrapped with the archive key and re-wrapped to their
// key. The server never decrypts a body: it handles only K, in memory.
// Every request re-checks membership, so removing a member ends their sessions.

import type { PrivateKey } from 'openpgp';
import {
  KeyIdentity, KeyRecipient, loginStatement, parsePrivateKey, readPublicKey, rewrap, unlockPrivateKey, verifyStatement,
  type ArchiveMessage, type ChallengeResponse, type LoginResponse, type MemberKey, type Thread, type ThreadPage,
} from '../../shared/index.ts';
import { ApiFailure, busy, notFound, unauthorized } from '../http/errors.ts';
import { hashToken, newToken } from '../registry/tokens.ts';
import type { Sql } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import { isReader } from '../store/mailman.ts';
import { findMemberByKeyId, getMember, type MemberRecord } from '../store/members.ts';
import { getPost } from '../store/posts.ts';
import { deleteSessions, getSession, insertChallengeUnderCap, insertSession, takeChallenge } from '../store/registry.ts';
import { metaOf, threadOf, threadPage } from './threads.ts';

export const CHALLENGE_TTL_MS = 2 * 60_000;
export const SESSION_TTL_MS = 30 * 60_000;

export interface Session {
  list: ListRecord;
  member: MemberRecord;
}

const loginFailed = () => new ApiFailure(401, 'SIGNATURE_INVALID', 'The log-in signature is not valid for a member of this list.');

export class ArchiveAccess {
  private readonly identities = new Map<number, Promise<KeyIdentity>>();
  private readonly recipients = new Map<string, Promise<KeyRecipient>>();

  constructor(private readonly deps: { sql: Sql; secret: string; publicUrl: string; now?: () => number; maxPendingChallenges?: number }) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /**
   * Issued to anyone who asks, member or not: answering differently would tell a
   * stranger who is subscribed. The log-in is what checks membership.
   */
  async challenge(list: ListRecord, address: string): Promise<ChallengeResponse> {
    // A cap on the rows strangers can make us hold; each lives 2 minutes.
    const { token, hash } = newToken();
    const expiresAt = new Date(this.now() + CHALLENGE_TTL_MS).toISOString();
    const statement = loginStatement({ server: this.deps.publicUrl, list: list.address, address, challengeId: token, expiresAt });
    const busyNow = await insertChallengeUnderCap(this.deps.sql, this.deps.maxPendingChallenges ?? 10_000, this.now(), hash, list.id, address, statement, this.now() + CHALLENGE_TTL_MS);
    if (busyNow) {
      throw busy('Too many log-ins are under way on this server. Try again in a moment.', ((busyNow.soonest ?? this.now()) - this.now()) / 1000);
    }
    return { challengeId: token, statement, expiresAt };
  }

  async login(list: ListRecord, challengeId: string, signature: string): Promise<LoginResponse> {
    const challenge = await takeChallenge(this.deps.sql, hashToken(challengeId), list.id, this.now());
    if (!challenge) throw new ApiFailure(401, 'CHALLENGE_INVALID', 'The log-in challenge is unknown, used or expired. Ask for a new one.');
    const member = await getMember(this.deps.sql, list.id, challenge.address);
    if (!member || member.keyState !== 'valid' || !await this.onRoster(list, member.address)) throw loginFailed();
    const { key } = await readPublicKey(member.publicKey).catch(() => {
      throw loginFailed();
    });
    if (!(await verifyStatement(challenge.statement, signature, key, new Date(this.now())))) throw loginFailed();
    const { token, hash } = newToken();
    const expiresAt = this.now() + SESSION_TTL_MS;
    await insertSession(this.deps.sql, hash, list.id, member.address, member.fingerprint, expiresAt);
    return { token, expiresAt: new Date(expiresAt).toISOString(), address: member.address, fingerprint: member.fingerprint };
  }

  /** A list bound to Mailman: only who Mailman lists (member, owner, moderator) reads its archive. */
  private async onRoster(list: ListRecord, address: string): Promise<boolean> {
    return !list.mailmanListId || await isReader(this.deps.sql, list.id, address);
  }

  /** The member behind a bearer token, checked against the member table right now. */
  async session(list: ListRecord, bearer: string | undefined): Promise<Session> {
    if (!bearer || !/^[A-Za-z0-9_-]{43}$/.test(bearer)) throw unauthorized();
    const s = await getSession(this.deps.sql, hashToken(bearer), this.now());
    if (!s || s.listId !== list.id) throw unauthorized();
    const member = await getMember(this.deps.sql, list.id, s.address);
    // Removed, re-keyed or revoked since the log-in: the session is over.
    if (!member || member.fingerprint !== s.fingerprint || member.keyState !== 'valid' || !await this.onRoster(list, member.address)) {
      await deleteSessions(this.deps.sql, list.id, s.address);
      throw unauthorized('Your archive session has ended. Sign in again.');
    }
    return { list, member };
  }

  async threads(session: Session, before: number | null, limit: number): Promise<ThreadPage> {
    return await threadPage(this.deps.sql, session.list.id, before, limit);
  }

  /** The thread holding one post (by archive id or Message-ID): what a permalink opens. */
  async thread(session: Session, key: { id: number } | { messageId: string }): Promise<Thread> {
    const t = await threadOf(this.deps.sql, session.list.id, key);
    if (!t) throw notFound('No such message in this archive.');
    return t;
  }

  async messages(session: Session, ids: number[]): Promise<ArchiveMessage[]> {
    const identity = await this.archiveIdentity(session.list);
    const recipient = await this.recipientFor(session.member);
    const unique = [...new Set(ids)];
    const posts = [];
    for (const id of unique) {
      const p = await getPost(this.deps.sql, id);
      if (!p || p.listId !== session.list.id) throw notFound(`No message ${id} in this archive.`);
      posts.push(p);
    }
    return Promise.all(
      posts.map(async (p): Promise<ArchiveMessage> => ({
        meta: metaOf(p),
        wrappedKey: Buffer.from(await rewrap(p.archivePkesk, identity, recipient)).toString('base64'),
        body: Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength).toString('base64'),
      })),
    );
  }

  /**
   * A member's public key by primary-key fingerprint or key ID, so a reader can
   * verify a post's signature (signatures name the issuer's fingerprint). Keys
   * that sign with a subkey are found by that subkey's owner fingerprint only.
   */
  async memberKey(session: Session, id: string): Promise<MemberKey> {
    const m = await findMemberByKeyId(this.deps.sql, session.list.id, id.toUpperCase());
    if (!m) throw notFound('No member of this list has that key.');
    return { address: m.address, fingerprint: m.fingerprint, publicKey: m.publicKey };
  }

  private archiveIdentity(list: ListRecord): Promise<KeyIdentity> {
    let p = this.identities.get(list.id);
    if (!p) {
      p = parsePrivateKey(list.archivePrivate)
        .then((k) => unlockPrivateKey(k, this.deps.secret))
        .then((k: PrivateKey) => new KeyIdentity(k));
      this.identities.set(list.id, p);
      p.catch(() => this.identities.delete(list.id));
    }
    return p;
  }

  private recipientFor(member: MemberRecord): Promise<KeyRecipient> {
    let p = this.recipients.get(member.fingerprint);
    if (!p) {
      p = readPublicKey(member.publicKey).then(({ key }) => KeyRecipient.fromPublicKey(key));
      if (this.recipients.size > 1000) this.recipients.clear(); // a bound, not an LRU: rebuilding one is cheap
      this.recipients.set(member.fingerprint, p);
      p.catch(() => this.recipients.delete(member.fingerprint));
    }
    return p.catch((e: unknown) => {
      throw new ApiFailure(403, 'FORBIDDEN', `Your registered key cannot be used: ${e instanceof Error ? e.message : 'unusable key'}`);
    });
  }
}
