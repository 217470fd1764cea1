// The archive viewer in real headless Firefox ESR with the built extension,
// against the real list server: two threads nested and newest first, a search
// that finds a body word and not a word of the other list (and leaves nothing in
// clear in the extension's storage, IndexedDB or the profile on disk), and a
// permalink that opens the right message in a fresh tab after sign-in; "Reply to
// list" and "Reply to <author>" on an archived message, continued in the composer
// the user opens at the webmail's compose box (quote, and the archived message's
// In-Reply-To/References in what is sent).

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, fromUtf8, readMessage, readPublicKey } from '../../shared/index.ts';
import { addList, send } from '../integration/server/harness.ts';
import { armoredOf, buildExtension, extensionFrameIn, focusInFrame, frameState, launchFirefoxWithExtension, LIST, ListServerUnderTest, newFirefoxExtensionPage, PASSPHRASE, removeDir, Webmail } from './extension-kit.ts';
import { shootFirefox } from './screenshots.ts';

const CAROL = 'carol@example.org';
const OTHER = 'other@lists.test';
const BODY_WORD = `Marigold${Math.random().toString(36).slice(2, 8)}`;
const OTHER_WORD = `Zucchini${Math.random().toString(36).slice(2, 8)}`;
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
let extDir: string, profile: string, browser: Browser;
const site = new Webmail();
const list = new ListServerUnderTest();
const posts: Record<string, { messageId: string }> = {};

async function openPage(path: string, ready: string): Promise<Page> {
  return newFirefoxExtensionPage(browser, `${BASE}extension/pages/${path}`, ready, { timeoutMs: 90_000, viewport: { width: 1100, height: 900 } });
}

async function messageFrame(page: Page): Promise<Frame> {
  const handle = await page.waitForSelector('#messagecontframe');
  return (await handle!.contentFrame())!;
}

async function confirmInWebmail(n: number): Promise<void> {
  site.messages = [await armoredOf(await list.mailTo(CAROL, n))];
  const mail = await browser.newPage();
  await mail.setViewport({ width: 1280, height: 1000 });
  await mail.goto(site.allowedUrl);
  const encrypted = await frameState(await messageFrame(mail), 'reader', 'encrypted');
  await focusInFrame(mail, encrypted, 1);
  await mail.keyboard.press('Enter');
  const frame = await frameState(await messageFrame(mail), 'reader', 'decrypted');
  await focusInFrame(mail, frame, 1);
  await mail.keyboard.press('Enter');
  await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="confirmed"]', { timeout: 60_000 });
  await mail.close();
}

async function post(to: string, name: string, subject: string, text: string, parent?: string): Promise<void> {
  const info = (await (await fetch(`${list.base}/v1/lists/${encodeURIComponent(to)}`)).json()) as { listKey: { armored: string } };
  const { key: listKey } = await readPublicKey(info.listKey.armored);
  const p = posts[parent ?? ''];
  const composed = await composePost({
    message: { subject, from: { address: list.alice.address, name: 'Alice' }, to: [{ address: to }], text, ...(p ? { inReplyTo: p.messageId, references: [p.messageId] } : {}) },
    senderKey: list.alice.privateKey, listKey,
  });
  await send(list.server!.smtpPort, list.alice.address, to, composed.pgpMime);
  posts[name] = { messageId: composed.messageId };
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p, { throwIfNoEntry: false });
    if (!s) continue;
    if (s.isDirectory()) filesUnder(p, out);
    else if (s.isFile()) out.push(p);
  }
  return out;
}

