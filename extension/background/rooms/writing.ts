// Writing room: the content script asks for a composer for one compose box; the
// composer frame in that tab encrypts and signs the post here, and the armored
// result goes to that box's content script (never through the page).
//
// Replies: the reader frame asks for a reply to its message ("reply to list" or
// "reply" to the author alone); the message is decrypted here again, and the
// quoted text, "Re:" subject and threading ids wait for the next composer of
// that tab (the content script is asked to open one). The reply's In-Reply-To and
// References go into the protected headers inside the encryption: a webmail
// writes outer headers of its own, and the list server threads by the signed
// ones (server/pipeline/replay.ts threadingOf).
//
// A reply prepared in the archive viewer (a top-level extension page, no webmail
// tab of its own) waits for the next composer the user opens in any tab: the
// viewer says so in words, and the composer is where replies are written.
//
// Attachments travel inside the encryption (multipart/mixed), bounded in count
// and size. Drafts are kept only encrypted to the user's own key (drafts.ts).

import type { PublicKey } from 'openpgp';
import { composePost, fromBase64, protectedThreading, readPublicKey, type AttachmentInput } from '../../../shared/index.ts';
import { ExtensionError, refuse } from '../../errors.ts';
import type { DraftView, ReplyView, Requests } from '../../messages.ts';
import type { Decrypted, Decryptor } from '../decrypt.ts';
import { DraftStore, MAX_DRAFT_CHARS } from '../drafts.ts';
import type { StoredList } from '../store.ts';
import type { ReadingRoom } from './reading.ts';
import { remember, str, type Common, type Room, type Sender } from './room.ts';

const MAX_POST_TEXT = 5 * 1024 * 1024;
const MAX_COMPOSERS = 256;
/** Files per post, and their decoded bytes together. */
export const MAX_ATTACHMENTS = 10;
export const MAX_ATTACHMENTS_BYTES = 10 * 1024 * 1024;
/** Quoted text kept in a reply (characters); a longer message is cut with a note. */
const MAX_QUOTE_CHARS = 64 * 1024;
/** References kept in a reply: the nearest ancestors (the list server keeps 20). */
const MAX_REFERENCES = 20;
/** A prepared reply waits this long for its composer. */
export const REPLY_TTL_MS = 10 * 60_000;
const MAX_PENDING_REPLIES = 64;

interface Reply extends ReplyView {
  references: string[];
  /** The author's verified public key (to: 'author'). */
  authorKey: string | null;
}

interface ComposeTarget {
  tabId: number;
  frameId: number;
  reply: Reply | null;
}

export type WritingRequests = 'content.compose' | 'composer.lists' | 'composer.send' | 'reader.reply' | 'composer.start' | 'composer.draft.save' | 'composer.draft.delete';

export class WritingRoom {
  private readonly composeTargets = new Map<string, ComposeTarget>();
  /** Per tab: the reply the next composer there is opened for. */
  private readonly pendingReplies = new Map<string, { reply: Reply; expires: number }>();
  /** The reply prepared in the archive viewer, for the next composer of any tab (one at a time). */
  private anyTabReply: { reply: Reply; expires: number } | null = null;
  readonly drafts: DraftStore;

  constructor(private readonly c: Common, private readonly reading?: ReadingRoom, private readonly decryptor?: Decryptor, drafts?: DraftStore) {
    this.drafts = drafts ?? new DraftStore();
  }

