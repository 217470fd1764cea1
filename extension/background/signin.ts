// Signing in to a list's archive: a log-in statement signed with the unlocked
// key, the session token kept in the unlocked session. Used by the archive room
// and by reading (to fetch a sender's key from the list).

import { parseStatement, signStatement } from '../../shared/index.ts';
import { ExtensionError, refuse } from '../errors.ts';
import type { Common } from './rooms/room.ts';
import type { StoredList } from './store.ts';

export class ArchiveSignIn {
  constructor(private readonly c: Common) {}

  async token(list: StoredList, fresh = false): Promise<string> {
    const t = fresh ? null : this.c.d.session.getToken(list.address);
    if (t) return t.token;
    await this.login(list.address);
    return this.c.d.session.getToken(list.address)!.token;
  }

  async login(listAddress: string): Promise<{ address: string; expiresAt: string }> {
    const d = this.c.d;
    const list = await this.c.requireList(listAddress);
    const own = await this.c.keyForList(list);
    const key = d.session.requireKey(own.fingerprint);
    d.rate.take();
    const ch = await d.server.challenge(list.server, list.address, own.address);
    // Sign only a log-in statement for this list, this member and this challenge.
    const st = parseStatement(ch.statement);
    if (st.kind !== 'login' || st.fields.list !== list.address || st.fields.address !== own.address || st.fields.challenge !== ch.challengeId) {
      refuse('SERVER_BAD_ANSWER', 'the log-in statement does not name this list and address');
    }
    const signature = await signStatement(ch.statement, key);
    const answer = await d.server.login(list.server, list.address, { challengeId: ch.challengeId, signature });
    await d.session.setToken(list.address, { token: answer.token, expiresAt: Date.parse(answer.expiresAt) || Date.now() + 600_000, address: answer.address });
    return { address: answer.address, expiresAt: answer.expiresAt };
  }

  /** Calls the archive with the session token, signing in again once when it expired. */
  async withToken<T>(list: StoredList, f: (token: string) => Promise<T>): Promise<T> {
    try {
      return await f(await this.token(list));
    } catch (e) {
      if (e instanceof ExtensionError && e.code === 'UNAUTHORIZED') return f(await this.token(list, true));
      throw e;
    }
  }
}
