// Moderation room (issue 12 item 4): a list's owner or moderator signs in with the
// key chosen for the list, fetches the held posts (each one's session key re-wrapped
// to that key by the server), decrypts them here, and approves or rejects with a
// decision signed by the same key. The page gets read views, as the reader's
// frames do; the server never sees the plaintext and the page never sees a key.

import {
  concatBytes, decisionStatement, fromBase64, parseModerationStatement, readPublicKey, signStatement, type HeldMessage,
} from '../../../shared/index.ts';
import { ExtensionError, refuse, toErrorView } from '../../errors.ts';
import type { HeldPostView, Requests } from '../../messages.ts';
import { readView, type Decryptor } from '../decrypt.ts';
import type { StoredList } from '../store.ts';
import { remember, type Common, type Room } from './room.ts';

export type ModerationRequests = 'moderation.lists' | 'moderation.login' | 'moderation.held' | 'moderation.decide';

/** Held posts decrypted per call (the server sends at most 10 per request). */
const DECRYPT_AT_MOST = 50;
const PER_REQUEST = 10;
/** Lists remembered as moderated, for the options page (a bound on what the store keeps). */
const MAX_REMEMBERED = 100;

interface ModeratorToken {
  token: string;
  expiresAt: number;
  address: string;
  /** The server's own name for itself, as its log-in statement gave it: decisions name it. */
  server: string;
}

export class ModerationRoom {
  /** Session tokens by list, in memory only: a stopped service worker signs in again. */
  private readonly tokens = new Map<string, ModeratorToken>();

  constructor(private readonly c: Common, private readonly decryptor: Decryptor) {}

  readonly room: Room<ModerationRequests> = {
    'moderation.lists': { callers: ['page'], run: async () => ({ lists: (await this.c.d.store.getSettings()).moderates ?? [] }) },
    'moderation.login': { callers: ['page'], run: async (q) => {
      const t = await this.login(await this.c.requireList(q.list));
      return { address: t.address, expiresAt: new Date(t.expiresAt).toISOString() };
    } },
    'moderation.held': { callers: ['page'], run: (q) => this.held(q.list) },
    'moderation.decide': { callers: ['page'], run: (q) => this.decide(q.list, q.id, q.action) },
  };

  private now(): number {
    return this.c.d.now?.() ?? Date.now();
  }

  private async login(list: StoredList): Promise<ModeratorToken> {
    const d = this.c.d;
    const own = await this.c.keyForList(list);
    const key = d.session.requireKey(own.fingerprint);
    d.rate.take();
    const ch = await d.server.moderationChallenge(list.server, list.address, own.address);
    // Sign only a moderator log-in for this list, this address and this challenge.
    const f = parseModerationStatement(ch.statement, 'moderate-login');
    if (!f || f.list !== list.address || f.address !== own.address || f.challenge !== ch.challengeId || !f.server) {
      refuse('SERVER_BAD_ANSWER', 'the log-in statement does not name this list and address');
    }
    const signature = await signStatement(ch.statement, key);
    const answer = await d.server.moderationLogin(list.server, list.address, { challengeId: ch.challengeId, signature });
    const t: ModeratorToken = { token: answer.token, expiresAt: Date.parse(answer.expiresAt) || this.now() + 600_000, address: answer.address, server: f.server };
    remember(this.tokens, list.address, t, MAX_REMEMBERED);
    await this.rememberModerated(list.address);
    return t;
  }

  private async rememberModerated(address: string): Promise<void> {
    const settings = await this.c.d.store.getSettings();
    const known = settings.moderates ?? [];
    if (known.includes(address)) return;
    await this.c.d.store.putSettings({ ...settings, moderates: [...known, address].slice(-MAX_REMEMBERED) });
  }