  readonly room: Room<WritingRequests> = {
    'content.compose': {
      callers: ['content'],
      run: async (_q, s) => {
        const composeId = this.c.d.randomId();
        const tabId = s.tab!.id!;
        const own = this.pendingReplies.get(String(tabId));
        this.pendingReplies.delete(String(tabId));
        // A reply from a reader of this tab first; else one prepared in the archive viewer.
        const pending = own && own.expires > this.now() ? own : this.anyTabReply;
        if (pending === this.anyTabReply) this.anyTabReply = null;
        const reply = pending && pending.expires > this.now() ? pending.reply : null;
        remember(this.composeTargets, composeId, { tabId, frameId: s.frameId ?? 0, reply }, MAX_COMPOSERS);
        return { composeId };
      },
    },
    'composer.lists': { callers: ['composer'], run: async () => (await this.c.listViews()).filter((l) => l.state === 'member' && !l.changedFingerprint) },
    'composer.send': { callers: ['composer'], run: (q, s) => this.send(q, s) },
    'reader.reply': { callers: ['reader'], run: (q, s) => this.prepareReply(q, s) },
    'composer.start': { callers: ['composer'], run: (q, s) => this.start(q.composeId, s) },
    'composer.draft.save': { callers: ['composer'], run: (q, s) => this.saveDraft(q, s) },
    'composer.draft.delete': { callers: ['composer'], run: async (q, s) => ({ deleted: await this.drafts.delete(slotOf(this.target(q.composeId, s))) }) },
  };

  private now(): number {
    return this.c.d.now?.() ?? Date.now();
  }

  /** The content script's frame for a composer of this tab (test marks). */
  targetOf(composeId: string, s: Sender): ComposeTarget | null {
    const t = this.composeTargets.get(composeId);
    return t && t.tabId === s.tab?.id ? t : null;
  }

  private target(composeId: unknown, s: Sender): ComposeTarget {
    const t = typeof composeId === 'string' ? this.composeTargets.get(composeId) : undefined;
    if (!t || t.tabId !== s.tab?.id) refuse('FORBIDDEN');
    return t;
  }

  // ---- replies ----------------------------------------------------------------

  private async prepareReply(q: Requests['reader.reply']['req'], s: Sender): Promise<{ opened: boolean }> {
    if (!this.reading || !this.decryptor) refuse('INTERNAL');
    if (q.to !== 'list' && q.to !== 'author') refuse('BAD_INPUT', 'reply to the list or to the author');
    const { armored, tabId } = this.reading.blockFor(q.blockId, s);
    const reply = await this.replyTo(await this.decryptor.read(armored), q.to);
    remember(this.pendingReplies, String(tabId), { reply, expires: this.now() + REPLY_TTL_MS }, MAX_PENDING_REPLIES);
    let opened = false;
    try {
      opened = (await this.c.d.pushToFrame(tabId, 0, { letterlock: 1, type: 'open-composer' })) === true;
    } catch {
      opened = false; // no compose box on the page yet: the next composer of this tab takes the reply
    }
    return { opened };
  }

  /**
   * A reply to a message the archive room decrypted (the archive viewer's "Reply
   * to list" / "Reply to author"): held for the next composer opened in any tab,
   * replacing one prepared there before. Returns the reply's public part and when it lapses.
   */
  async prepareArchiveReply(r: Decrypted, to: unknown): Promise<{ reply: ReplyView; expiresAt: string }> {
    if (to !== 'list' && to !== 'author') refuse('BAD_INPUT', 'reply to the list or to the author');
    const reply = await this.replyTo(r, to);
    const expires = this.now() + REPLY_TTL_MS;
    this.anyTabReply = { reply, expires };
    return { reply: publicReply(reply), expiresAt: new Date(expires).toISOString() };
  }

  /** The quote, "Re:" subject and threading ids of a reply to a decrypted post of a list the user is a member of. */
  private async replyTo(r: Decrypted, to: 'list' | 'author'): Promise<Reply> {
    if (!r.list) refuse('LIST_UNKNOWN');
    const list = await this.c.requireList(r.list.address);
    if (list.state !== 'member') refuse('LIST_NOT_PINNED', 'you are not a member of this list yet');
    const m = r.result.message;
    let authorKey: string | null = null;
    if (to === 'author') {
      if (r.signature.status !== 'verified' || !m.from) refuse('NO_AUTHOR_KEY');
      authorKey = await this.verifiedKeyOf(r.signature.fingerprint);
      if (!authorKey) refuse('NO_AUTHOR_KEY');
    }
    const threading = await protectedThreading(r.result.content);
    const parent = m.messageId ?? threading?.messageId ?? null;
    const earlier = threading?.references.length ? threading.references : m.inReplyTo ? [m.inReplyTo] : [];
    const references = parent ? [...earlier.filter((id) => id !== parent), parent].slice(-MAX_REFERENCES) : earlier.slice(-MAX_REFERENCES);
    const subject = m.subject ?? '';
    return {
      to,
      list: list.address,
      author: m.from?.address ?? null,
      subject: /^re:/i.test(subject.trim()) ? subject.trim() : `Re: ${subject.trim()}`.trim(),
      quoted: quote(m.from, m.date, m.text ?? ''),
      inReplyTo: parent,
      references,
      authorKey,
    };
  }

