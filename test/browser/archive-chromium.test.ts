// The archive viewer in real headless Chromium with the built extension, against
// the real list server: a member of two lists reads one list's posts as two
// threads (root and replies nested, newest thread first), searches the decrypted
// messages (a body word is found, a word of the other list is not), opens a
// message by its permalink in a fresh tab, and copies the link. The search index
// is looked for, in clear, in the extension's storage, IndexedDB and the whole
// browser profile on disk, and is not there. "Reply to list" and "Reply to
// <author>" on an archived message prepare the reply; the composer the user then
// opens at the webmail's compose box has its quote, and what is sent carries the
// archived message's In-Reply-To/References. Screenshots light and dark.

import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, fromUtf8, readMessage, readPublicKey } from '../../shared/index.ts';
import { addList, send } from '../integration/server/harness.ts';
import { armoredOf, buildExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir, Webmail, launchChromiumWithExtension, confirmInChromiumWebmail } from './extension-kit.ts';
import { shootChromium } from './screenshots.ts';

const BOB = 'bob@example.org';
const OTHER = 'other@lists.test';
// Words only in the bodies (never in a subject), so finding them proves the body was searched.
const BODY_WORD = `Marigold${Math.random().toString(36).slice(2, 8)}`;
const OTHER_WORD = `Zucchini${Math.random().toString(36).slice(2, 8)}`;
const HTML_WORD = `Hollyhock${Math.random().toString(36).slice(2, 8)}`;
const REPLY_WORD = `Trellis${Math.random().toString(36).slice(2, 8)}`;
let extDir: string, profile: string, ctx: BrowserContext, extBase: string;
const site = new Webmail();
const list = new ListServerUnderTest();
const posts: Record<string, { messageId: string }> = {};