  /** Calls the server with the moderator's token, signing in (again) when there is none or it ended. */
  private async withToken<T>(list: StoredList, f: (t: ModeratorToken) => Promise<T>): Promise<T> {
    const held = this.tokens.get(list.address);
    const t = held && held.expiresAt > this.now() + 30_000 && this.c.d.session.unlocked ? held : await this.login(list);
    try {
      return await f(t);
    } catch (e) {
      if (e instanceof ExtensionError && e.code === 'UNAUTHORIZED' && t === held) return f(await this.login(list));
      throw e;
    }
  }

  private async held(listAddress: string): Promise<Requests['moderation.held']['res']> {
    const d = this.c.d;
    const list = await this.c.requireList(listAddress);
    const page = await this.withToken(list, (t) => d.server.heldList(list.server, list.address, t.token));
    const ids = page.held.map((h) => h.id).slice(0, DECRYPT_AT_MOST);
    const views = new Map<number, Pick<HeldPostView, 'read' | 'error'>>();
    // The server may answer with fewer than asked for (a byte bound per answer): ask again for the rest.
    let pending = ids;
    for (let round = 0; pending.length > 0 && round < DECRYPT_AT_MOST; round++) {
      const chunk = pending.slice(0, PER_REQUEST);
      const answer = await this.withToken(list, (t) => d.server.heldMessages(list.server, list.address, t.token, { ids: chunk }));
      const got = answer.messages.filter((m) => chunk.includes(m.meta.id) && !views.has(m.meta.id));
      if (got.length === 0) break;
      for (const m of got) {
        try {
          await this.rememberSender(list, m);
          const bytes = concatBytes([fromBase64(m.wrappedKey), fromBase64(m.body)]);
          views.set(m.meta.id, { read: readView(await this.decryptor.read(bytes, list)), error: null });
        } catch (e) {
          views.set(m.meta.id, { read: null, error: toErrorView(e) });
        }
      }
      pending = pending.filter((id) => !views.has(id));
    }
    return {
      held: page.held.map((h) => ({ ...h, ...(views.get(h.id) ?? { read: null, error: null }) })),
      more: page.more || page.held.length > DECRYPT_AT_MOST,
    };
  }

  /**
   * The sender's registered key, as the list gave it, kept with the member keys
   * fetched from lists so the post's signature can be checked: only when it is a
   * valid key for the held post's sender whose fingerprint the list named.
   */
  private async rememberSender(list: StoredList, m: HeldMessage): Promise<void> {
    const k = m.senderKey;
    if (!k || !m.meta.sender || k.address !== m.meta.sender.toLowerCase()) return;
    try {
      const { key, facts } = await readPublicKey(k.publicKey, { expectedAddress: k.address });
      if (facts.fingerprint !== k.fingerprint) return;
      const signing = await key.getSigningKey();
      await this.c.d.store.putMemberKey({ keyId: signing.getKeyID().toHex().toUpperCase(), fingerprint: facts.fingerprint, address: k.address, list: list.address, armored: k.publicKey });
    } catch {
      // An unusable key: the signature shows as not checked.
    }
  }

  private async decide(listAddress: string, id: unknown, action: unknown): Promise<Requests['moderation.decide']['res']> {
    if (!Number.isSafeInteger(id) || (id as number) <= 0) refuse('BAD_INPUT', 'a held post number');
    if (action !== 'approve' && action !== 'reject') refuse('BAD_INPUT', 'approve or reject');
    const d = this.c.d;
    const list = await this.c.requireList(listAddress);
    const own = await this.c.keyForList(list);
    return this.withToken(list, async (t) => {
      const key = d.session.requireKey(own.fingerprint);
      d.rate.take();
      const statement = decisionStatement({
        server: t.server, list: list.address, address: t.address, held: id as number, action, nonce: d.randomId(), date: new Date(this.now()).toISOString(),
      });
      const signature = await signStatement(statement, key);
      const r = await d.server.decide(list.server, list.address, t.token, id as number, { statement, signature });
      return { id: r.held, action: r.action, result: r.result, code: r.code };
    });
  }
}