  /** The armored public key behind a verified signature: a member key fetched before, or one of ours. */
  private async verifiedKeyOf(fingerprint: string): Promise<string | null> {
    const d = this.c.d;
    const fp = fingerprint.toUpperCase();
    for (const k of await d.store.allMemberKeys()) if (k.fingerprint.toUpperCase() === fp) return k.armored;
    for (const k of await d.store.allKeys()) if (k.fingerprint.toUpperCase() === fp) return k.publicArmored;
    return null;
  }

  // ---- drafts -----------------------------------------------------------------

  private async start(composeId: unknown, s: Sender): Promise<{ reply: ReplyView | null; draft: DraftView | null }> {
    const t = this.target(composeId, s);
    const keys = this.c.d.session.unlockedKeys();
    const d = keys.length ? await this.drafts.load(slotOf(t), keys) : null;
    const reply = t.reply ? publicReply(t.reply) : null;
    return { reply, draft: d ? { list: d.list, subject: d.subject, text: d.text, savedAt: new Date(d.savedAt).toISOString() } : null };
  }

  private async saveDraft(q: Requests['composer.draft.save']['req'], s: Sender): Promise<{ savedAt: string }> {
    const t = this.target(q.composeId, s);
    const subject = str(q.subject, 998, 'the subject');
    const text = str(q.text, MAX_DRAFT_CHARS, 'the draft');
    const listAddress = str(q.list, 320, 'the list');
    // Encrypted to the key this list knows the user by (the default key without a list).
    const stored = listAddress ? await this.c.keyForList(await this.c.requireList(listAddress)) : await this.c.requireStoredKey();
    const { key } = await readPublicKey(stored.publicArmored, { expectedAddress: stored.address });
    const at = await this.drafts.save(slotOf(t), { list: listAddress, subject, text }, key, this.now());
    return { savedAt: new Date(at).toISOString() };
  }

  // ---- sending ----------------------------------------------------------------

  private async send(q: Requests['composer.send']['req'], sender: Sender): Promise<{ inserted: true }> {
    const d = this.c.d;
    const target = this.target(q.composeId, sender);
    const reply = target.reply;
    const list = await this.c.requireList(reply ? reply.list : q.list);
    if (list.state !== 'member') refuse('LIST_NOT_PINNED', 'you are not a member of this list yet');
    const subject = str(q.subject, 998, 'the subject');
    const text = str(q.text, Math.min(MAX_POST_TEXT, list.maxBytes), 'the text');
    const attachments = readAttachments(q.attachments, list, text.length + subject.length);
    if (text.trim() === '' && attachments.length === 0) refuse('BAD_INPUT', 'the message is empty');
    // Signed with the key this list knows the user by.
    const own = await this.c.keyForList(list);
    const senderKey = d.session.requireKey(own.fingerprint);
    d.rate.take();
    // A reply to the author goes to them alone, encrypted to their verified key; everything else to the list.
    let recipientKey: PublicKey;
    let to: { address: string; name?: string };
    if (reply?.to === 'author') {
      recipientKey = (await readPublicKey(reply.authorKey!, { expectedAddress: reply.author! })).key;
      to = { address: reply.author! };
    } else {
      recipientKey = (await readPublicKey(list.listKeyArmored, { expectedAddress: list.address })).key;
      to = { address: list.address, ...(list.name ? { name: list.name } : {}) };
    }
    const post = await composePost({
      message: {
        subject, from: { address: own.address, ...(own.name ? { name: own.name } : {}) }, to: [to], text,
        ...(attachments.length ? { attachments } : {}),
        ...(reply?.inReplyTo ? { inReplyTo: reply.inReplyTo } : {}),
        ...(reply?.references.length ? { references: reply.references } : {}),
      },
      senderKey, listKey: recipientKey,
    });
    await d.pushToFrame(target.tabId, target.frameId, { letterlock: 1, type: 'insert-armored', composeId: q.composeId, armored: post.armored, to: to.address });
    this.composeTargets.delete(q.composeId);
    await this.drafts.delete(slotOf(target)).catch(() => false); // sent: the draft is done with
    return { inserted: true };
  }
}

