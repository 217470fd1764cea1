// The unlocked key: in memory, and in the browser's session storage (memory only,
// cleared when the browser closes, not readable by content scripts) so that a
// service worker the browser stopped picks it up again. It locks at a fixed time
// after unlocking (the user's timeout) or on "lock now". Crypto operations are
// counted per minute so a page that keeps feeding blocks cannot run the key hot.

import * as openpgp from 'openpgp';
import type { PrivateKey } from 'openpgp';
import { refuse } from '../errors.ts';

/** The slice of storage.session the session needs (a fake in unit tests). */
export interface SessionArea {
  get(key: string): Promise<Record<string, unknown>>;
  set(items: Record<string, unknown>): Promise<void>;
  remove(key: string): Promise<void>;
}

interface SavedUnlock {
  /** The unlocked keys; they live only in session storage. */
  keys: { armored: string; fingerprint: string }[];
  lockAt: number;
}

const UNLOCKED = 'unlocked';
const TOKENS = 'archiveTokens';

export interface ArchiveToken {
  token: string;
  expiresAt: number;
  address: string;
}

export class UnlockedSession {
  /** Unlocked keys by fingerprint, in the order they were unlocked. */
  private keys = new Map<string, PrivateKey>();
  private lockAtMs: number | null = null;
  private tokens = new Map<string, ArchiveToken>();

  constructor(
    private readonly area: SessionArea,
    private readonly now: () => number = Date.now,
  ) {}

  /** Picks up an unlock that outlived a stopped service worker, if still in time. */
  async restore(): Promise<void> {
    const saved = (await this.area.get(UNLOCKED))[UNLOCKED] as SavedUnlock | undefined;
    if (saved && Array.isArray(saved.keys) && saved.lockAt > this.now()) {
      try {
        for (const k of saved.keys.slice(0, 64)) {
          const key = await openpgp.readPrivateKey({ armoredKey: k.armored });
          this.keys.set(key.getFingerprint().toUpperCase(), key);
        }
        this.lockAtMs = saved.lockAt;
      } catch {
        await this.lock();
      }
    } else if (saved) {
      await this.lock();
    }
    const tokens = (await this.area.get(TOKENS))[TOKENS] as Record<string, ArchiveToken> | undefined;
    for (const [list, t] of Object.entries(tokens ?? {})) if (t.expiresAt > this.now()) this.tokens.set(list, t);
  }

  /** Adds unlocked keys to the session (the lock time starts again for all). */
  async unlock(key: PrivateKey | PrivateKey[], timeoutMinutes: number): Promise<number> {
    const list = Array.isArray(key) ? key : [key];
    if (list.length === 0 || list.some((k) => !k.isDecrypted())) throw new Error('unlock() wants decrypted keys');
    this.expire();
    const lockAt = this.now() + timeoutMinutes * 60_000;
    for (const k of list) this.keys.set(k.getFingerprint().toUpperCase(), k);
    this.lockAtMs = lockAt;
    await this.save();
    return lockAt;
  }

  /** Forgets one key (it was removed); the others stay unlocked. */
  async forget(fingerprint: string): Promise<void> {
    if (!this.keys.delete(fingerprint)) return;
    if (this.keys.size === 0) await this.lock();
    else await this.save();
  }

  private async save(): Promise<void> {
    const saved: SavedUnlock = { keys: [...this.keys].map(([fingerprint, k]) => ({ armored: k.armor(), fingerprint })), lockAt: this.lockAtMs! };
    await this.area.set({ [UNLOCKED]: saved });
  }

  async lock(): Promise<void> {
    this.keys.clear();
    this.lockAtMs = null;
    this.tokens.clear();
    await this.area.remove(UNLOCKED);
    await this.area.remove(TOKENS);
  }

  /** When the key locks again, or null when it is locked (expiry checked now). */
  get lockAt(): number | null {
    this.expire();
    return this.lockAtMs;
  }

  /** The unlocked key with this fingerprint (none given: the first unlocked), or a LOCKED refusal. */
  requireKey(fingerprint?: string): PrivateKey {
    this.expire();
    const key = fingerprint === undefined ? this.keys.values().next().value : this.keys.get(fingerprint);
    if (!key) refuse('LOCKED');
    return key;
  }

  /** Every unlocked key (for reading: a message may be encrypted to any of them). */
  unlockedKeys(): PrivateKey[] {
    this.expire();
    return [...this.keys.values()];
  }

  isUnlocked(fingerprint: string): boolean {
    this.expire();
    return this.keys.has(fingerprint);
  }

  get unlocked(): boolean {
    this.expire();
    return this.keys.size > 0;
  }

  getToken(list: string): ArchiveToken | null {
    const t = this.tokens.get(list);
    if (!t || t.expiresAt <= this.now()) return null;
    return t;
  }

  async setToken(list: string, t: ArchiveToken | null): Promise<void> {
    if (t) this.tokens.set(list, t);
    else this.tokens.delete(list);
    await this.area.set({ [TOKENS]: Object.fromEntries(this.tokens) });
  }

  private expire(): void {
    if (this.lockAtMs !== null && this.lockAtMs <= this.now()) {
      // Forget at once in memory; session storage is cleared in the background.
      this.keys.clear();
      this.lockAtMs = null;
      this.tokens.clear();
      void this.area.remove(UNLOCKED).catch(() => {});
      void this.area.remove(TOKENS).catch(() => {});
    }
  }
}

/** At most `limit` operations in any sliding minute. */
export class RateLimiter {
  private times: number[] = [];

  constructor(
    public limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  take(): void {
    const t = this.now();
    while (this.times.length > 0 && this.times[0]! <= t - 60_000) this.times.shift();
    if (this.times.length >= this.limit) refuse('RATE_LIMITED');
    this.times.push(t);
  }
}
