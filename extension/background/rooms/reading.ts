// Reading room: the content script hands over an armored block (ciphertext
// only) and gets a block id and a frame key. The key reaches only the reader
// frame the content script placed (by postMessage to that frame's window, never
// in a URL); the first request with it binds the block to that frame (tab,
// frame and document), so a page that copies the frame URL gets nothing. The
// bound frame decrypts on a click (or at once for a list the user set to decrypt
// automatically), asks whether a click happened in plain sight, loads remote
// images the user asked for, and opens attachments in the extension's own page.

import { fromUtf8, readBodyCapped, toBase64 } from '../../../shared/index.ts';
import { ExtensionError, refuse } from '../../errors.ts';
import type { ClickPoint, Requests } from '../../messages.ts';
import { confirmationToken, readView, type Decryptor } from '../decrypt.ts';
import { remember, str, type Common, type Room, type Sender } from './room.ts';

/** Largest armored block the background takes from a content script (bytes of text). */
export const MAX_BLOCK_CHARS = 4 * 1024 * 1024;
/**
 * What one tab may hold stashed. Over it, the tab's blocks that are done with go
 * first (opened more than STALE_OPENED_MS ago, or never opened within
 * STALE_UNOPENED_MS: a webmail shows message after message in one tab); if that
 * is not enough, the new block is refused (a page stuffed with blocks at once).
 */
export const MAX_TAB_BLOCKS = 32;
export const MAX_TAB_BYTES = 8 * 1024 * 1024;
/** What all tabs together may hold: the oldest blocks go first. */
export const MAX_STASHED = 96;
export const MAX_STASH_BYTES = 24 * 1024 * 1024;
const STALE_OPENED_MS = 30_000;
const STALE_UNOPENED_MS = 5 * 60_000;

const MAX_IMAGES = 20;
const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
const MAX_IMAGES_BYTES = 8 * 1024 * 1024;
const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;
const ATTACHMENT_TTL_MS = 2 * 60_000;
const MAX_OPEN_ATTACHMENTS = 4;

interface Stashed {
  armored: string;
  tabId: number;
  /** The frame of the content script that stashed it: the reader frame sits in its document. */
  frameId: number;
  frameKey: string;
  /** The reader frame that used the key first; only it may use the block afterwards. */
  claim: { frameId: number | undefined; documentId: string | undefined; at: number } | null;
  at: number;
}

interface OpenAttachment {
  filename: string;
  contentType: string;
  content: Uint8Array;
  expires: number;
}

export type ReadingRequests = 'content.stash' | 'reader.open' | 'reader.confirm' | 'reader.visible' | 'reader.images' | 'reader.attachment' | 'attachment.get';

export class ReadingRoom {
  private readonly stash = new Map<string, Stashed>();
  private stashBytes = 0;
  private readonly attachments = new Map<string, OpenAttachment>();

  constructor(private readonly c: Common, private readonly decryptor: Decryptor, private readonly now: () => number = Date.now) {}

  readonly room: Room<ReadingRequests> = {
    'content.stash': { callers: ['content'], run: async (q, s) => this.stashBlock(str(q.armored, MAX_BLOCK_CHARS, 'the block'), s) },
    'reader.open': { callers: ['reader'], run: (q, s) => this.open(q, s) },
    'reader.confirm': { callers: ['reader'], run: (q, s) => this.confirm(this.bound(q.blockId, s).armored) },
    'reader.visible': { callers: ['reader'], run: (q, s) => this.visible(q.blockId, q.click, s) },
    'reader.images': { callers: ['reader'], run: (q, s) => this.images(q, s) },
    'reader.attachment': { callers: ['reader'], run: (q, s) => this.openAttachment(q, s) },
    // The attachment page: a top-level extension tab, opened by the background itself.
    'attachment.get': { callers: ['page'], run: async (q) => this.takeAttachment(q.token) },
  };

