// The background's request handlers: the only code with keys and crypto. Each
// request is checked twice before any work: the caller kind is derived from the
// browser's `sender` (never from the message), and must be one the bus allows
// for that request type. Answers are views and results, never key material.

import type { PrivateKey, PublicKey } from 'openpgp';
import {
  CONFIRMATION_TOKEN_LINE, concatBytes, fromBase64, generateKey, isLetterlockError, parseStatement, readMessage,
  readPrivateKeyForStorage, readPublicKey, signStatement, unlockPrivateKey, composePost, type ReadResult,
} from '../../shared/index.ts';
import { ExtensionError, refuse, toErrorView } from '../errors.ts';
import {
  ALLOWED, isEnvelope, type Answer, type ArchiveMessageView, type Caller, type InsertArmored, type KeyView,
  type ListView, type ReadView, type RequestType, type Requests, type SignatureView, type StateView,
} from '../messages.ts';
import type { ListInfo } from '../../shared/api/types.ts';
import type { ListServer } from './server.ts';
import { normalizeServer } from './server.ts';
import type { RateLimiter, UnlockedSession } from './session.ts';
import type { KeyStore, Settings, StoredKey, StoredList } from './store.ts';

/** The parts of `runtime.MessageSender` the checks use. */
export interface Sender {
  id?: string;
  url?: string;
  frameId?: number;
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
  /** Sends the armored result to the content script in one frame of one tab. */
  pushToFrame(tabId: number, frameId: number, message: InsertArmored): Promise<void>;
  /** Called when the allowed sites change, to (re)register the content script. */
  sitesChanged(sites: string[]): Promise<void>;
  /** Called when the lock time changes (null: locked), to set the lock alarm. */
  lockChanged(lockAt: number | null): void;
  randomId(): string;
}

export const PAGES = {
  reader: 'extension/pages/reader/index.html',
  composer: 'extension/pages/composer/index.html',
  top: ['extension/pages/options/index.html', 'extension/pages/popup/index.html', 'extension/pages/archive/index.html'],
} as const;

/** Largest armored block the background takes from a content script (bytes of text). */
export const MAX_BLOCK_CHARS = 4 * 1024 * 1024;
const MAX_STASHED = 256;
const MAX_POST_TEXT = 5 * 1024 * 1024;

interface Stashed {
  armored: string;
  tabId: number;
}

interface ComposeTarget {
  tabId: number;
  frameId: number;
}

/**
 * The site a URL belongs to, as the user allows it: scheme and host, no port
 * (browser match patterns have no ports, so access is granted per host).
 */
export function siteOf(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.protocol}//${u.hostname}` : null;
  } catch {
    return null;
  }
}

/** A site as the user may allow it: http(s) and a host. */
export function normalizeSite(input: string): string {
  const site = siteOf(input.trim());
  if (!site) refuse('BAD_INPUT', 'a site is an address like https://mail.example.org');
  return site;
}

function str(v: unknown, max: number, what: string): string {
  if (typeof v !== 'string') refuse('BAD_INPUT', `${what} is missing`);
  if (v.length > max) refuse('TOO_LARGE', `${what} is too long`);
  return v;
}

export class Service {
  private readonly stash = new Map<string, Stashed>();
  private readonly composeTargets = new Map<string, ComposeTarget>();

  constructor(private readonly d: ServiceDeps) {}

