// The content script, registered only on the sites the user allowed. It carries
// ciphertext and places the extension's frames; it imports no crypto and never
// sees plaintext, keys or passphrases. Page scripts cannot reach it: it listens
// to no window messages, only to the background (runtime messages).

import browser from 'webextension-polyfill';
import { ask } from '../ask.ts';
import type { InsertArmored } from '../messages.ts';
import { findBlocks } from './finder.ts';

/** Largest armored block forwarded to the background (characters). */
export const MAX_FORWARDED = 4 * 1024 * 1024;

const READER = browser.runtime.getURL('extension/pages/reader/index.html');
const COMPOSER = browser.runtime.getURL('extension/pages/composer/index.html');

const handled = new WeakSet<Element>();
const composeBoxes = new Map<string, { box: HTMLElement; frame: HTMLIFrameElement }>();
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
      try {
        const { blockId } = await ask('content.stash', { armored: block.armored });
        found.container.before(frame(`${READER}#${blockId}`, 'reader', doc, 420));
      } catch {
        return; // the background refused (site no longer allowed): leave the page as it is
      }
    }
    // The armored text stays in the page (it is only ciphertext), out of sight.
    (found.container as HTMLElement).style.display = 'none';
  }
}

function isComposeBox(el: Element): el is HTMLElement {
  if (el instanceof HTMLTextAreaElement) return !el.disabled && !el.readOnly;
  return el instanceof HTMLElement && el.isContentEditable && el.getAttribute('contenteditable') !== null;
}

function placeComposeButtons(doc: Document): void {
  for (const el of doc.querySelectorAll('textarea, [contenteditable=""], [contenteditable="true"]')) {
    if (withButton.has(el) || !isComposeBox(el)) continue;
    withButton.add(el);
    const button = doc.createElement('button');
    button.type = 'button';
    button.textContent = 'Write encrypted with Letterlock';
    button.setAttribute('data-letterlock', 'compose-button');
    button.addEventListener('click', () => void openComposer(el, button));
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

/** Puts the armored text (ciphertext only) into the page's compose box. */
function insert(box: HTMLElement, armored: string): void {
  if (box instanceof HTMLTextAreaElement) {
    box.value = armored;
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
}

browser.runtime.onMessage.addListener((message: unknown, sender: browser.Runtime.MessageSender) => {
  // Only the background may push (it has no tab); anything else is ignored.
  if (sender.id !== browser.runtime.id || sender.tab) return undefined;
  const m = message as InsertArmored;
  if (m?.letterlock !== 1 || m.type !== 'insert-armored' || typeof m.armored !== 'string') return undefined;
  const target = composeBoxes.get(m.composeId);
  if (!target) return undefined;
  insert(target.box, m.armored);
  target.frame.remove();
  composeBoxes.delete(m.composeId);
  return Promise.resolve(true);
});

// Our frames report their state word; only messages from our own origin and
// from a frame we placed are taken.
const EXTENSION_ORIGIN = new URL(READER).origin;
const STATES = /^(loading|decrypted|error|ready|busy|inserted)$/;
window.addEventListener('message', (ev: MessageEvent) => {
  if (ev.origin !== EXTENSION_ORIGIN) return;
  const data = ev.data as { letterlock?: unknown; state?: unknown; signature?: unknown };
  if (data?.letterlock !== 'frame-state') return;
  for (const f of document.querySelectorAll<HTMLIFrameElement>('iframe[data-letterlock]')) {
    if (f.contentWindow !== ev.source) continue;
    const state = String(data.state);
    f.setAttribute('data-test-state', STATES.test(state) ? state : 'unknown');
    if (f.getAttribute('data-letterlock') === 'reader') {
      f.setAttribute('data-test-signature', /^(verified|unchecked|invalid)$/.test(String(data.signature)) ? String(data.signature) : '');
    }
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
}

scan();
