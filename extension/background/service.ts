// The background's dispatcher: the only way into the code with keys and crypto.
// Each request is checked twice before any work: the caller kind is derived from
// the browser's `sender` (never from the message), and must be one the request's
// room allows (rooms/*.ts list each handler with its callers). Answers are views
// and results, never key material.
//
// Rooms: settings (state, settings, sites), keys, lists, reading, writing,
// archive, marks (frame state words for the test driver, test builds only), and
// moderation (held posts for a list's owner and moderators).

import { refuse, toErrorView } from '../errors.ts';
import { isEnvelope, type Answer, type Caller, type ListView, type RequestType, type StateView } from '../messages.ts';
import { Decryptor } from './decrypt.ts';
import { ArchiveRoom } from './rooms/archive.ts';
import { KeysRoom } from './rooms/keys.ts';
import { ListsRoom } from './rooms/lists.ts';
import { MarksRoom } from './rooms/marks.ts';
import { ModerationRoom } from './rooms/moderation.ts';
import { ReadingRoom } from './rooms/reading.ts';
import { Common, type Entry, type Sender, type ServiceDeps } from './rooms/room.ts';
import { SettingsRoom, siteOf } from './rooms/settings.ts';
import { WritingRoom } from './rooms/writing.ts';
import { ArchiveSignIn } from './signin.ts';

export type { Sender, ServiceDeps } from './rooms/room.ts';
export { normalizeSite, siteOf } from './rooms/settings.ts';
export { MAX_BLOCK_CHARS } from './rooms/reading.ts';

export const PAGES = {
  reader: 'extension/pages/reader/index.html',
  composer: 'extension/pages/composer/index.html',
  top: ['extension/pages/options/index.html', 'extension/pages/popup/index.html', 'extension/pages/archive/index.html', 'extension/pages/attachment/index.html', 'extension/pages/moderation/index.html'],
} as const;

/** Every request type with exactly one entry: the compiler checks none is missing. */
type Table = { readonly [T in RequestType]: Entry<T> };

/** Joins rooms into one table, refusing a request type claimed by two rooms. */
function joinRooms(...rooms: object[]): Table {
  const table: Record<string, unknown> = {};
  for (const room of rooms) {
    for (const [type, entry] of Object.entries(room)) {
      if (Object.hasOwn(table, type)) throw new Error(`two rooms handle ${type}`);
      table[type] = entry;
    }
  }
  return table as Table;
}

export class Service {
  private readonly common: Common;
  private readonly settings: SettingsRoom;
  /** Who may send each request (from the rooms), for tests and documentation. */
  readonly allowed: { readonly [T in RequestType]: readonly Caller[] };
  private readonly table: Table;

  constructor(d: ServiceDeps) {
    const common = new Common(d);
    const signIn = new ArchiveSignIn(common);
    const decryptor = new Decryptor(common, signIn);
    this.common = common;
    this.settings = new SettingsRoom(common);
    const reading = new ReadingRoom(common, decryptor, d.now ?? Date.now);
    const writing = new WritingRoom(common, reading, decryptor);
    const rooms = {
      settings: this.settings.room,
      keys: new KeysRoom(common).room,
      lists: new ListsRoom(common).room,
      reading: reading.room,
      writing: writing.room,
      archive: new ArchiveRoom(common, signIn, decryptor, writing).room,
      marks: new MarksRoom(common, reading, writing).room,
      moderation: new ModerationRoom(common, decryptor).room,
    };
    this.table = joinRooms(...Object.values(rooms));
    // A compile-time check that the rooms together cover the bus exactly.
    const _exhaustive: Table = { ...rooms.settings, ...rooms.keys, ...rooms.lists, ...rooms.reading, ...rooms.writing, ...rooms.archive, ...rooms.marks, ...rooms.moderation };
    void _exhaustive;
    this.allowed = Object.fromEntries(Object.entries(this.table).map(([t, e]) => [t, e.callers])) as Service['allowed'];
  }

  /** Derives who is asking from the browser's own sender record. */
  async callerOf(sender: Sender): Promise<Caller | null> {
    const d = this.common.d;
    if (sender.id !== d.extensionId || !sender.url) return null;
    // Our own pages: the extension's URL, or (Chromium, use_dynamic_url) the
    // per-session URL of a frame page. sender.id is ours, so no other
    // extension's page can get here.
    const extensionScheme = new URL(d.extensionBase).protocol;
    if (sender.url.startsWith(d.extensionBase) || new URL(sender.url).protocol === extensionScheme) {
      const path = new URL(sender.url).pathname.replace(/^\//, '');
      if (path === PAGES.reader || path === PAGES.composer) {
        // A frame of ours inside a web page: only on a site the user allowed.
        if (!(await this.settings.siteAllowed(siteOf(sender.tab?.url)))) return null;
        return path === PAGES.reader ? 'reader' : 'composer';
      }
      const topLevel = (sender.frameId ?? 0) === 0 && (!sender.tab || (sender.tab.url ?? '').startsWith(d.extensionBase));
      return topLevel && (PAGES.top as readonly string[]).includes(path) ? 'page' : null;
    }
    // Otherwise it can only be our content script, in a tab on an allowed site.
    if (!sender.tab || typeof sender.tab.id !== 'number') return null;
    return (await this.settings.siteAllowed(siteOf(sender.url))) ? 'content' : null;
  }

  /** Entry point for runtime.onMessage: never throws, always answers. */
  async handle(message: unknown, sender: Sender): Promise<Answer<unknown>> {
    try {
      if (!isEnvelope(message) || !Object.hasOwn(this.table, message.type)) refuse('BAD_INPUT');
      const entry = this.table[message.type] as Entry<RequestType>;
      const caller = await this.callerOf(sender);
      if (!caller || !entry.callers.includes(caller)) refuse('FORBIDDEN');
      const value = await entry.run(message.payload as never, sender);
      return { ok: true, value };
    } catch (e) {
      return { ok: false, error: toErrorView(e) };
    }
  }

  state(): Promise<StateView> {
    return this.common.state();
  }

  listViews(): Promise<ListView[]> {
    return this.common.listViews();
  }

  /** Keeps only the sites the browser still grants access to. */
  recheckSites(): Promise<void> {
    return this.settings.recheckSites();
  }
}
