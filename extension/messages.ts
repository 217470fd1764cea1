// The one typed message bus between the extension's parts. Every request the
// background answers is listed here with its payload and its answer; the callers
// allowed to send it sit beside its handler, in background/rooms/. The
// background hands out views, handles and results; never key material (the only
// key text that leaves it is the passphrase-protected backup and the public key,
// both asked for by the options page).

import type { ErrorView } from './errors.ts';

/** Who sent a message, decided by the background from `sender` (never from the payload). */
export type Caller =
  | 'page' // a top-level extension page: options, popup, archive
  | 'reader' // the reader frame placed in an allowed webmail page
  | 'composer' // the composer frame placed in an allowed webmail page
  | 'content'; // the content script in an allowed webmail page (ciphertext and placement only)

export interface Indicator {
  word: string;
  colour: string;
}

export interface KeyView {
  fingerprint: string;
  keyId: string;
  address: string;
  name: string;
  created: string;
  /** ISO date the key expires, or null when it never does. */
  expires: string | null;
  publicKey: string;
  /** Unlocked in this session (the passphrase opened it). */
  unlocked: boolean;
}

export type ListState = 'pinned' | 'confirmation-sent' | 'member' | 'pending-approval';

export interface ListView {
  address: string;
  name: string;
  server: string;
  fingerprint: string;
  state: ListState;
  /** Fingerprint of the user's key used with this list (null: the first key). */
  keyFingerprint: string | null;
  /** Set when the server now offers a different list key than the pinned one. */
  changedFingerprint: string | null;
  /** Mail from this list is decrypted when shown, without a click. */
  autoDecrypt: boolean;
}

export interface ListCandidate {
  address: string;
  name: string;
  description: string | null;
  server: string;
  fingerprint: string;
  /** The fingerprint pinned earlier for this address, when it differs. */
  pinnedFingerprint: string | null;
}

export interface StateView {
  hasKey: boolean;
  /** The first key (the default for new lists); kept for callers that know one key. */
  key: KeyView | null;
  /** Every key of this profile, the default first. */
  keys: KeyView[];
  unlocked: boolean;
  /** Milliseconds since the epoch when the key locks again; null when locked. */
  lockAt: number | null;
  timeoutMinutes: number;
  opsPerMinute: number;
  indicator: Indicator;
  sites: string[];
}

export type SignatureView =
  | { status: 'verified'; fingerprint: string; address: string | null }
  | { status: 'unchecked'; reason: string }
  | { status: 'invalid'; code: string; reason: string };

export interface ReadView {
  subject: string | null;
  from: { address: string; name: string } | null;
  date: string | null;
  text: string | null;
  /** HTML as sent; the reader sanitizes it and shows it only in a sandboxed frame. */
  html: string | null;
  attachments: { filename: string | null; size: number }[];
  signature: SignatureView;
  /** The list this message came through, when known. */
  list: string | null;
  /** True when the message carries a subscription confirmation the user can accept. */
  confirmable: boolean;
}

/**
 * A click in a frame, in the frame's own viewport coordinates; `keyboard` when it
 * came from Enter or Space (no pointer position).
 */
export interface ClickPoint {
  x: number;
  y: number;
  keyboard: boolean;
}

export interface ArchiveThreadView {
  rootId: number;
  lastDate: string | null;
  messages: { id: number; date: string | null; size: number; messageId: string | null; inReplyTo: string | null; references?: string[] }[];
}

export interface ArchiveMessageView {
  id: number;
  read: ReadView | null;
  error: ErrorView | null;
}

/** A file put into the composer: it travels inside the encryption (multipart/mixed). */
export interface AttachmentUpload {
  filename: string;
  contentType: string;
  base64: string;
}

/** What the composer shows of a reply it was opened for (the background keeps the rest). */
export interface ReplyView {
  /** 'list': to the list; 'author': to the author alone, encrypted to their key. */
  to: 'list' | 'author';
  list: string;
  /** The author's address (to: 'author'). */
  author: string | null;
  subject: string;
  /** The attribution line and the quoted text, "> " lines, ready to answer under. */
  quoted: string;
  inReplyTo: string | null;
}