  private stashBlock(armored: string, s: Sender): Requests['content.stash']['res'] {
    if (!armored.includes('-----BEGIN PGP MESSAGE-----')) refuse('BAD_INPUT', 'not an armored message');
    const tabId = s.tab!.id!;
    const now = this.now();
    const over = () => {
      let count = 1;
      let bytes = armored.length;
      for (const e of this.stash.values()) {
        if (e.tabId !== tabId) continue;
        count++;
        bytes += e.armored.length;
      }
      return count > MAX_TAB_BLOCKS || bytes > MAX_TAB_BYTES;
    };
    for (const [id, e] of this.stash) {
      if (!over()) break;
      const done = e.claim ? now - e.claim.at > STALE_OPENED_MS : now - e.at > STALE_UNOPENED_MS;
      if (e.tabId === tabId && done) this.drop(id, e);
    }
    if (over()) refuse('TOO_MANY_BLOCKS');
    const blockId = this.c.d.randomId();
    const frameKey = this.c.d.randomId();
    this.stash.set(blockId, { armored, tabId, frameId: s.frameId ?? 0, frameKey, claim: null, at: now });
    this.stashBytes += armored.length;
    for (const [id, e] of this.stash) {
      if (this.stash.size <= MAX_STASHED && this.stashBytes <= MAX_STASH_BYTES) break;
      this.drop(id, e);
    }
    return { blockId, frameKey };
  }

  private drop(id: string, e: Stashed): void {
    this.stash.delete(id);
    this.stashBytes -= e.armored.length;
  }

  /** Stashed blocks and their bytes, for tests and the limits above. */
  get stashed(): { count: number; bytes: number } {
    return { count: this.stash.size, bytes: this.stashBytes };
  }

  /**
   * The block for this frame: the first request must carry the frame key and
   * binds the block to the asking frame; later ones must come from that frame.
   */
  private bound(blockId: unknown, sender: Sender, frameKey?: unknown): Stashed {
    const entry = typeof blockId === 'string' ? this.stash.get(blockId) : undefined;
    if (!entry) refuse('UNKNOWN_BLOCK');
    if (entry.tabId !== sender.tab?.id) refuse('FORBIDDEN');
    if (entry.claim) {
      if (entry.claim.frameId !== sender.frameId || entry.claim.documentId !== sender.documentId) refuse('FORBIDDEN');
      return entry;
    }
    if (typeof frameKey !== 'string' || frameKey !== entry.frameKey) refuse('FORBIDDEN');
    entry.claim = { frameId: sender.frameId, documentId: sender.documentId, at: this.now() };
    return entry;
  }

  private async open(q: Requests['reader.open']['req'], s: Sender): Promise<Requests['reader.open']['res']> {
    const entry = this.bound(q.blockId, s, q.frameKey);
    if (q.click !== true) {
      // Unasked, the key is not used at all unless the user chose automatic decryption for some list.
      const auto = (await this.c.d.store.allLists()).some((l) => l.autoDecrypt === true && !l.changed);
      if (!auto) refuse('CLICK_TO_DECRYPT');
      const r = await this.decryptor.read(entry.armored);
      // A message of another list waits for a click; what was decrypted is dropped here.
      if (r.list?.autoDecrypt !== true || r.list.changed) refuse('CLICK_TO_DECRYPT');
      return readView(r);
    }
    return readView(await this.decryptor.read(entry.armored));
  }

  /** Asks the content script that placed the frame whether it was in plain sight for this click. */
  private async visible(blockId: string, click: unknown, s: Sender): Promise<{ visible: boolean }> {
    const entry = this.bound(blockId, s);
    const c = click as ClickPoint;
    if (typeof c !== 'object' || c === null || !Number.isFinite(c.x) || !Number.isFinite(c.y) || typeof c.keyboard !== 'boolean') refuse('BAD_INPUT', 'a click point');
    try {
      const answer = (await this.c.d.pushToFrame(entry.tabId, entry.frameId, { letterlock: 1, type: 'check-frame', blockId, click: { x: c.x, y: c.y, keyboard: c.keyboard } })) as { visible?: unknown } | undefined;
      return { visible: answer?.visible === true };
    } catch {
      return { visible: false }; // no content script answered: nothing vouches for the frame
    }
  }