  /** Derives who is asking from the browser's own sender record. */
  async callerOf(sender: Sender): Promise<Caller | null> {
    if (sender.id !== this.d.extensionId || !sender.url) return null;
    if (sender.url.startsWith(this.d.extensionBase)) {
      const path = new URL(sender.url).pathname.replace(/^\//, '');
      if (path === PAGES.reader || path === PAGES.composer) {
        // A frame of ours inside a web page: only on a site the user allowed.
        if (!(await this.siteAllowed(siteOf(sender.tab?.url)))) return null;
        return path === PAGES.reader ? 'reader' : 'composer';
      }
      const topLevel = (sender.frameId ?? 0) === 0 && (!sender.tab || (sender.tab.url ?? '').startsWith(this.d.extensionBase));
      return topLevel && (PAGES.top as readonly string[]).includes(path) ? 'page' : null;
    }
    // Otherwise it can only be our content script, in a tab on an allowed site.
    if (!sender.tab || typeof sender.tab.id !== 'number') return null;
    return (await this.siteAllowed(siteOf(sender.url))) ? 'content' : null;
  }

  private async siteAllowed(site: string | null): Promise<boolean> {
    if (!site) return false;
    const { sites } = await this.d.store.getSettings();
    return sites.includes(site) && (await this.d.hasHostAccess(site));
  }

  /** Entry point for runtime.onMessage: never throws, always answers. */
  async handle(message: unknown, sender: Sender): Promise<Answer<unknown>> {
    try {
      if (!isEnvelope(message) || !Object.hasOwn(ALLOWED, message.type)) refuse('BAD_INPUT');
      const caller = await this.callerOf(sender);
      if (!caller || !ALLOWED[message.type].includes(caller)) refuse('FORBIDDEN');
      const value = await this.run(message.type, message.payload as never, sender);
      return { ok: true, value };
    } catch (e) {
      return { ok: false, error: toErrorView(e) };
    }
  }

  private run<K extends RequestType>(type: K, p: Requests[K]['req'], sender: Sender): Promise<Requests[K]['res']> {
    return (this.handlers[type] as (p: Requests[K]['req'], s: Sender) => Promise<Requests[K]['res']>)(p, sender);
  }

  /** One handler per request type; the bus has checked the caller before any of these runs. */
  private readonly handlers: { [T in RequestType]: (p: Requests[T]['req'], s: Sender) => Promise<Requests[T]['res']> } = {
    'state.get': () => this.state(),
    'key.create': (q) => this.createKey(q),
    'key.import': (q) => this.importKey(q),
    'key.export': async () => ({ armored: (await this.requireStoredKey()).privateArmored }),
    'key.remove': (q) => this.removeKey(q.fingerprint),
    'key.unlock': (q) => this.unlock(str(q.passphrase, 1024, 'the passphrase')),
    'key.lock': async () => {
      await this.d.session.lock();
      this.d.lockChanged(null);
      return this.state();
    },
    'settings.set': (q) => this.setSettings(q),
    'sites.set': (q) => this.setSites(q.sites),
    'lists.get': () => this.listViews(),
    'list.lookup': (q) => this.lookup(q.address, q.server),
    'list.pin': (q) => this.pin(q.address, q.fingerprint),
    'list.subscribe': (q) => this.subscribe(q.address, q.delivery),
    'list.remove': async (q) => {
      await this.d.store.removeList(String(q.address));
      return this.listViews();
    },
    'content.stash': async (q, s) => this.stashBlock(str(q.armored, MAX_BLOCK_CHARS, 'the block'), s.tab!.id!),
    'content.compose': async (_q, s) => {
      const composeId = this.d.randomId();
      this.remember(this.composeTargets, composeId, { tabId: s.tab!.id!, frameId: s.frameId ?? 0 });
      return { composeId };
    },
    'reader.open': async (q, s) => this.readView(await this.read(this.stashed(q.blockId, s))),
    'reader.confirm': (q, s) => this.confirm(this.stashed(q.blockId, s)),
    'composer.lists': async () => (await this.listViews()).filter((l) => l.state === 'member' && !l.changedFingerprint),
    'composer.send': (q, s) => this.send(q, s),
    'archive.login': (q) => this.login(q.list),
    'archive.threads': (q) => this.threads(q.list, q.before),
    'archive.open': (q) => this.openArchived(q.list, q.ids),
  };

  // ---- key and state --------------------------------------------------------

  async state(): Promise<StateView> {
    const [key, settings] = await Promise.all([this.d.store.getKey(), this.d.store.getSettings()]);
    return {
      hasKey: key !== null,
      key: key ? keyView(key) : null,
      unlocked: this.d.session.unlocked,
      lockAt: this.d.session.lockAt,
      timeoutMinutes: settings.timeoutMinutes,
      opsPerMinute: settings.opsPerMinute,
      indicator: settings.indicator,
      sites: settings.sites,
    };
  }

  private async requireStoredKey(): Promise<StoredKey> {
    const key = await this.d.store.getKey();
    if (!key) refuse('NO_KEY');
    return key;
  }

  private async createKey(q: Requests['key.create']['req']): Promise<StateView> {
    if (await this.d.store.getKey()) refuse('KEY_EXISTS');
    const name = str(q.name, 200, 'the name').trim();
    const address = str(q.address, 254, 'the address').trim().toLowerCase();
    const passphrase = str(q.passphrase, 1024, 'the passphrase');
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address)) refuse('BAD_INPUT', 'the address is not an email address');
    if (passphrase.length < 8) refuse('BAD_INPUT', 'the passphrase needs at least 8 characters');
    const g = await generateKey({ kind: 'subscriber', address, ...(name ? { name } : {}), passphrase, protection: 'argon2' });
    await this.storeKey(g.privateKeyArmored, passphrase, name);
    return this.state();
  }

  private async importKey(q: Requests['key.import']['req']): Promise<StateView> {
    if (await this.d.store.getKey()) refuse('KEY_EXISTS');
    await this.storeKey(str(q.armored, 256 * 1024, 'the key'), str(q.passphrase, 1024, 'the passphrase'));
    return this.state();
  }

  /** Refuses an unprotected key (KEY_UNPROTECTED) and one the passphrase does not open. */
  private async storeKey(armored: string, passphrase: string, name?: string): Promise<void> {
    const { key, facts } = await readPrivateKeyForStorage(armored);
    const unlocked = await unlockPrivateKey(key, passphrase);
    const address = facts.addresses[0];
    if (!address) refuse('BAD_INPUT', 'the key has no email address');
    const userName = name ?? key.users.find((u) => u.userID?.email?.toLowerCase() === address)?.userID?.name ?? '';
    await this.d.store.putKey({
      fingerprint: facts.fingerprint, keyId: facts.keyId, address, name: userName, created: facts.created.toISOString(),
      privateArmored: key.armor(), publicArmored: key.toPublic().armor(),
    });
    await this.startSession(unlocked);
  }

  private async removeKey(fingerprint: string): Promise<StateView> {
    const key = await this.requireStoredKey();
    // The page names the fingerprint it showed, so a stale page cannot remove another key.
    if (key.fingerprint !== fingerprint) refuse('BAD_INPUT', 'the key changed; reload the page');
    await this.d.session.lock();
    this.d.lockChanged(null);
    await this.d.store.removeKey();
    return this.state();
  }

  private async unlock(passphrase: string): Promise<StateView> {
    const stored = await this.requireStoredKey();
    this.d.rate.take();
    const { key } = await readPrivateKeyForStorage(stored.privateArmored);
    await this.startSession(await unlockPrivateKey(key, passphrase));
    return this.state();
  }

  private async startSession(key: PrivateKey): Promise<void> {
    const { timeoutMinutes } = await this.d.store.getSettings();
    this.d.lockChanged(await this.d.session.unlock(key, timeoutMinutes));
  }

  private async setSettings(q: Requests['settings.set']['req']): Promise<StateView> {
    const s = await this.d.store.getSettings();
    const next: Settings = { ...s };
    if (q.timeoutMinutes !== undefined) {
      if (!Number.isInteger(q.timeoutMinutes) || q.timeoutMinutes < 1 || q.timeoutMinutes > 24 * 60) refuse('BAD_INPUT', 'the timeout is 1 to 1440 minutes');
      next.timeoutMinutes = q.timeoutMinutes;
    }
    if (q.opsPerMinute !== undefined) {
      if (!Number.isInteger(q.opsPerMinute) || q.opsPerMinute < 10 || q.opsPerMinute > 1000) refuse('BAD_INPUT', 'the limit is 10 to 1000 operations a minute');
      next.opsPerMinute = q.opsPerMinute;
      this.d.rate.limit = q.opsPerMinute;
    }
    if (q.indicator !== undefined) {
      const word = str(q.indicator.word, 24, 'the word').trim();
      const colour = str(q.indicator.colour, 7, 'the colour');
      if (!/^#[0-9a-fA-F]{6}$/.test(colour)) refuse('BAD_INPUT', 'the colour is #rrggbb');
      next.indicator = { word, colour };
    }
    await this.d.store.putSettings(next);
    return this.state();
  }

  private async setSites(input: unknown): Promise<StateView> {
    if (!Array.isArray(input) || input.length > 50) refuse('BAD_INPUT', 'at most 50 sites');
    const sites = [...new Set(input.map((s) => normalizeSite(str(s, 300, 'a site'))))];
    // The page asked the browser for access first; a site without it is not kept.
    const granted: string[] = [];
    for (const site of sites) if (await this.d.hasHostAccess(site)) granted.push(site);
    const s = await this.d.store.getSettings();
    await this.d.store.putSettings({ ...s, sites: granted });
    await this.d.sitesChanged(granted);
    return this.state();
  }

  /** Keeps only the sites the browser still grants access to. */
  async recheckSites(): Promise<void> {
    await this.setSites((await this.d.store.getSettings()).sites);
  }

  // ---- lists ----------------------------------------------------------------

  async listViews(): Promise<ListView[]> {
    return (await this.d.store.allLists()).map(listView).sort((a, b) => a.address.localeCompare(b.address));
  }

  private async lookup(addressIn: string, serverIn: string): Promise<Requests['list.lookup']['res']> {
    const address = str(addressIn, 254, 'the list address').trim().toLowerCase();
    const server = normalizeServer(str(serverIn, 2048, 'the server address'));
    const info = await this.d.server.listInfo(server, address);
    if (info.address !== address) refuse('SERVER_BAD_ANSWER', 'the server answered for another list');
    // The key must pass the key policy for the list address, and be the one the server names.
    const { facts } = await readPublicKey(info.listKey.armored, { expectedAddress: address });
    if (facts.fingerprint !== info.listKey.fingerprint) refuse('SERVER_BAD_ANSWER', 'the list key does not match its fingerprint');
    const existing = await this.d.store.getList(address);
    if (existing && existing.fingerprint !== facts.fingerprint) {
      // Never replace a pinned key silently: remember the offer and warn.
      await this.d.store.putList({ ...existing, changed: { fingerprint: facts.fingerprint, armored: info.listKey.armored } });
    }
    this.candidates.set(address, { server, info, fingerprint: facts.fingerprint });
    return {
      address, name: info.name, description: info.description, server, fingerprint: facts.fingerprint,
      pinnedFingerprint: existing && existing.fingerprint !== facts.fingerprint ? existing.fingerprint : null,
    };
  }

  private readonly candidates = new Map<string, { server: string; info: ListInfo; fingerprint: string }>();

  /** Pins the looked-up list key, only when the user confirmed exactly its fingerprint. */
  private async pin(addressIn: string, fingerprint: string): Promise<ListView[]> {
    const address = String(addressIn).trim().toLowerCase();
    const c = this.candidates.get(address);
    if (!c) refuse('LIST_UNKNOWN');
    if (c.fingerprint !== fingerprint) refuse('FINGERPRINT_MISMATCH');
    const existing = await this.d.store.getList(address);
    await this.d.store.putList({
      address, name: c.info.name, server: c.server, apiBase: c.info.apiBase, fingerprint, listKeyArmored: c.info.listKey.armored,
      // Membership belongs to the subscriber's key, so a newly confirmed list key keeps it.
      state: existing?.state ?? 'pinned',
      maxBytes: c.info.policy.maxBytes, changed: null,
    });
    this.candidates.delete(address);
    return this.listViews();
  }

  private async requireList(address: string): Promise<StoredList> {
    const list = await this.d.store.getList(String(address).trim().toLowerCase());
    if (!list) refuse('LIST_UNKNOWN');
    if (list.changed) refuse('LIST_KEY_CHANGED');
    return list;
  }

  private async subscribe(address: string, delivery: 'pgp-mime' | 'inline'): Promise<ListView[]> {
    const list = await this.requireList(address);
    const key = await this.requireStoredKey();
    if (delivery !== 'pgp-mime' && delivery !== 'inline') refuse('BAD_INPUT', 'delivery is pgp-mime or inline');
    await this.d.server.subscribe(list.server, list.address, { address: key.address, publicKey: key.publicArmored, delivery });
    await this.d.store.putList({ ...list, state: 'confirmation-sent' });
    return this.listViews();
  }

  // ---- reading --------------------------------------------------------------

  private stashBlock(armored: string, tabId: number): { blockId: string } {
    if (!armored.includes('-----BEGIN PGP MESSAGE-----')) refuse('BAD_INPUT', 'not an armored message');
    const blockId = this.d.randomId();
    this.remember(this.stash, blockId, { armored, tabId });
    return { blockId };
  }

  /** A stashed block, only for a frame in the tab whose content script stashed it. */
  private stashed(blockId: unknown, sender: Sender): string {
    const entry = typeof blockId === 'string' ? this.stash.get(blockId) : undefined;
    if (!entry) refuse('UNKNOWN_BLOCK');
    if (entry.tabId !== sender.tab?.id) refuse('FORBIDDEN');
    return entry.armored;
  }

  private remember<V>(map: Map<string, V>, id: string, value: V): void {
    map.set(id, value);
    while (map.size > MAX_STASHED) map.delete(map.keys().next().value!);
  }

  /** Keys that may have signed what we read: our own, pinned list keys, member keys fetched before. */
  private async localSigners(): Promise<{ key: PublicKey; address: string }[]> {
    const out: { key: PublicKey; address: string }[] = [];
    const own = await this.d.store.getKey();
    const tryAdd = async (armored: string, address: string) => {
      try {
        out.push({ key: (await readPublicKey(armored, { expectedAddress: address })).key, address });
      } catch {
        // An expired or revoked cached key simply does not verify anything.
      }
    };
    if (own) await tryAdd(own.publicArmored, own.address);
    for (const l of await this.d.store.allLists()) await tryAdd(l.listKeyArmored, l.address);
    for (const m of await this.d.store.allMemberKeys()) await tryAdd(m.armored, m.address);
    return out;
  }

  /** Decrypts and verifies; fetches the sender's key from the list when it is not known yet. */
  private async read(input: string | Uint8Array, listHint?: StoredList): Promise<{ result: ReadResult; list: StoredList | null; signature: SignatureView }> {
    const privateKey = this.d.session.requireKey();
    this.d.rate.take();
    const signers = await this.localSigners();
    let result: ReadResult;
    try {
      result = await readMessage(input, { privateKey, senderKeys: signers.map((s) => s.key) });
    } catch (e) {
      throw readFailure(e);
    }
    const lists = await this.d.store.allLists();
    const names = [...result.message.to.map((m) => m.address.toLowerCase()), result.message.from?.address.toLowerCase()];
    const list = listHint ?? lists.find((l) => names.includes(l.address)) ?? null;
    const from = result.message.from?.address.toLowerCase() ?? null;
    let v = result.verification;
    if (!v.valid && v.code === 'SIGNER_UNKNOWN' && v.signerKeyId && list) {
      const fetched = await this.fetchMemberKey(list, v.signerKeyId, from);
      if ('unchecked' in fetched) return { result, list, signature: { status: 'unchecked', reason: fetched.unchecked } };
      signers.push(fetched);
      result = await readMessage(input, { privateKey, senderKeys: [fetched.key] });
      v = result.verification;
    }
    if (v.valid) {
      const signer = signers.find((s) => s.key.getFingerprint().toUpperCase() === v.signerFingerprint);
      const address = signer?.address ?? null;
      // A good signature by someone other than the From address is not "verified".
      if (from && address !== from) {
        return { result, list, signature: { status: 'invalid', code: 'SIGNER_MISMATCH', reason: `Signed by ${address ?? 'another key'}, not by the sender ${from}.` } };
      }
      return { result, list, signature: { status: 'verified', fingerprint: v.signerFingerprint, address } };
    }
    if (v.code === 'SIGNER_UNKNOWN') {
      return { result, list, signature: { status: 'unchecked', reason: 'Signature not checked: sender key unavailable.' } };
    }
    return { result, list, signature: { status: 'invalid', code: v.code, reason: v.reason } };
  }

  private async fetchMemberKey(list: StoredList, keyId: string, from: string | null): Promise<{ key: PublicKey; address: string } | { unchecked: string }> {
    const unavailable = { unchecked: 'Signature not checked: sender key unavailable.' };
    if (!from) return unavailable;
    try {
      const token = await this.archiveToken(list);
      const mk = await this.d.server.memberKey(list.server, list.address, token, keyId);
      if (mk.address !== from) return { unchecked: `Signature not checked: the signing key belongs to ${mk.address}, not the sender ${from}.` };
      const { key, facts } = await readPublicKey(mk.publicKey, { expectedAddress: from });
      if (facts.fingerprint !== mk.fingerprint) return unavailable;
      await this.d.store.putMemberKey({ keyId, fingerprint: facts.fingerprint, address: from, list: list.address, armored: mk.publicKey });
      return { key, address: from };
    } catch (e) {
      if (e instanceof ExtensionError && e.code === 'NOT_FOUND') return { unchecked: 'Not from this list: the signer is not a member of the list.' };
      return unavailable;
    }
  }

  private readView(r: { result: ReadResult; list: StoredList | null; signature: SignatureView }): ReadView {
    const m = r.result.message;
    return {
      subject: m.subject,
      from: m.from,
      date: m.date ? m.date.toISOString() : null,
      text: m.text,
      html: m.text ? null : m.html,
      attachments: m.attachments.map((a) => ({ filename: a.filename, size: a.size })),
      signature: r.signature,
      list: r.list?.address ?? null,
      confirmable: confirmationToken(r) !== null,
    };
  }

  /** One click: the token is taken from the decrypted mail here, never from the frame. */
  private async confirm(armored: string): Promise<{ status: string; list: string }> {
    const r = await this.read(armored);
    const token = confirmationToken(r);
    if (!token || !r.list) refuse('NO_CONFIRMATION');
    const list = await this.requireList(r.list.address);
    const answer = await this.d.server.confirm(list.server, list.address, { token });
    await this.d.store.putList({ ...list, state: answer.status === 'member' ? 'member' : 'pending-approval' });
    return { status: answer.status, list: list.address };
  }

  // ---- writing --------------------------------------------------------------

  private async send(q: Requests['composer.send']['req'], sender: Sender): Promise<{ inserted: true }> {
    const target = typeof q.composeId === 'string' ? this.composeTargets.get(q.composeId) : undefined;
    if (!target || target.tabId !== sender.tab?.id) refuse('FORBIDDEN');
    const list = await this.requireList(q.list);
    if (list.state !== 'member') refuse('LIST_NOT_PINNED', 'you are not a member of this list yet');
    const subject = str(q.subject, 998, 'the subject');
    const text = str(q.text, Math.min(MAX_POST_TEXT, list.maxBytes), 'the text');
    if (text.trim() === '') refuse('BAD_INPUT', 'the message is empty');
    const senderKey = this.d.session.requireKey();
    const own = await this.requireStoredKey();
    this.d.rate.take();
    const { key: listKey } = await readPublicKey(list.listKeyArmored, { expectedAddress: list.address });
    const post = await composePost({
      message: { subject, from: { address: own.address, ...(own.name ? { name: own.name } : {}) }, to: [{ address: list.address, ...(list.name ? { name: list.name } : {}) }], text },
      senderKey, listKey,
    });
    await this.d.pushToFrame(target.tabId, target.frameId, { letterlock: 1, type: 'insert-armored', composeId: q.composeId, armored: post.armored });
    this.composeTargets.delete(q.composeId);
    return { inserted: true };
  }

  // ---- archive --------------------------------------------------------------

  private async archiveToken(list: StoredList, fresh = false): Promise<string> {
    const t = fresh ? null : this.d.session.getToken(list.address);
    if (t) return t.token;
    await this.login(list.address);
    return this.d.session.getToken(list.address)!.token;
  }

  private async login(listAddress: string): Promise<{ address: string; expiresAt: string }> {
    const list = await this.requireList(listAddress);
    const own = await this.requireStoredKey();
    const key = this.d.session.requireKey();
    this.d.rate.take();
    const ch = await this.d.server.challenge(list.server, list.address, own.address);
    // Sign only a log-in statement for this list, this member and this challenge.
    const st = parseStatement(ch.statement);
    if (st.kind !== 'login' || st.fields.list !== list.address || st.fields.address !== own.address || st.fields.challenge !== ch.challengeId) {
      refuse('SERVER_BAD_ANSWER', 'the log-in statement does not name this list and address');
    }
    const signature = await signStatement(ch.statement, key);
    const answer = await this.d.server.login(list.server, list.address, { challengeId: ch.challengeId, signature });
    await this.d.session.setToken(list.address, { token: answer.token, expiresAt: Date.parse(answer.expiresAt) || Date.now() + 600_000, address: answer.address });
    return { address: answer.address, expiresAt: answer.expiresAt };
  }

  /** Calls the archive with the session token, signing in again once when it expired. */
  private async withToken<T>(list: StoredList, f: (token: string) => Promise<T>): Promise<T> {
    try {
      return await f(await this.archiveToken(list));
    } catch (e) {
      if (e instanceof ExtensionError && e.code === 'UNAUTHORIZED') return f(await this.archiveToken(list, true));
      throw e;
    }
  }

  private async threads(listAddress: string, before: string | null): Promise<Requests['archive.threads']['res']> {
    const list = await this.requireList(listAddress);
    const page = await this.withToken(list, (t) => this.d.server.threads(list.server, list.address, t, before === null ? null : str(before, 200, 'the cursor')));
    return {
      threads: page.threads.map((t) => ({
        rootId: t.rootId, lastDate: t.lastDate,
        messages: t.messages.map((m) => ({ id: m.id, date: m.date, size: m.size, messageId: m.messageId, inReplyTo: m.inReplyTo })),
      })),
      nextCursor: page.nextCursor,
    };
  }

  private async openArchived(listAddress: string, ids: unknown): Promise<ArchiveMessageView[]> {
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > 50 || !ids.every((i) => Number.isInteger(i) && i > 0)) refuse('BAD_INPUT', '1 to 50 message numbers');
    const list = await this.requireList(listAddress);
    const answer = await this.withToken(list, (t) => this.d.server.messages(list.server, list.address, t, { ids: ids as number[] }));
    const out: ArchiveMessageView[] = [];
    for (const m of answer.messages) {
      try {
        const bytes = concatBytes([fromBase64(m.wrappedKey), fromBase64(m.body)]);
        out.push({ id: m.meta.id, read: this.readView(await this.read(bytes, list)), error: null });
      } catch (e) {
        out.push({ id: m.meta.id, read: null, error: toErrorView(e) });
      }
    }
    return out;
  }
}