async function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent ?? ''));
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), site.start(), list.start()]);
  await addList(list.dataDir, OTHER, { owner: 'owner@example.org' }, [list.alice]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-archive-firefox-'));
  browser = await launchFirefoxWithExtension(extDir, profile, UUID);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('the archive viewer in Firefox', () => {
  it('a key, the webmail site, membership of two lists, and posts in two threads', async () => {
    const page = await openPage('options/index.html', '[data-test=guide][data-test-state=key]');
    await page.locator('[data-test=key-name]').fill('Carol');
    await page.locator('[data-test=key-address]').fill(CAROL);
    await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: 60_000 });
    await page.click('[data-test=guide-next]');
    await page.locator('[data-test=indicator-word]').fill('heron');
    await page.click('[data-test=indicator-save]');
    await page.locator('[data-test=site-input]').fill('http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.waitForSelector('[data-test=guide][data-test-state=list]');
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.waitForSelector('[data-test=options][data-test-mode=manage]');
    let mails = 0;
    for (const address of [LIST, OTHER]) {
      await page.locator('[data-test=list-address]').fill(address);
      await page.locator('[data-test=list-server]').fill(list.base);
      await page.click('[data-test=list-lookup]');
      await page.waitForSelector('[data-test=list-candidate][data-test-state=new]', { timeout: 30_000 });
      await page.click('[data-test=list-pin]');
      await page.waitForSelector(`[data-test=list-row][data-list="${address}"][data-test-state=pinned]`);
      await page.click(`[data-test=list-row][data-list="${address}"] [data-test=subscribe]`);
      await page.waitForSelector(`[data-test=list-row][data-list="${address}"][data-test-state=confirmation-sent]`, { timeout: 30_000 });
      await confirmInWebmail(++mails);
    }
    await page.close();
    const again = await openPage('options/index.html', `[data-test=list-row][data-list="${OTHER}"][data-test-state=member]`);
    await again.waitForSelector(`[data-test=list-row][data-list="${LIST}"][data-test-state=member]`);
    await again.close();

    await post(LIST, 'A1', 'Garden plans', `Shall we plant ${BODY_WORD.toLowerCase()}s this spring?`);
    await post(LIST, 'A2', 'Re: Garden plans', 'Yes, along the fence.', 'A1');
    await post(LIST, 'B1', 'Budget', 'The budget for next year.');
    await post(LIST, 'A3', 'Re: Re: Garden plans', 'And beans on the trellis.', 'A2');
    await post(LIST, 'B2', 'Re: Budget', 'Looks fine to me.', 'B1');
    await post(OTHER, 'X1', 'Other list news', `Only this list talks about ${OTHER_WORD}.`);
    await list.mailTo(CAROL, 8);
  }, 400_000);

  let archive: Page;
  it('threads, newest first, replies nested; search finds a body word and not the other list\'s; nothing stored in clear', async () => {
    archive = await openPage('archive/index.html', '[data-test=archive-list] option');
    await archive.select('[data-test=archive-list]', LIST);
    await archive.click('[data-test=archive-sign-in]');
    await archive.waitForSelector('[data-test=archive][data-test-state=signed-in]', { timeout: 60_000 });
    await expect.poll(async () => (await archive.$$('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted]')).length, { timeout: 60_000 }).toBe(5);
    const rows = await archive.$$eval('[data-test=thread-list] [data-test=archive-thread]', (ts) => ts.map((t) => Array.from(t.querySelectorAll('[data-test=archive-message]')).map((e) => [e.querySelector('[data-test=archive-open]')!.textContent, e.getAttribute('data-depth')])));
    expect(rows).toEqual([
      [['Budget', '0'], ['Re: Budget', '1']],
      [['Garden plans', '0'], ['Re: Garden plans', '1'], ['Re: Re: Garden plans', '2']],
    ]);
    await shootFirefox(archive, 'archive-threads');

    await archive.locator('[data-test=archive-search]').fill(BODY_WORD.toUpperCase());
    await archive.waitForSelector('[data-test=archive-search-status][data-test-state=done]', { timeout: 60_000 });
    await expect.poll(() => texts(archive, '[data-test=archive-result-open]')).toEqual(['Garden plans']);
    await shootFirefox(archive, 'archive-search');
    await archive.locator('[data-test=archive-search]').fill(OTHER_WORD);
    await expect.poll(() => texts(archive, 'section[aria-label="Search results"] h2')).toEqual(['No messages found']);

    const stored = await archive.evaluate(async () => {
      const text = (v: unknown): string => {
        if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
          const b = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
          return new TextDecoder('latin1').decode(b);
        }
        if (Array.isArray(v)) return v.map(text).join('\n');
        if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}=${text(x)}`).join('\n');
        return String(v);
      };
      const api = (globalThis as unknown as { browser: { storage: Record<string, { get(k: null): Promise<unknown> } | undefined> } }).browser;
      let out = '';
      for (const area of ['local', 'session']) {
        try {
          out += text(await api.storage[area]?.get(null)) + '\n';
        } catch {
          // an area this build does not use
        }
      }
      for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) out += s.getItem(s.key(i)!) + '\n';
      for (const info of await indexedDB.databases()) {
        const db = await new Promise<IDBDatabase>((ok, bad) => {
          const r = indexedDB.open(info.name!);
          r.onsuccess = () => ok(r.result);
          r.onerror = () => bad(r.error);
        });
        for (const name of Array.from(db.objectStoreNames)) {
          const all = await new Promise<unknown[]>((ok, bad) => {
            const r = db.transaction(name).objectStore(name).getAll();
            r.onsuccess = () => ok(r.result);
            r.onerror = () => bad(r.error);
          });
          out += `[store:${name}:${all.length}]` + text(all) + '\n';
        }
        db.close();
      }
      return out;
    });
    expect(stored).toMatch(/\[store:/);
    expect(stored).toContain('heron'); // what the extension does keep (the security word) is seen by this scan
    for (const w of [BODY_WORD, 'Garden plans', 'trellis', OTHER_WORD]) expect(stored.toLowerCase()).not.toContain(w.toLowerCase());
  }, 240_000);

  it('a permalink opens the right message in a fresh tab after sign-in', async () => {
    const id = await archive.$eval('[data-test=thread-list] [data-test=archive-message][data-depth="2"]', (e) => e.getAttribute('data-id'));
    await archive.click(`[data-test=thread-list] [data-test=archive-message][data-id="${id}"] [data-test=archive-open]`);
    await archive.waitForSelector(`[data-test=archive-view][data-id="${id}"]`, { timeout: 60_000 });
    // One date, the same in the thread line and the message, saying which it is (here: signed, verified).
    const rowDate = `[data-test=thread-list] [data-test=archive-message][data-id="${id}"] [data-test=archive-date]`;
    expect(await archive.$eval(rowDate, (e) => e.getAttribute('data-test-state'))).toBe('signed');
    expect(await archive.$eval(`[data-test=archive-view][data-id="${id}"] [data-test=message-date]`, (e) => e.textContent)).toBe(await archive.$eval(rowDate, (e) => e.textContent));
    const link = await archive.$eval('[data-test=archive-permalink]', (e) => (e as HTMLInputElement).value);
    expect(link).toBe(`${BASE}extension/pages/archive/index.html#list=${encodeURIComponent(LIST)}&msg=${id}`);
    await archive.click('[data-test=archive-copy-link]');
    await expect.poll(() => texts(archive, '[data-test=archive-copy-link]'), { timeout: 30_000 }).toEqual(['Link copied']);
    await shootFirefox(archive, 'archive-message');
    await archive.close();

    const fresh = await openPage(`archive/index.html#list=${encodeURIComponent(LIST)}&msg=${id}`, '[data-test=archive-link-pending]');
    await expect.poll(() => fresh.$eval('[data-test=archive-list]', (e) => (e as HTMLSelectElement).value)).toBe(LIST);
    await fresh.click('[data-test=archive-sign-in]');
    await fresh.waitForSelector(`[data-test=archive-view][data-test-state=decrypted][data-id="${id}"]`, { timeout: 60_000 });
    expect(await fresh.$eval('[data-test=archive-view] [data-test=subject]', (e) => e.textContent)).toBe('Re: Re: Garden plans');
    expect(await fresh.$eval('[data-test=archive-view] [data-test=plaintext]', (e) => e.textContent)).toContain('beans on the trellis');
    expect(await fresh.$eval('[data-test=archive-view] [data-test=signature]', (e) => e.getAttribute('data-test-state'))).toBe('verified');
    await shootFirefox(fresh, 'archive-permalink');
    await fresh.close();

    // Nothing decrypted or typed is in any file of the profile.
    const words = [BODY_WORD, BODY_WORD.toLowerCase(), BODY_WORD.toUpperCase(), OTHER_WORD, OTHER_WORD.toLowerCase(), 'beans on the trellis'].map((w) => Buffer.from(w));
    const files = filesUnder(profile);
    expect(files.length).toBeGreaterThan(10);
    // The scan sees what the browser did write: the lists the extension keeps.
    expect(files.some((f) => readFileSync(f).includes(Buffer.from(OTHER)))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const w of words) expect(bytes.includes(w), `${w} in ${f}`).toBe(false);
    }
  }, 240_000);

  /** The user starts a new message in the webmail: the composer there opens with the prepared reply. */
  async function composerWithReply(to: 'list' | 'author') {
    site.messages = [];
    const mail = await browser.newPage();
    await mail.setViewport({ width: 1280, height: 1000 });
    await mail.goto(site.allowedUrl);
    await mail.click('button[data-letterlock="compose-button"]');
    await mail.waitForSelector('iframe[data-letterlock="composer"][data-test-state="ready"]', { timeout: 60_000 });
    const composer = await extensionFrameIn(mail, 'composer');
    await composer.waitForSelector(`[data-test=composer][data-test-state=ready][data-test-reply=${to}]`, { timeout: 60_000 });
    return { mail, composer };
  }

  async function sent(mail: Page): Promise<string> {
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), { timeout: 60_000 });
    return mail.$eval('#composebody', (e) => (e as HTMLTextAreaElement).value);
  }

  it('"Reply to list" and "Reply to <author>" from an archived message open in the webmail composer with the quote and the threading', async () => {
    const page = await openPage('archive/index.html', '[data-test=archive-list] option');
    await page.select('[data-test=archive-list]', LIST);
    await page.click('[data-test=archive-sign-in]');
    await expect.poll(async () => (await page.$$('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted]')).length, { timeout: 60_000 }).toBe(5);
    const idOf = (subject: string) => page.$$eval('[data-test=thread-list] [data-test=archive-message]', (els, s) => els.find((e) => e.querySelector('[data-test=archive-open]')!.textContent === s)!.getAttribute('data-id'), subject);
    const open = async (subject: string) => {
      const id = await idOf(subject);
      await page.click(`[data-test=thread-list] [data-test=archive-message][data-id="${id}"] [data-test=archive-open]`);
      await page.waitForSelector(`[data-test=archive-view][data-test-state=decrypted][data-id="${id}"]`, { timeout: 60_000 });
    };

    await open('Budget');
    await page.click('[data-test=archive-reply-list]');
    await page.waitForSelector('[data-test=archive-reply][data-test-state=ready]', { timeout: 60_000 });
    const told = await page.$eval('[data-test=archive-reply-result]', (e) => e.textContent ?? '');
    expect(told).toContain('“Re: Budget”');
    expect(told).toContain('“Write encrypted with Letterlock”');
    await shootFirefox(page, 'archive-reply');

    const { mail, composer } = await composerWithReply('list');
    expect(await composer.$eval('[data-test=reply-banner]', (e) => e.textContent)).toContain(LIST);
    expect(await composer.$eval('[data-test=composer-subject]', (e) => (e as HTMLInputElement).value)).toBe('Re: Budget');
    const quoted = await composer.$eval('[data-test=composer-text]', (e) => (e as HTMLTextAreaElement).value);
    expect(quoted).toMatch(/^On .+, Alice <alice@example\.org> wrote:\n> The budget for next year\.\n\n$/);
    await composer.locator('[data-test=composer-text]').fill(`${quoted}Agreed, from the archive.`);
    await composer.click('[data-test=composer-send]');
    const armored = await sent(mail);
    expect(armored).not.toContain('Agreed');
    await mail.close();

    const alice = list.alice;
    const had = list.sink.to(alice.address).length;
    await list.postFromWebmail(CAROL, armored, { messageId: '<wm-fx-archive-reply@127.0.0.1>' });
    const { read, innerHead: head } = await list.readByAlice(had + 1);
    expect(head).toContain(`In-Reply-To: ${posts.B1!.messageId}`);
    expect(head).toContain(`References: ${posts.B1!.messageId}`);
    expect(read.message.subject).toBe('Re: Budget');
    expect(read.message.text).toContain('Agreed, from the archive.');

    // To the author alone, from the reply in that thread: References run back to the root.
    await open('Re: Budget');
    await page.click('[data-test=archive-reply-author]');
    await page.waitForSelector('[data-test=archive-reply][data-test-state=ready]', { timeout: 60_000 });
    expect(await page.$eval('[data-test=archive-reply-result]', (e) => e.textContent)).toContain(`to ${alice.address} alone`);
    const second = await composerWithReply('author');
    expect(await second.composer.$eval('[data-test=reply-banner]', (e) => e.textContent)).toContain(alice.address);
    expect(await second.composer.$eval('[data-test=composer-text]', (e) => (e as HTMLTextAreaElement).value)).toContain('> Looks fine to me.');
    await second.composer.click('[data-test=composer-send]');
    const privately = await readMessage(await sent(second.mail), { privateKey: alice.privateKey, senderKeys: [] });
    expect(privately.message.to.map((m) => m.address)).toEqual([alice.address]);
    expect(privately.message.inReplyTo).toBe(posts.B2!.messageId);
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(fromUtf8(privately.content)).toMatch(new RegExp(`^References: ${esc(posts.B1!.messageId)}\\s+${esc(posts.B2!.messageId)}\\r$`, 'm'));
    await Promise.all([second.mail.close(), page.close()]);
  }, 240_000);
});