  /** Remote images the user asked to load: fetched here without cookies or referrer, returned as data: URLs. */
  private async images(q: Requests['reader.images']['req'], s: Sender): Promise<Requests['reader.images']['res']> {
    this.bound(q.blockId, s);
    if (!Array.isArray(q.urls) || q.urls.length > MAX_IMAGES) refuse('BAD_INPUT', `at most ${MAX_IMAGES} images`);
    const urls = [...new Set(q.urls.map((u) => str(u, 2048, 'an image address')))];
    let total = 0;
    const out: { url: string; dataUrl: string | null }[] = [];
    for (const url of urls) {
      let dataUrl: string | null = null;
      try {
        const u = new URL(url);
        if ((u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && total < MAX_IMAGES_BYTES) {
          const bytes = await this.fetchImage(u.href, Math.min(MAX_IMAGE_BYTES, MAX_IMAGES_BYTES - total));
          const type = bytes ? imageType(bytes) : null;
          if (bytes && type) {
            total += bytes.length;
            dataUrl = `data:${type};base64,${toBase64(bytes)}`;
          }
        }
      } catch {
        dataUrl = null; // one image that fails leaves the others
      }
      out.push({ url, dataUrl });
    }
    return { images: out };
  }

  private async fetchImage(url: string, max: number): Promise<Uint8Array | null> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 15_000);
    try {
      const res = await this.c.d.fetch(url, { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store', redirect: 'follow', signal: ctl.signal });
      if (!res.ok || !res.body) return null;
      return await readBodyCapped(res, max);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Decrypts again (nothing is kept between clicks), keeps one attachment briefly, opens the attachment page. */
  private async openAttachment(q: Requests['reader.attachment']['req'], s: Sender): Promise<{ opened: true }> {
    const entry = this.bound(q.blockId, s);
    const r = await this.decryptor.read(entry.armored);
    const a = Number.isInteger(q.index) ? r.result.message.attachments[q.index] : undefined;
    if (!a) refuse('BAD_INPUT', 'no such attachment');
    if (a.size > MAX_ATTACHMENT_BYTES) refuse('TOO_LARGE');
    const token = this.c.d.randomId();
    this.dropExpired();
    remember(this.attachments, token, { filename: a.filename ?? 'attachment', contentType: a.contentType, content: a.content, expires: this.now() + ATTACHMENT_TTL_MS }, MAX_OPEN_ATTACHMENTS);
    await this.c.d.openTab(`${this.c.d.extensionBase}extension/pages/attachment/index.html#${token}`);
    return { opened: true };
  }

  /** Single use: the page that takes it is the only one that gets it. */
  private takeAttachment(token: unknown): Requests['attachment.get']['res'] {
    this.dropExpired();
    const a = typeof token === 'string' ? this.attachments.get(token) : undefined;
    if (!a) refuse('ATTACHMENT_GONE');
    this.attachments.delete(token as string);
    return { filename: a.filename, contentType: a.contentType, base64: toBase64(a.content) };
  }

  private dropExpired(): void {
    for (const [t, a] of this.attachments) if (a.expires <= this.now()) this.attachments.delete(t);
  }

  /** One click: the token is taken from the decrypted mail here, never from the frame. */
  private async confirm(armored: string): Promise<{ status: string; list: string }> {
    const r = await this.decryptor.read(armored);
    const token = confirmationToken(r);
    if (!token || !r.list) refuse('NO_CONFIRMATION');
    const list = await this.c.requireList(r.list.address);
    const answer = await this.c.d.server.confirm(list.server, list.address, { token });
    await this.c.d.store.putList({ ...list, state: answer.status === 'member' ? 'member' : 'pending-approval' });
    return { status: answer.status, list: list.address };
  }

  /** The armored block this reader frame holds, and its tab (a reply is prepared from it, writing.ts). */
  blockFor(blockId: unknown, s: Sender): { armored: string; tabId: number } {
    const e = this.bound(blockId, s);
    return { armored: e.armored, tabId: e.tabId };
  }

  /** The content script's frame for a block this frame holds (test marks). */
  targetOf(id: string, s: Sender): { tabId: number; frameId: number } | null {
    try {
      const e = this.bound(id, s);
      return { tabId: e.tabId, frameId: e.frameId };
    } catch (e) {
      if (e instanceof ExtensionError) return null;
      throw e;
    }
  }
}

/** The image type by its first bytes (never by what the server claims); null for anything else. */
export function imageType(b: Uint8Array): string | null {
  if (b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
  if (b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length > 6 && fromUtf8(b.subarray(0, 6)).startsWith('GIF8')) return 'image/gif';
  if (b.length > 12 && fromUtf8(b.subarray(0, 4)) === 'RIFF' && fromUtf8(b.subarray(8, 12)) === 'WEBP') return 'image/webp';
  return null;
}
