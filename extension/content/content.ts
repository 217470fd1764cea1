// The content script, registered only on the sites the user allowed. It carries
// ciphertext and places the extension's frames; it imports no crypto and never
// sees plaintext, keys or passphrases. Page scripts cannot drive it: it acts on
// runtime messages from the background only, and takes window messages only
// from frames it placed (their height, nothing else). It hands each reader frame
// its frame key by postMessage to that frame's window (never in the URL), and
// tells the background whether a frame was in plain sight for a click.

import browser from 'webextension-polyfill';
import { ask } from '../ask.ts';
import type { ClickPoint, ToContent } from '../messages.ts';
import { encryptedAttachments } from './attachments.ts';
import { extractBlocks, findBlocks } from './finder.ts';
// Byte helpers only (no crypto): the content script must not bundle OpenPGP.
import { fromUtf8, readBodyCapped } from '../../shared/bytes.ts';

/** Largest armored block forwarded to the background (characters). */
export const MAX_FORWARDED = 4 * 1024 * 1024;
/** Most reader frames one document shows at once: a page stuffed with blocks cannot flood the background. */
export const MAX_READERS = 50;

const READER = browser.runtime.getURL('extension/pages/reader/index.html');
const COMPOSER = browser.runtime.getURL('extension/pages/composer/index.html');

const handled = new WeakSet<Element>();
const composeBoxes = new Map<string, { box: HTMLElement; frame: HTMLIFrameElement }>();
/** Reader frames this script placed, by block id. */
const readers = new Map<string, HTMLIFrameElement>();
/**
 * The origin our frames' documents have. Chromium hands out the frame URL under a
 * per-session host (use_dynamic_url), but the document in it has the extension's
 * own origin; Firefox's moz-extension host is the same for both.
 */
const EXTENSION_ORIGIN = new URL(READER).protocol === 'chrome-extension:' ? `chrome-extension://${browser.runtime.id}` : new URL(READER).origin;

/**
 * A reader frame for a stashed block. Its key goes to the frame's window only,
 * addressed to the extension's origin: a copy of the frame the page makes from
 * the URL never gets it, and a frame the page navigated elsewhere does not either.
 */
function readerFrame(blockId: string, frameKey: string, doc: Document): HTMLIFrameElement {
  const f = frame(`${READER}#${blockId}`, 'reader', doc, 160);
  f.addEventListener('load', () => f.contentWindow?.postMessage({ letterlock: 'frame-key', key: frameKey }, EXTENSION_ORIGIN));
  readers.set(blockId, f);
  // Frames long gone from the page are forgotten (a webmail shows message after message).
  for (const [id, old] of readers) if (readers.size > 200 && !old.isConnected) readers.delete(id);
  return f;
}
const withButton = new WeakSet<Element>();
const observed = new WeakSet<Document>();
const listening = new WeakSet<HTMLIFrameElement>();

function frame(src: string, kind: string, doc: Document, height: number): HTMLIFrameElement {
  const f = doc.createElement('iframe');
  f.src = src;
  f.setAttribute('data-letterlock', kind);
  f.setAttribute('title', kind === 'reader' ? 'Letterlock: decrypted message' : 'Letterlock: write encrypted');
  f.style.cssText = `display:block;width:100%;max-width:60em;height:${height}px;border:1px solid #999;border-radius:4px;margin:4px 0;background:#fff`;
  return f;
}

function note(doc: Document, text: string): HTMLElement {
  const p = doc.createElement('p');
  p.setAttribute('data-letterlock', 'note');
  p.textContent = text;
  return p;
}

async function placeReaders(doc: Document): Promise<void> {
  if (!doc.body) return;
  const founds = findBlocks(doc.body, handled);
  // Marked before any await, so an overlapping scan does not place them twice.
  for (const found of founds) handled.add(found.container);
  for (const found of founds) {
    for (const block of found.blocks) {
      if (block.armored.length > MAX_FORWARDED) {
        found.container.before(note(doc, 'Letterlock: this encrypted message is too large to open in the browser.'));
        continue;
      }
      if (doc.querySelectorAll('iframe[data-letterlock="reader"]').length >= MAX_READERS) {
        found.container.before(note(doc, 'Letterlock: too many encrypted messages on this page; open this one on its own.'));
        continue;
      }
      try {
        const { blockId, frameKey } = await ask('content.stash', { armored: block.armored });
        found.container.before(readerFrame(blockId, frameKey, doc));
      } catch (e) {
        if ((e as { code?: string }).code === 'TOO_MANY_BLOCKS') {
          found.container.before(note(doc, 'Letterlock: too many encrypted messages on this page; open this one on its own.'));
          continue;
        }
        return; // the background refused (site no longer allowed): leave the page as it is
      }
    }
    // The armored text stays in the page (it is only ciphertext), out of sight.
    (found.container as HTMLElement).style.display = 'none';
  }
}