/** A draft as the composer restores it (kept encrypted to the user's own key in between). */
export interface DraftView {
  list: string;
  subject: string;
  text: string;
  savedAt: string;
}

/** A held post as a moderator sees it: the server's metadata and, decrypted here, the post. */
export interface HeldPostView {
  id: number;
  sender: string | null;
  size: number;
  reason: string;
  receivedAt: string;
  read: ReadView | null;
  error: ErrorView | null;
}

type Empty = Record<string, never>;

/** Every request: its payload, its answer, and who may send it. */
export interface Requests {
  'state.get': { req: Empty; res: StateView };
  /** The revocation certificate is made with the key and handed out once, here, for the user to save. */
  'key.create': { req: { name: string; address: string; passphrase: string; expiresInDays?: number }; res: { state: StateView; fingerprint: string; revocationCertificate: string } };
  'key.import': { req: { armored: string; passphrase: string }; res: StateView };
  /** The passphrase-protected private key, as stored (the backup). */
  'key.export': { req: { fingerprint?: string }; res: { armored: string } };
  /** The same key re-protected with its passphrase in the RFC 4880 form (iterated S2K, AES-256, CFB) that GnuPG 2.2 and Thunderbird import. */
  'key.exportGnupg': { req: { fingerprint?: string; passphrase: string }; res: { armored: string } };
  /** Extends a key's expiry (the passphrase re-protects it) and re-publishes it to the lists that use it. */
  'key.renew': { req: { fingerprint: string; passphrase: string; expiresInDays: number }; res: { state: StateView; republished: { list: string; ok: boolean; message: string | null }[] } };
  /** Makes a key the default for new lists. */
  'key.default': { req: { fingerprint: string }; res: StateView };
  'key.remove': { req: { fingerprint: string }; res: StateView };
  'key.unlock': { req: { passphrase: string }; res: StateView };
  'key.lock': { req: Empty; res: StateView };
  'settings.set': { req: { timeoutMinutes?: number; opsPerMinute?: number; indicator?: Indicator }; res: StateView };
  'sites.set': { req: { sites: string[] }; res: StateView };
  'lists.get': { req: Empty; res: ListView[] };
  'list.lookup': { req: { address: string; server: string }; res: ListCandidate };
  'list.pin': { req: { address: string; fingerprint: string }; res: ListView[] };
  'list.subscribe': { req: { address: string; delivery: 'pgp-mime' | 'inline' }; res: ListView[] };
  'list.remove': { req: { address: string }; res: ListView[] };
  /** Chooses the key used with a list (before subscribing). */
  'list.key': { req: { address: string; fingerprint: string }; res: ListView[] };
  'list.auto': { req: { address: string; auto: boolean }; res: ListView[] };
  /** `frameKey` goes only to the frame the content script placed (never in a URL). */
  'content.stash': { req: { armored: string }; res: { blockId: string; frameKey: string } };
  'content.compose': { req: Empty; res: { composeId: string } };
  /**
   * The first call carries the frame key and binds the block to this frame; with
   * `click: false` it decrypts only for a list set to decrypt automatically
   * (otherwise CLICK_TO_DECRYPT).
   */
  'reader.open': { req: { blockId: string; frameKey?: string; click?: boolean }; res: ReadView };
  /** Whether the frame was in plain sight for this click (checked by the content script). */
  'reader.visible': { req: { blockId: string; click: ClickPoint }; res: { visible: boolean } };
  'reader.images': { req: { blockId: string; urls: string[] }; res: { images: { url: string; dataUrl: string | null }[] } };
  /** Opens the attachment in the extension's own attachment page (a new tab). */
  'reader.attachment': { req: { blockId: string; index: number }; res: { opened: true } };
  'attachment.get': { req: { token: string }; res: { filename: string; contentType: string; base64: string } };
  /** Test builds only: a frame's state word, marked on its iframe element for the test driver. */
  'frame.state': { req: { id: string; state: string; signature: string; step: string }; res: { marked: boolean } };
  'reader.confirm': { req: { blockId: string }; res: { status: string; list: string } };
  'composer.lists': { req: Empty; res: ListView[] };
  'composer.send': { req: { composeId: string; list: string; subject: string; text: string; attachments?: AttachmentUpload[] }; res: { inserted: true } };
  'archive.login': { req: { list: string }; res: { address: string; expiresAt: string } };
  'archive.threads': { req: { list: string; before: string | null }; res: { threads: ArchiveThreadView[]; nextCursor: string | null } };
  'archive.open': { req: { list: string; ids: number[] }; res: ArchiveMessageView[] };
  /** Prepares a reply to this message for the next composer of the tab, and asks the content script to open one. */
  'reader.reply': { req: { blockId: string; to: 'list' | 'author' }; res: { opened: boolean } };
  /** The reply this composer was opened for (if any) and the saved draft for it (if any), decrypted. */
  'composer.start': { req: { composeId: string }; res: { reply: ReplyView | null; draft: DraftView | null } };
  /** Saves the composer's draft encrypted to the user's own key (IndexedDB, in the background). */
  'composer.draft.save': { req: { composeId: string; list: string; subject: string; text: string }; res: { savedAt: string } };
  'composer.draft.delete': { req: { composeId: string }; res: { deleted: boolean } };
  /** The thread holding one post, named by archive id or Message-ID (the archive's permalinks). */
  'archive.thread': { req: { list: string; id?: number; messageId?: string }; res: ArchiveThreadView };
  /**
   * A reply to an archived message (decrypted again in the background), held for
   * the next composer the user opens in any tab, for `expiresAt`.
   */
  'archive.reply': { req: { list: string; id: number; to: 'list' | 'author' }; res: { to: 'list' | 'author'; list: string; author: string | null; subject: string; expiresAt: string } };
  /** Lists this profile has signed in to as a moderator before (for the options page's links). */
  'moderation.lists': { req: Empty; res: { lists: string[] } };
  'moderation.login': { req: { list: string }; res: { address: string; expiresAt: string } };
  /** The held posts, the first 50 decrypted here with the key chosen for the list. */
  'moderation.held': { req: { list: string }; res: { held: HeldPostView[]; more: boolean } };
  /** A decision signed with that key; `result`: 'accepted' when approved and delivered, 'refused' when rejected (or no longer valid). */
  'moderation.decide': { req: { list: string; id: number; action: 'approve' | 'reject' }; res: { id: number; action: 'approve' | 'reject'; result: string; code: string | null } };
}