async function openPage(path: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${extBase}extension/pages/${path}`);
  return page;
}

async function confirmInWebmail(n: number): Promise<void> {
  await (await confirmInChromiumWebmail(ctx, site, await armoredOf(await list.mailTo(BOB, n)))).close();
}

async function post(to: string, name: string, subject: string, text: string, parent?: string, html?: string): Promise<void> {
  const info = (await (await fetch(`${list.base}/v1/lists/${encodeURIComponent(to)}`)).json()) as { listKey: { armored: string } };
  const { key: listKey } = await readPublicKey(info.listKey.armored);
  const p = posts[parent ?? ''];
  const refs = p ? [p.messageId] : [];
  const composed = await composePost({
    message: { subject, from: { address: list.alice.address, name: 'Alice' }, to: [{ address: to }], text, ...(html ? { html } : {}), ...(p ? { inReplyTo: p.messageId, references: refs } : {}) },
    senderKey: list.alice.privateKey, listKey,
  });
  await send(list.server!.smtpPort, list.alice.address, to, composed.pgpMime);
  posts[name] = { messageId: composed.messageId };
}

/** Every file under a folder, as bytes (the browser profile). */
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

/** What the extension keeps: storage areas, IndexedDB (every store, every record), web storage; as text. */
async function everythingStored(page: Page): Promise<string> {
  return page.evaluate(async () => {
    const text = (v: unknown): string => {
      if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
        const b = v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        return new TextDecoder('latin1').decode(b);
      }
      if (v instanceof Blob) return '[blob]';
      if (Array.isArray(v)) return v.map(text).join('\n');
      if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k}=${text(x)}`).join('\n');
      return String(v);
    };
    let out = '';
    const c = (globalThis as unknown as { chrome: { storage: Record<string, { get(k: null): Promise<unknown> } | undefined> } }).chrome;
    for (const area of ['local', 'session', 'sync']) {
      try {
        out += text(await c.storage[area]?.get(null)) + '\n';
      } catch {
        // an area this build does not use
      }
    }
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) out += s.getItem(s.key(i)!) + '\n';
    const dbs = await indexedDB.databases();
    out += `[dbs:${dbs.length}]`;
    for (const info of dbs) {
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
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), site.start(), list.start()]);
  await addList(list.dataDir, OTHER, { owner: 'owner@example.org' }, [list.alice]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-archive-chromium-'));
  ({ ctx, extBase } = await launchChromiumWithExtension(extDir!, profile, { width: 1100, height: 900 }));
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('the archive viewer in Chromium', () => {
  it('a key, the webmail site, and membership of two lists', async () => {
    const page = await openPage('options/index.html');
    await page.locator('[data-test=guide][data-test-state=key]').waitFor({ timeout: 60_000 });
    await page.fill('[data-test=key-name]', 'Bob');
    await page.fill('[data-test=key-address]', BOB);
    await page.fill('[data-test=key-passphrase]', PASSPHRASE);
    await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: 60_000 });
    await page.click('[data-test=guide-next]');
    await page.fill('[data-test=indicator-word]', 'otter');
    await page.click('[data-test=indicator-save]');
    await page.fill('[data-test=site-input]', 'http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.locator('[data-test=guide][data-test-state=list]').waitFor();
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.locator('[data-test=options][data-test-mode=manage]').waitFor();
    const row = (address: string) => page.locator(`[data-test=list-row][data-list="${address}"]`);
    let mails = 0;
    for (const address of [LIST, OTHER]) {
      await page.fill('[data-test=list-address]', address);
      await page.fill('[data-test=list-server]', list.base);
      await page.click('[data-test=list-lookup]');
      await page.locator('[data-test=list-candidate][data-test-state=new]').waitFor({ timeout: 30_000 });
      await page.click('[data-test=list-pin]');
      await row(address).and(page.locator('[data-test-state=pinned]')).waitFor();
      await row(address).locator('[data-test=subscribe]').click();
      await row(address).and(page.locator('[data-test-state=confirmation-sent]')).waitFor({ timeout: 30_000 });
      await confirmInWebmail(++mails);
    }
    await page.reload();
    for (const address of [LIST, OTHER]) await row(address).and(page.locator('[data-test-state=member]')).waitFor({ timeout: 30_000 });
    await page.close();

    // Two threads, interleaved in time: A1 ← A2 ← A3 and B1 ← B2 (A3 arrives after B1).
    await post(LIST, 'A1', 'Garden plans', `Shall we plant ${BODY_WORD.toLowerCase()}s this spring?`);
    await post(LIST, 'A2', 'Re: Garden plans', `Yes, along the fence. ${REPLY_WORD}`, 'A1');
    await post(LIST, 'B1', 'Budget', 'The budget for next year is attached in words only.');
    await post(LIST, 'A3', 'Re: Re: Garden plans', 'And beans on the trellis.', 'A2');
    await post(LIST, 'B2', 'Re: Budget', 'Looks fine to me.', 'B1');
    await post(OTHER, 'X1', 'Other list news', `Only this list talks about ${OTHER_WORD}.`);
    // HTML only (an empty text part): searched by the words of its HTML.
    await post(OTHER, 'X2', 'Flowers', '', undefined, `<p>Only in <b>${HTML_WORD}</b> markup.</p><img src="http://127.0.0.1:1/x.png">`);
    // Every post archived and delivered: 2 confirmations + 7 posts.
    await list.mailTo(BOB, 9);
  }, 400_000);

  let archive: Page;
  it('shows two threads, newest first, replies nested under what they answer', async () => {
    archive = await openPage('archive/index.html');
    await archive.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await archive.selectOption('[data-test=archive-list]', LIST);
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive][data-test-state=signed-in]').waitFor({ timeout: 60_000 });
    const threads = archive.locator('[data-test=thread-list] [data-test=archive-thread]');
    await expect.poll(() => archive.locator('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted]').count(), { timeout: 60_000 }).toBe(5);
    expect(await threads.count()).toBe(2);
    const rowsOf = async (i: number) => threads.nth(i).locator('[data-test=archive-message]').evaluateAll((els) =>
      els.map((e) => [e.querySelector('[data-test=archive-open]')!.textContent, e.getAttribute('data-depth')]));
    expect(await rowsOf(0)).toEqual([['Budget', '0'], ['Re: Budget', '1']]);
    expect(await rowsOf(1)).toEqual([['Garden plans', '0'], ['Re: Garden plans', '1'], ['Re: Re: Garden plans', '2']]);
    // Indented by depth, as drawn.
    const pad = async (subject: string) => archive.locator('[data-test=thread-list] [data-test=archive-message]', { hasText: subject }).first().evaluate((e) => parseFloat(getComputedStyle(e).paddingLeft));
    expect(await pad('Re: Re: Garden plans')).toBeGreaterThan(await pad('Re: Garden plans'));
    expect(await pad('Re: Garden plans')).toBeGreaterThan(await pad('Garden plans'));
    await shootChromium(archive, 'archive-threads');
  }, 180_000);

  it('search finds a body word (any case) and not a word of the other list; the index is stored nowhere', async () => {
    await archive.fill('[data-test=archive-search]', BODY_WORD.toUpperCase());
    await archive.locator('[data-test=archive-search-status][data-test-state=done]').waitFor({ timeout: 60_000 });
    const results = archive.locator('[data-test=archive-result]');
    await expect.poll(() => results.count()).toBe(1);
    expect(await results.first().locator('[data-test=archive-result-open]').textContent()).toBe('Garden plans');
    // Its date is the one the thread line shows, saying which it is.
    expect(await results.first().textContent()).toContain('(signed by the sender)');
    expect(await archive.locator('[data-test=archive-search-bound]').count()).toBe(0);
    await shootChromium(archive, 'archive-search');
    // Author and several words: all must match.
    await archive.fill('[data-test=archive-search]', `alice ${REPLY_WORD.toLowerCase()}`);
    await expect.poll(() => results.count()).toBe(1);
    expect(await results.first().locator('[data-test=archive-result-open]').textContent()).toBe('Re: Garden plans');
    await archive.fill('[data-test=archive-search]', OTHER_WORD);
    await expect.poll(() => archive.locator('section[aria-label="Search results"] h2').textContent()).toBe('No messages found');
    expect(await results.count()).toBe(0);

    // The result links to the message: following it opens the message.
    await archive.fill('[data-test=archive-search]', BODY_WORD);
    await results.first().locator('[data-test=archive-result-open]').click();
    await archive.locator('[data-test=archive-view][data-test-state=decrypted]').waitFor({ timeout: 60_000 });
    expect(await archive.locator('[data-test=archive-view] [data-test=plaintext]').textContent()).toContain(BODY_WORD.toLowerCase());

    // Trying to break it: the decrypted words are in no storage the extension has, nor anywhere in the profile on disk.
    const stored = await everythingStored(archive);
    expect(stored).toMatch(/\[store:/); // the extension's IndexedDB was read (its key and lists live there)
    expect(stored).toContain('otter'); // and what the extension does keep (the security word) is seen by this scan
    for (const w of [BODY_WORD, REPLY_WORD, 'Garden plans', 'trellis']) expect(stored.toLowerCase()).not.toContain(w.toLowerCase());

    // The other list has that word, and only its own messages are searched there.
    await archive.selectOption('[data-test=archive-list]', OTHER);
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive-search]').waitFor({ timeout: 60_000 });
    await archive.fill('[data-test=archive-search]', OTHER_WORD.toLowerCase());
    await archive.locator('[data-test=archive-search-status][data-test-state=done]').waitFor({ timeout: 60_000 });
    await expect.poll(() => results.count()).toBe(1);
    await archive.fill('[data-test=archive-search]', HTML_WORD.toLowerCase());
    await expect.poll(() => archive.locator('[data-test=archive-result-open]').allTextContents()).toEqual(['Flowers']);
    await archive.fill('[data-test=archive-search]', BODY_WORD);
    await expect.poll(() => archive.locator('section[aria-label="Search results"] h2').textContent()).toBe('No messages found');
  }, 180_000);

  it('a permalink opens the right message in a fresh tab after sign-in; "copy link" copies it; a Message-ID link works too', async () => {
    await archive.selectOption('[data-test=archive-list]', LIST);
    await archive.click('[data-test=archive-sign-in]');
    const row = archive.locator('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted]', { hasText: 'Re: Re: Garden plans' });
    await row.waitFor({ timeout: 60_000 });
    const id = await row.getAttribute('data-id');
    await row.locator('[data-test=archive-open]').click();
    await archive.locator(`[data-test=archive-view][data-id="${id}"]`).waitFor({ timeout: 60_000 });
    // One date, the same in the thread line and the message, saying which it is (here: signed, verified).
    const rowDate = row.locator('[data-test=archive-date]');
    expect(await rowDate.getAttribute('data-test-state')).toBe('signed');
    expect(await rowDate.textContent()).toContain('(signed by the sender)');
    expect(await archive.textContent(`[data-test=archive-view][data-id="${id}"] [data-test=message-date]`)).toBe(await rowDate.textContent());
    const link = await archive.inputValue('[data-test=archive-permalink]');
    expect(link).toBe(`${extBase}extension/pages/archive/index.html#list=${encodeURIComponent(LIST)}&msg=${id}`);
    await archive.click('[data-test=archive-copy-link]');
    await expect.poll(() => archive.textContent('[data-test=archive-copy-link]')).toBe('Link copied');
    await shootChromium(archive, 'archive-message');
    // What was copied, pasted by the keyboard into the search box (a paste needs no clipboard permission).
    await archive.fill('[data-test=archive-search]', '');
    await archive.focus('[data-test=archive-search]');
    await archive.keyboard.press('ControlOrMeta+V');
    expect(await archive.inputValue('[data-test=archive-search]')).toBe(link);
    await archive.close();

    // Pasted into a new tab: the list is chosen, the page asks for sign-in, then opens that message in its thread.
    const fresh = await ctx.newPage();
    await fresh.goto(link);
    await fresh.locator('[data-test=archive-link-pending]').waitFor({ timeout: 30_000 });
    await expect.poll(() => fresh.inputValue('[data-test=archive-list]')).toBe(LIST);
    await shootChromium(fresh, 'archive-permalink-sign-in');
    await fresh.click('[data-test=archive-sign-in]');
    const view = fresh.locator('[data-test=archive-view][data-test-state=decrypted]');
    await view.waitFor({ timeout: 60_000 });
    expect(await view.getAttribute('data-id')).toBe(id);
    expect(await view.locator('[data-test=subject]').textContent()).toBe('Re: Re: Garden plans');
    expect(await view.locator('[data-test=plaintext]').textContent()).toContain('beans on the trellis');
    expect(await view.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    const focus = fresh.locator('[data-test=archive-focus] [data-test=archive-message]');
    expect(await focus.evaluateAll((els) => els.map((e) => [e.getAttribute('data-depth'), e.getAttribute('aria-current')]))).toEqual([['0', null], ['1', null], ['2', 'true']]);

    // By Message-ID (as a mail's header names it), in the same tab.
    await fresh.evaluate((h) => { location.hash = h; }, `#list=${encodeURIComponent(LIST)}&mid=${encodeURIComponent(posts.B1!.messageId)}`);
    await fresh.locator('[data-test=archive-view] [data-test=subject]', { hasText: /^Budget$/ }).waitFor({ timeout: 60_000 });
    // A message that does not exist says so.
    await fresh.evaluate((h) => { location.hash = h; }, `#list=${encodeURIComponent(LIST)}&msg=999999`);
    await fresh.locator('[data-test=error]').waitFor({ timeout: 30_000 });
    await shootChromium(fresh, 'archive-permalink');
    await fresh.close();

    // A link into a list this profile is not a member of says so and opens nothing.
    const stranger = await openPage(`archive/index.html#list=${encodeURIComponent('nobody@lists.test')}&msg=1`);
    await stranger.locator('[data-test=archive-link-unknown]').waitFor({ timeout: 30_000 });
    expect(await stranger.textContent('[data-test=archive-link-unknown]')).toContain('nobody@lists.test');
    expect(await stranger.locator('[data-test=archive-view]').count()).toBe(0);
    await stranger.close();
  }, 180_000);

  it('a search that reaches the bound of the in-memory index says so, and searches the newest messages', async () => {
    // Test builds let the URL lower the bound (2,000 in a release build) so five posts reach it.
    const page = await openPage('archive/index.html?searchBound=3');
    await page.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await page.selectOption('[data-test=archive-list]', LIST);
    await page.click('[data-test=archive-sign-in]');
    await page.fill('[data-test=archive-search]', 'alice');
    await page.locator('[data-test=archive-search-status][data-test-state=full]').waitFor({ timeout: 60_000 });
    expect(await page.textContent('[data-test=archive-search-bound]')).toContain('newest 3 messages');
    const ids = (await page.locator('[data-test=archive-result]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-id')))));
    const all = (await page.locator('[data-test=thread-list] [data-test=archive-message]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-id'))))).sort((a, b) => b - a);
    expect(all).toHaveLength(5);
    expect(ids).toEqual(all.slice(0, 3));
    await shootChromium(page, 'archive-search-bound');
    await page.close();
  }, 120_000);

  it('no file of the browser profile holds a decrypted word or a typed search, after the archive tabs closed', async () => {
    // Closing tabs makes the browser write its session (closed tabs and their form state) to disk.
    const blank = await ctx.newPage();
    await blank.goto('about:blank');
    const words = [BODY_WORD, BODY_WORD.toLowerCase(), BODY_WORD.toUpperCase(), HTML_WORD, HTML_WORD.toLowerCase(), REPLY_WORD, REPLY_WORD.toLowerCase(), OTHER_WORD, OTHER_WORD.toLowerCase(), 'beans on the trellis'].map((w) => Buffer.from(w));
    const files = filesUnder(profile);
    expect(files.length).toBeGreaterThan(10);
    // The scan sees what the browser did write: the lists the extension keeps.
    expect(files.some((f) => readFileSync(f).includes(Buffer.from(OTHER)))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const w of words) expect(bytes.includes(w), `${w} in ${f}`).toBe(false);
    }
    await blank.close();
  }, 120_000);

  // Last: it posts to the list, which the tests above count.
  it('"Reply to list" and "Reply to <author>" from an archived message open in the webmail composer with the quote and the threading', async () => {
    const page = await openPage('archive/index.html');
    await page.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await page.selectOption('[data-test=archive-list]', LIST);
    await page.click('[data-test=archive-sign-in]');
    const row = page.locator('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted][data-depth="0"]', { hasText: /^Budget/ });
    await row.waitFor({ timeout: 60_000 });
    await row.locator('[data-test=archive-open]').click();
    await page.locator('[data-test=archive-view][data-test-state=decrypted]').waitFor({ timeout: 60_000 });
    await page.click('[data-test=archive-reply-list]');
    await page.locator('[data-test=archive-reply][data-test-state=ready]').waitFor({ timeout: 60_000 });
    const told = await page.textContent('[data-test=archive-reply-result]');
    expect(told).toContain('“Re: Budget”');
    expect(told).toContain('“Write encrypted with Letterlock”');
    await shootChromium(page, 'archive-reply');

    // The user goes to their webmail and starts a new message: the composer opens with the reply.
    site.messages = [];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await mail.click('button[data-letterlock="compose-button"]');
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await composer.locator('[data-test=composer][data-test-state=ready][data-test-reply=list]').waitFor({ timeout: 60_000 });
    expect(await composer.locator('[data-test=reply-banner]').textContent()).toContain(LIST);
    expect(await composer.locator('[data-test=composer-subject]').inputValue()).toBe('Re: Budget');
    const quoted = await composer.locator('[data-test=composer-text]').inputValue();
    expect(quoted).toMatch(/^On .+, Alice <alice@example\.org> wrote:\n> The budget for next year is attached in words only\.\n\n$/);
    await composer.locator('[data-test=composer-text]').fill(`${quoted}Agreed, from the archive.`);
    await composer.locator('[data-test=composer-send]').click();
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), undefined, { timeout: 60_000 });
    const armored = await mail.inputValue('#composebody');
    expect(armored).not.toContain('Agreed');
    await mail.close();

    const alice = list.alice;
    const had = list.sink.to(alice.address).length;
    await list.postFromWebmail(BOB, armored, { messageId: '<wm-archive-reply@127.0.0.1>' });
    const { read, innerHead: head } = await list.readByAlice(had + 1);
    expect(head).toContain(`In-Reply-To: ${posts.B1!.messageId}`);
    expect(head).toContain(`References: ${posts.B1!.messageId}`);
    expect(read.message.subject).toBe('Re: Budget');
    expect(read.message.text).toContain('Agreed, from the archive.');
    expect(read.message.text).toContain('> The budget for next year');

    // To the author alone, from a reply deeper in a thread: its References run back to the root.
    const deep = page.locator('[data-test=thread-list] [data-test=archive-message][data-test-state=decrypted]', { hasText: 'Re: Budget' }).first();
    await deep.locator('[data-test=archive-open]').click();
    await page.locator('[data-test=archive-view] [data-test=subject]', { hasText: 'Re: Budget' }).waitFor({ timeout: 60_000 });
    await page.click('[data-test=archive-reply-author]');
    await page.locator('[data-test=archive-reply][data-test-state=ready]').waitFor({ timeout: 60_000 });
    expect(await page.textContent('[data-test=archive-reply-result]')).toContain(`to ${alice.address} alone`);
    const mail2 = await ctx.newPage();
    await mail2.goto(site.allowedUrl);
    await mail2.click('button[data-letterlock="compose-button"]');
    const composer2 = mail2.frameLocator('iframe[data-letterlock="composer"]');
    await composer2.locator('[data-test=composer][data-test-state=ready][data-test-reply=author]').waitFor({ timeout: 60_000 });
    expect(await composer2.locator('[data-test=reply-banner]').textContent()).toContain(alice.address);
    expect(await composer2.locator('[data-test=composer-text]').inputValue()).toContain('> Looks fine to me.');
    await composer2.locator('[data-test=composer-send]').click();
    await mail2.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), undefined, { timeout: 60_000 });
    const privately = await readMessage(await mail2.inputValue('#composebody'), { privateKey: alice.privateKey, senderKeys: [] });
    expect(privately.message.to.map((m) => m.address)).toEqual([alice.address]);
    expect(privately.message.inReplyTo).toBe(posts.B2!.messageId);
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(fromUtf8(privately.content)).toMatch(new RegExp(`^References: ${esc(posts.B1!.messageId)}\\s+${esc(posts.B2!.messageId)}\\r$`, 'm'));
    await Promise.all([mail2.close(), page.close()]);
  }, 240_000);
});