/** The draft slot of a composer: its reply (to whom, to which message), or a new post. */
function slotOf(t: ComposeTarget): string {
  return t.reply ? `reply:${t.reply.to}:${t.reply.list}:${t.reply.inReplyTo ?? ''}` : 'new';
}

function publicReply(r: Reply): ReplyView {
  return { to: r.to, list: r.list, author: r.author, subject: r.subject, quoted: r.quoted, inReplyTo: r.inReplyTo };
}

/** "On <date>, <who> wrote:" and the text as "> " lines, cut at MAX_QUOTE_CHARS. */
export function quote(from: { address: string; name: string } | null, date: Date | null, text: string): string {
  const who = from ? (from.name ? `${from.name} <${from.address}>` : from.address) : 'Someone';
  const head = date ? `On ${date.toUTCString()}, ${who} wrote:` : `${who} wrote:`;
  const cut = text.length > MAX_QUOTE_CHARS;
  const body = (cut ? text.slice(0, MAX_QUOTE_CHARS) : text).replace(/\r\n?/g, '\n').replace(/\n+$/, '');
  const lines = body.split('\n').map((l) => (l.startsWith('>') ? `>${l}` : l === '' ? '>' : `> ${l}`));
  if (cut) lines.push('> [...]');
  return `${head}\n${lines.join('\n')}\n\n`;
}

/** The composer's files, checked: count, names, types, and bytes against the list's size limit. */
function readAttachments(input: unknown, list: StoredList, textChars: number): AttachmentInput[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) refuse('BAD_INPUT', 'the attachments');
  if (input.length > MAX_ATTACHMENTS) refuse('TOO_MANY_ATTACHMENTS');
  // Base64 of MAX_ATTACHMENTS_BYTES, checked before decoding anything.
  let b64 = 0;
  for (const a of input) b64 += typeof (a as { base64?: unknown })?.base64 === 'string' ? (a as { base64: string }).base64.length : 0;
  if (b64 > Math.ceil(MAX_ATTACHMENTS_BYTES / 3) * 4 + 4 * input.length) tooLarge(Math.floor((b64 * 3) / 4), list);
  const out: AttachmentInput[] = [];
  let total = 0;
  for (const a of input as Array<Record<string, unknown>>) {
    const filename = str(a?.filename, 255, 'a file name').replace(/[\u0000-\u001f\u007f/\\]/g, '_') || 'attachment';
    const contentType = typeof a?.contentType === 'string' && /^[\w.+-]{1,64}\/[\w.+-]{1,64}$/.test(a.contentType) ? a.contentType : 'application/octet-stream';
    let content: Uint8Array;
    try {
      content = fromBase64(str(a?.base64, b64, 'a file'));
    } catch (e) {
      if (e instanceof ExtensionError) throw e;
      refuse('BAD_INPUT', `the file ${filename} could not be read`);
    }
    total += content.byteLength;
    out.push({ filename, contentType, content });
  }
  // What the post will weigh once encrypted: base64 inside the MIME, then armor (4/3 each) and some headers.
  const estimate = Math.ceil((textChars + total * (4 / 3) + 8192) * (4 / 3));
  if (total > MAX_ATTACHMENTS_BYTES || estimate > list.maxBytes) tooLarge(total, list);
  return out;
}

function tooLarge(bytes: number, list: StoredList): never {
  const mb = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MB`;
  const limit = Math.min(MAX_ATTACHMENTS_BYTES, Math.floor((list.maxBytes * 9) / 16));
  throw new ExtensionError('ATTACHMENTS_TOO_LARGE', `The attachments (${mb(bytes)}) are too large: ${list.address} takes about ${mb(limit)} of files in one encrypted post. Leave some out, or share large files another way.`);
}