export type RequestType = keyof Requests;

export interface Envelope<K extends RequestType = RequestType> {
  letterlock: 1;
  type: K;
  payload: Requests[K]['req'];
}

export type Answer<T> = { ok: true; value: T } | { ok: false; error: ErrorView };

/** What the background pushes to a content script: armored text for one compose box. */
export interface InsertArmored {
  letterlock: 1;
  type: 'insert-armored';
  composeId: string;
  armored: string;
  /** Where the mail goes (a reply to its author, or the list), for the webmail's empty To field. */
  to?: string;
}

/** The background asks the content script of the top frame to open a composer (a reply was prepared). */
export interface OpenComposer {
  letterlock: 1;
  type: 'open-composer';
}

/** The background asks the content script whether the frame of a block was in plain sight for a click. */
export interface CheckFrame {
  letterlock: 1;
  type: 'check-frame';
  blockId: string;
  click: ClickPoint;
}

/** Test builds only: the state word of a frame, for the content script to mark on the iframe. */
export interface MarkFrame {
  letterlock: 1;
  type: 'mark-frame';
  id: string;
  state: string;
  signature: string;
  step: string;
}

export type ToContent = InsertArmored | CheckFrame | MarkFrame | OpenComposer;

export function isEnvelope(m: unknown): m is Envelope {
  return typeof m === 'object' && m !== null && (m as Envelope).letterlock === 1 && typeof (m as Envelope).type === 'string' && typeof (m as Envelope).payload === 'object' && (m as Envelope).payload !== null;
}