/**
 * PGP/MIME mail a webmail cannot show (Roundcube: "This is an encrypted message
 * and can not be displayed") lists its encrypted part as an attachment. Its
 * armored text is fetched from the page's own origin (what the user could
 * download) and only that ciphertext goes to the background; the reader frame
 * goes where the webmail's notice was.
 */
async function placeAttachmentReaders(doc: Document): Promise<void> {
  const founds = encryptedAttachments(doc, handled);
  // Marked before any await, so an overlapping scan does not fetch them twice.
  for (const found of founds) handled.add(found.link);
  for (const found of founds) {
    if (doc.querySelectorAll('iframe[data-letterlock="reader"]').length >= MAX_READERS) return;
    let armored: string;
    try {
      armored = await fetchArmored(found.url, doc);
    } catch (e) {
      found.place(note(doc, `Letterlock: the encrypted part could not be fetched (${(e as Error).message}).`));
      continue;
    }
    try {
      const { blockId, frameKey } = await ask('content.stash', { armored });
      const f = readerFrame(blockId, frameKey, doc);
      f.setAttribute('data-letterlock-source', 'attachment');
      found.place(f);
    } catch {
      return; // the background refused (site no longer allowed): leave the page as it is
    }
  }
}

/**
 * The first armored OpenPGP message of a same-origin attachment, size-limited.
 * In MV3 a content script's fetch goes out as the page's own request (Chromium
 * and Firefox alike), so the webmail's session cookie comes with it.
 */
