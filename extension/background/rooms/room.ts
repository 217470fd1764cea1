// What every room of the background shares: the sender record the checks use,
// the browser-facing dependencies, the shape of a room (each request's handler
// with the callers allowed to send it, side by side), and small helpers the
// rooms all need (stored key, pinned list, the state view).

import { refuse } from '../../errors.ts';
import { insecureServer } from '../../loopback.ts';
import type { Caller, ListView, RequestType, Requests, StateView, ToContent } from '../../messages.ts';
import type { ListServer } from '../server.ts';
import type { RateLimiter, UnlockedSession } from '../session.ts';
import type { KeyStore, StoredKey, StoredList } from '../store.ts';
import { Keyring } from '../keyring.ts';

/** The parts of `runtime.MessageSender` the checks use. */
export interface Sender {
  id?: string;
  url?: string;
  frameId?: number;
  /** Chromium only: the document the message came from (changes when a frame navigates). */
  documentId?: string;
  tab?: { id?: number; url?: string };
}

export interface ServiceDeps {
  store: KeyStore;
  session: UnlockedSession;
  rate: RateLimiter;
  server: ListServer;
  extensionId: string;
  /** The extension's base URL, e.g. "chrome-extension://<id>/". */
  extensionBase: string;
  /** True when the browser has granted host access to this site (scheme://host). */
  hasHostAccess(site: string): Promise<boolean>;
  /** Sends a message to the content script in one frame of one tab; resolves to its answer. */
  pushToFrame(tabId: number, frameId: number, message: ToContent): Promise<unknown>;
  /** Opens an extension page in a new tab. */
  openTab(url: string): Promise<void>;
  /** Fetch for remote images the user asked to load (no cookies, no referrer). */
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** Test builds only: frames report their state words for the test driver. */
  testMarks: boolean;
  /** Called when the allowed sites change, to (re)register the content script. */
  sitesChanged(sites: string[]): Promise<void>;
  /** Called when the lock time changes (null: locked), to set the lock alarm. */
  lockChanged(lockAt: number | null): void;
  randomId(): string;
  /** The clock (tests set it); Date.now by default. */
  now?(): number;
}

/** One request's handler and, beside it, who may send it. */
export interface Entry<T extends RequestType> {
  readonly callers: readonly Caller[];
  run(p: Requests[T]['req'], s: Sender): Promise<Requests[T]['res']>;
}

/** A room: the requests of one concern. */
export type Room<T extends RequestType> = { readonly [K in T]: Entry<K> };

/** A string from a payload, present and bounded. */
export function str(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') refuse('BAD_INPUT', `${what} is missing`);
  if (v.length > max) refuse('TOO_LARGE', `${what} is too long`);
  return v;
}

/** Adds to a map that keeps at most `max` entries, dropping the oldest first. */
export function remember<V>(map: Map<string, V>, id: string, value: V, max: number): void {
  map.set(id, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}

/** Look-ups several rooms need. */
export class Common {
  /** The profile's keys (several; one chosen per list). */
  readonly keyring: Keyring;

  constructor(readonly d: ServiceDeps) {
    this.keyring = new Keyring(d);
  }

  /** The default key (new lists use it). */
  async requireStoredKey(): Promise<StoredKey> {
    return this.keyring.require();
  }

  /** The user's key for one list: the one chosen for it, else the default. */
  keyForList(list: StoredList): Promise<StoredKey> {
    return this.keyring.forList(list);
  }

  /** A pinned list whose key has not changed since. */
  async requireList(address: string): Promise<StoredList> {
    const list = await this.d.store.getList(String(address).trim().toLowerCase());
    if (!list) refuse('LIST_UNKNOWN');
    if (list.changed) refuse('LIST_KEY_CHANGED');
    // A list pinned over plain http before that was refused is not used either.
    if (insecureServer(list.server)) refuse('INSECURE_SERVER');
    return list;
  }

  async listViews(): Promise<ListView[]> {
    return (await this.d.store.allLists()).map(listView).sort((a, b) => a.address.localeCompare(b.address));
  }

  async state(): Promise<StateView> {
    const [keys, settings] = await Promise.all([this.keyring.views(), this.d.store.getSettings()]);
    return {
      hasKey: keys.length > 0,
      key: keys[0] ?? null,
      keys,
      unlocked: this.d.session.unlocked,
      lockAt: this.d.session.lockAt,
      timeoutMinutes: settings.timeoutMinutes,
      opsPerMinute: settings.opsPerMinute,
      indicator: settings.indicator,
      sites: settings.sites,
    };
  }
}

function listView(l: StoredList): ListView {
  return { address: l.address, name: l.name, server: l.server, fingerprint: l.fingerprint, state: l.state, keyFingerprint: l.keyFingerprint ?? null, changedFingerprint: l.changed?.fingerprint ?? null, autoDecrypt: l.autoDecrypt === true };
}