/**
 * The subscription token of a confirmation mail: only from a mail the pinned list
 * key signed, so a look-alike mail cannot make the user confirm someone else's request.
 */
function confirmationToken(r: { result: ReadResult; list: StoredList | null; signature: SignatureView }): string | null {
  const text = r.result.message.text;
  if (!r.list || !text || r.signature.status !== 'verified' || r.signature.address !== r.list.address) return null;
  return CONFIRMATION_TOKEN_LINE.exec(text)?.[1] ?? null;
}

function keyView(k: StoredKey): KeyView {
  return { fingerprint: k.fingerprint, keyId: k.keyId, address: k.address, name: k.name, created: k.created, publicKey: k.publicArmored };
}

function listView(l: StoredList): ListView {
  return { address: l.address, name: l.name, server: l.server, fingerprint: l.fingerprint, state: l.state, changedFingerprint: l.changed?.fingerprint ?? null };
}

/** Decryption failures in the reader's words. */
function readFailure(e: unknown): unknown {
  if (isLetterlockError(e, 'WRONG_KEY')) return new ExtensionError('NO_KEY_FOR_MESSAGE');
  if (isLetterlockError(e) && ['OPENPGP_MALFORMED', 'DECRYPTION_FAILED', 'NOT_ENCRYPTED', 'TOO_MANY_PACKETS'].includes(e.code)) {
    return new ExtensionError('DAMAGED');
  }
  return e;
}