async function fetchArmored(url: string, doc: Document): Promise<string> {
  const u = new URL(url, doc.baseURI);
  if (u.origin !== location.origin) throw new Error('not on this site');
  const res = await fetch(u.href, { credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  // Read with a cap: a lying or missing Content-Length cannot make us hold more.
  const bytes = await readBodyCapped(res, MAX_FORWARDED);
  if (!bytes) throw new Error('too large');
  const text = fromUtf8(bytes);
  const block = extractBlocks(text)[0];
  if (!block) throw new Error('no OpenPGP message in it');
  return block.armored;
}


// Tag names, not instanceof: elements of same-origin inner frames come from another realm.
function isComposeBox(el: Element): el is HTMLElement {
  if (el.tagName === 'TEXTAREA') return !(el as HTMLTextAreaElement).disabled && !(el as HTMLTextAreaElement).readOnly;
  return (el as HTMLElement).isContentEditable === true;
}

function looksLikeComposeBox(el: HTMLElement): boolean {
  const r = el.getBoundingClientRect();
  if (r.width < 80 || r.height < 30) return false;
  const style = el.ownerDocument.defaultView?.getComputedStyle(el);
  return !style || (style.visibility !== 'hidden' && Number(style.opacity) > 0.1);
}

function placeComposeButtons(doc: Document): void {
  for (const el of doc.querySelectorAll('textarea, [contenteditable=""], [contenteditable="true"]')) {
    if (withButton.has(el) || !isComposeBox(el)) continue;
    // Webmails keep hidden textareas (Roundcube's recipient fields: collapsed, or
    // 10 px wide and transparent off-screen): no button there. Not marked, so a
    // later scan adds one if the box is shown.
    if (!looksLikeComposeBox(el)) continue;
    withButton.add(el);
    const button = doc.createElement('button');
    button.type = 'button';
    button.textContent = 'Write encrypted with Letterlock';
    button.setAttribute('data-letterlock', 'compose-button');
    // Only the user's own click (or key): a click the page makes could take a reply the user prepared elsewhere.
    button.addEventListener('click', (ev) => {
      if (ev.isTrusted) void openComposer(el, button);
    });
    el.after(button);
  }
}

async function openComposer(box: HTMLElement, button: HTMLButtonElement): Promise<void> {
  for (const [, c] of composeBoxes) if (c.box === box) return; // one composer per box
  const { composeId } = await ask('content.compose', {});
  const f = frame(`${COMPOSER}#${composeId}`, 'composer', box.ownerDocument, 460);
  button.after(f);
  composeBoxes.set(composeId, { box, frame: f });
}

/**
 * A reply was prepared in a reader frame of this tab: a composer opens at the
 * first compose box (a composer already open there is replaced, so it takes the
 * reply). False when the page shows no compose box yet: the next composer the
 * user opens in this tab takes the reply.
 */
async function openComposerForReply(): Promise<boolean> {
  const docs = [document, ...[...document.querySelectorAll('iframe')].flatMap((f) => {
    try {
      return f.contentDocument ? [f.contentDocument] : [];
    } catch {
      return [];
    }
  })];
  for (const doc of docs) {
    const button = doc.querySelector<HTMLButtonElement>('button[data-letterlock="compose-button"]');
    const box = button?.previousElementSibling as HTMLElement | null;
    if (!button || !box) continue;
    for (const [id, c] of composeBoxes) {
      if (c.box !== box) continue;
      c.frame.remove();
      composeBoxes.delete(id);
    }
    await openComposer(box, button);
    composeBoxes.get([...composeBoxes.keys()].pop()!)?.frame.scrollIntoView({ block: 'nearest' });
    return true;
  }
  return false;
}

/** The webmail's recipient field, when it is empty: the list, or the author of a private reply (an address, never content). */
const RECIPIENT_FIELDS = '#compose-to, input[name="_to"], textarea[name="_to"], input[name="to"]';
function fillRecipient(doc: Document, address: string): void {
  const field = doc.querySelector<HTMLInputElement>(RECIPIENT_FIELDS);
  if (!field || field.value.trim() !== '') return;
  field.value = address;
  field.dispatchEvent(new Event('input', { bubbles: true }));
  field.dispatchEvent(new Event('change', { bubbles: true }));
}

/** Puts the armored text (ciphertext only) into the page's compose box. */
function insert(box: HTMLElement, armored: string): void {
  if (box.tagName === 'TEXTAREA') {
    (box as HTMLTextAreaElement).value = armored;
  } else {
    const doc = box.ownerDocument;
    box.replaceChildren();
    const lines = armored.split('\n');
    lines.forEach((line, i) => {
      box.append(doc.createTextNode(line));
      if (i < lines.length - 1) box.append(doc.createElement('br'));
    });
  }
  box.dispatchEvent(new Event('input', { bubbles: true }));
  box.dispatchEvent(new Event('change', { bubbles: true }));
  hideSubject(box.ownerDocument);
}

/**
 * The subject typed in the composer travels inside the encryption (protected
 * headers); the webmail's own Subject field would go out in plaintext. It gets
 * the placeholder the list itself uses for copies ("..."; shared's
 * PLACEHOLDER_SUBJECT, not imported: that module pulls in crypto), keeping a
 * reply's "Re: ..." as it is.
 */
export const PLACEHOLDER_SUBJECT = '...';
const SUBJECT_FIELDS = '#compose-subject, input[name="_subject"], input[name="subject"]';
function hideSubject(doc: Document): void {
  for (const field of doc.querySelectorAll<HTMLInputElement>(SUBJECT_FIELDS)) {
    if (/^(?:(?:re|fwd?|aw|wg|sv|antw):\s*)*\.\.\.$/i.test(field.value.trim())) continue;
    field.value = PLACEHOLDER_SUBJECT;
    field.dispatchEvent(new Event('input', { bubbles: true }));
    field.dispatchEvent(new Event('change', { bubbles: true }));
  }
}

browser.runtime.onMessage.addListener((message: unknown, sender: browser.Runtime.MessageSender) => {
  // Only the background may push (it has no tab); anything else is ignored.
  if (sender.id !== browser.runtime.id || sender.tab) return undefined;
  const m = message as ToContent;
  if (m?.letterlock !== 1) return undefined;
  if (m.type === 'check-frame') {
    const f = readers.get(m.blockId);
    return Promise.resolve({ visible: f ? inPlainSight(f, m.click) : false });
  }
  if (m.type === 'mark-frame') {
    const f = readers.get(m.id) ?? composeBoxes.get(m.id)?.frame;
    if (!f) return undefined;
    // Test builds only (the background refuses the marks otherwise): words for the driver.
    f.setAttribute('data-test-state', m.state);
    f.setAttribute('data-test-signature', m.signature);
    f.setAttribute('data-test-step', m.step);
    return Promise.resolve(true);
  }
  if (m.type === 'open-composer') return Promise.resolve(openComposerForReply());
  if (m.type !== 'insert-armored' || typeof m.armored !== 'string') return undefined;
  const target = composeBoxes.get(m.composeId);
  if (!target) return undefined;
  insert(target.box, m.armored);
  if (typeof m.to === 'string') fillRecipient(target.box.ownerDocument, m.to);
  target.frame.remove();
  composeBoxes.delete(m.composeId);
  return Promise.resolve(true);
});

/**
 * Whether a frame of ours was in plain sight where the user clicked: the frame
 * is the topmost element at that point (keyboard: its middle), with nothing on
 * the way up (to the top same-origin document) that hides or fades it. Runs in
 * the content script's own world, so page scripts cannot answer for it. An
 * overlay with `pointer-events: none` is not seen by elementFromPoint: Chromium's
 * reader adds IntersectionObserver v2 for that; Firefox has no such check.
 */
export function inPlainSight(f: HTMLIFrameElement, click: ClickPoint): boolean {
  if (!f.isConnected) return false;
  const r = f.getBoundingClientRect();
  // The point in the frame's parent document.
  let x = click.keyboard ? r.left + r.width / 2 : r.left + f.clientLeft + click.x;
  let y = click.keyboard ? r.top + r.height / 2 : r.top + f.clientTop + click.y;
  let el: Element = f;
  for (let depth = 0; depth < 8; depth++) {
    const doc = el.ownerDocument;
    const view = doc.defaultView;
    if (!view) return false;
    if (x < 0 || y < 0 || x >= view.innerWidth || y >= view.innerHeight) return false;
    if (doc.elementFromPoint(x, y) !== el) return false;
    for (let a: Element | null = el; a; a = a.parentElement) {
      const cs = view.getComputedStyle(a);
      if (Number(cs.opacity) < 0.99 || cs.visibility === 'hidden' || cs.filter !== 'none' || cs.clipPath !== 'none' || (cs.maskImage && cs.maskImage !== 'none') || cs.mixBlendMode !== 'normal') return false;
    }
    let outer: Element | null = null;
    try {
      outer = view.frameElement; // null at the top, or when the parent is of another origin
    } catch {
      outer = null;
    }
    if (!outer) return true;
    const o = outer.getBoundingClientRect();
    x += o.left + outer.clientLeft;
    y += o.top + outer.clientTop;
    el = outer;
  }
  return false;
}

// Our frames tell us their height (the only thing they post to the page); only
// messages from a frame we placed are taken, and the height is bounded.
window.addEventListener('message', (ev: MessageEvent) => {
  const data = ev.data as { letterlock?: unknown; height?: unknown };
  if (data?.letterlock !== 'frame-height' || typeof data.height !== 'number' || !Number.isFinite(data.height)) return;
  for (const f of [...readers.values(), ...[...composeBoxes.values()].map((c) => c.frame)]) {
    if (!f.contentWindow || f.contentWindow !== ev.source) continue;
    f.style.height = `${Math.round(Math.min(Math.max(data.height, 60), 4000)) + 2}px`;
  }
});

/** Same-origin frames without their own URL (about:blank, srcdoc) get no content script of their own. */
function innerDocuments(doc: Document): Document[] {
  const out: Document[] = [];
  for (const f of doc.querySelectorAll('iframe')) {
    if (f.hasAttribute('data-letterlock')) continue;
    if (!listening.has(f)) {
      listening.add(f);
      f.addEventListener('load', schedule);
    }
    try {
      const d = f.contentDocument;
      if (d && (d.URL === 'about:blank' || d.URL === 'about:srcdoc')) out.push(d, ...innerDocuments(d));
    } catch {
      // Cross-origin: not ours to touch.
    }
  }
  return out;
}

let scheduled = false;
function scan(): void {
  scheduled = false;
  for (const doc of [document, ...innerDocuments(document)]) {
    watch(doc);
    void placeReaders(doc);
    void placeAttachmentReaders(doc);
    placeComposeButtons(doc);
  }
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(scan);
}

function watch(doc: Document): void {
  if (observed.has(doc) || !doc.documentElement) return;
  observed.add(doc);
  new MutationObserver(schedule).observe(doc.documentElement, { childList: true, subtree: true, characterData: true });
  // A compose box shown by a style change (no DOM mutation) gets its button when focused.
  doc.addEventListener('focusin', schedule);
}

scan();
