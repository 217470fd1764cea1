// The built extension in real headless Firefox ESR (puppeteer-core over WebDriver
// BiDi), against the real list server and the loopback webmail page. Site access
// goes through Firefox's real optional-permission path (its prompt answered yes
// by preference). Extension frames inside web pages are not reachable from the
// driver in Firefox, so frames are checked by the state word they report to the
// content script, and driven by keyboard; extension pages are checked directly.

import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, parsePrivateKey, readMail, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';
import { send } from '../integration/server/harness.ts';
import { armoredOf, artifact, buildExtension, extensionFrameIn, focusInFrame, frameState, launchFirefoxWithExtension, LIST, newFirefoxExtensionPage, ListServerUnderTest, PASSPHRASE, removeDir, Webmail } from './extension-kit.ts';

const CAROL = 'carol@example.org';
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
let extDir: string, profile: string, browser: Browser;
const site = new Webmail();
const list = new ListServerUnderTest();

/** moz-extension pages never report their load to the driver: start, then wait for content. */
async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 1000 });
  return page;
}

async function openPage(path: string, ready: string): Promise<Page> {
  // A long deadline: the driver sometimes loses a page for a while and it is opened again.
  return newFirefoxExtensionPage(browser, `${BASE}extension/pages/${path}/index.html`, ready, { timeoutMs: 90_000 });
}

async function messageFrame(page: Page): Promise<Frame> {
  const handle = await page.waitForSelector('#messagecontframe');
  return (await handle!.contentFrame())!;
}

/** Mail is decrypted on a click by default: the reader's first control is "Decrypt" (pressed with Enter). */
async function decryptByKeyboard(mail: Page) {
  const frame = await frameState(await messageFrame(mail), 'reader', 'encrypted');
  await focusInFrame(mail, frame, 1);
  await mail.keyboard.press('Enter');
  return frameState(await messageFrame(mail), 'reader', 'decrypted');
}



beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), site.start(), list.start()]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-firefox-'));
  browser = await launchFirefoxWithExtension(extDir!, profile, UUID);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

// Per test: room for an extension page the driver loses and loads again (up to 90 s).
describe('the extension in Firefox', { timeout: 240_000 }, () => {
  it('options: indicator, a new key, a site allowed through the optional-permission request', async () => {
    // With no key the options page is the guided first run: key, safety copies, word, site.
    const page = await openPage('options', '[data-test=guide][data-test-state=key]');
    await page.locator('[data-test=key-name]').fill('Carol');
    await page.locator('[data-test=key-address]').fill(CAROL);
    await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: 60_000 });
    await page.click('[data-test=guide-next]');
    await page.locator('[data-test=indicator-word]').fill('heron');
    await page.click('[data-test=indicator-save]');
    await page.waitForSelector('[data-test=security-indicator][data-test-state=chosen]');
    await page.locator('[data-test=site-input]').fill('http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.waitForSelector('[data-test=guide][data-test-state=list]');
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.waitForSelector('[data-test=key][data-test-state=present]');
    expect((await page.$eval('[data-test=key-fingerprint]', (e) => e.textContent))!.replace(/ /g, '')).toMatch(/^[0-9A-F]{40}$/);
    await page.waitForSelector('[data-test=site][data-site="http://127.0.0.1"]');
    await page.close();
  });

  it('adds and pins the list, subscribes, and confirms with one click in the webmail reader frame', async () => {
    const info = (await (await fetch(`${list.base}/v1/lists/${LIST}`)).json()) as { listKey: { fingerprint: string } };
    const page = await openPage('options', '[data-test=options][data-test-state=ready]');
    await page.locator('[data-test=list-address]').fill(LIST);
    await page.locator('[data-test=list-server]').fill(list.base);
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector('[data-test=list-candidate][data-test-state=new]');
    expect((await page.$eval('[data-test=candidate-fingerprint]', (e) => e.textContent))!.replace(/ /g, '')).toBe(info.listKey.fingerprint);
    await page.click('[data-test=list-pin]');
    await page.waitForSelector(`[data-test=list-row][data-list="${LIST}"][data-test-state=pinned]`);
    await page.click('[data-test=subscribe]');
    await page.waitForSelector(`[data-test=list-row][data-list="${LIST}"][data-test-state=confirmation-sent]`);
    await page.screenshot({ path: artifact('firefox-options.png'), fullPage: true });

    site.messages = [await armoredOf(await list.mailTo(CAROL, 1))];
    const mail = await newPage();
    await mail.goto(site.allowedUrl);
    const frame = await decryptByKeyboard(mail);
    expect(await frame.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    // The reader's only control is "Confirm subscription".
    await focusInFrame(mail, frame, 1);
    await mail.keyboard.press('Enter');
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="confirmed"]', { timeout: 30_000 });
    await page.close();
    // The options page shows the membership the confirmation made.
    const again = await openPage('options', `[data-test=list-row][data-list="${LIST}"][data-test-state=member]`);
    await Promise.all([again.close(), mail.close()]);
  });

  it('a member\'s post shows decrypted and verified in the reader frame; the page reaches nothing', async () => {
    const marker = `FXMARKER-${Math.random().toString(36).slice(2)}`;
    const alice = list.alice;
    const { key: listKey } = await readPublicKey(((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json()) as { listKey: { armored: string } }).listKey.armored);
    const post = await composePost({ message: { subject: 'Firefox notes', from: { address: alice.address }, to: [{ address: LIST }], text: `Hello. ${marker}` }, senderKey: alice.privateKey, listKey });
    await send(list.server!.smtpPort, alice.address, LIST, post.pgpMime);
    site.messages = [await armoredOf(await list.mailTo(CAROL, 2))];
    const mail = await newPage();
    await mail.goto(site.allowedUrl);
    const frame = await decryptByKeyboard(mail);
    expect(await frame.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    await mail.screenshot({ path: artifact('firefox-reader.png'), fullPage: true });
    const probe = (await mail.evaluate((m) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe('', m), marker));
    expect(probe.frames).toBe(1);
    expect(['null', 'blocked']).toContain((probe.frameReads as string[])[0]);
    expect(probe.runtime).toBe('no-api');
    expect(probe.browserGlobal).toBe('undefined');
    expect(probe.fakeInsert).toBe('ignored');
    expect(probe.reachable).toBe('clean');
    await mail.close();

    const archive = await openPage('archive', '[data-test=archive]');
    await archive.waitForSelector('[data-test=archive-list] option');
    await archive.click('[data-test=archive-sign-in]');
    await archive.waitForSelector('[data-test=archive][data-test-state=signed-in]');
    const row = await archive.waitForSelector('[data-test=archive-message][data-test-state=decrypted] ::-p-text(Firefox notes)');
    await row!.click();
    await archive.waitForSelector('[data-test=archive-view][data-test-state=decrypted]');
    expect(await archive.$eval('[data-test=archive-view] [data-test=plaintext]', (e) => e.textContent)).toContain(marker);
    expect(await archive.$eval('[data-test=archive-view] [data-test=signature]', (e) => e.getAttribute('data-test-state'))).toBe('verified');
    await archive.screenshot({ path: artifact('firefox-archive.png'), fullPage: true });
    await archive.close();
  });

  it('the composer puts the armored post into the compose box; the list accepts it', async () => {
    const marker = `FXCOMPOSED-${Math.random().toString(36).slice(2)}`;
    const mail = await newPage();
    await mail.goto(site.allowedUrl);
    await (await mail.waitForSelector('[data-letterlock=compose-button]'))!.click();
    const frame = await frameState(mail, 'composer', 'ready');
    await focusInFrame(mail, frame, 2); // list, then subject
    await mail.keyboard.type('From Firefox');
    await mail.keyboard.press('Tab');
    await mail.keyboard.type(`Written in the composer. ${marker}`);
    await mail.screenshot({ path: artifact('firefox-composer.png') });
    const probe = (await mail.evaluate((m) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe('', m), marker));
    expect((probe.frameReads as string[]).length).toBeGreaterThan(0);
    for (const r of probe.frameReads as string[]) expect(['null', 'blocked']).toContain(r);
    expect(probe.reachable).toBe('clean');
    // Back to the subject, where Enter sends the form (the attachments' file chooser follows the message).
    await mail.keyboard.down('Shift');
    await mail.keyboard.press('Tab');
    await mail.keyboard.up('Shift');
    await mail.keyboard.press('Enter');
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), { timeout: 30_000 });
    const armored = await mail.$eval('#composebody', (e) => (e as HTMLTextAreaElement).value);
    expect(armored).not.toContain(marker);
    await mail.close();
    const had = list.sink.to(list.alice.address).length;
    await list.postFromWebmail(CAROL, armored);
    const alice = list.alice;
    const read = await readMail(await list.mailTo(alice.address, had + 1), { privateKey: await unlockPrivateKey(await parsePrivateKey(alice.privateArmored), alice.passphrase), senderKeys: [] });
    expect(read.message.subject).toBe('From Firefox');
    expect(read.message.text).toContain(marker);
  });

  it('a site the user did not allow gets no content script, and a framed reader tells it only its height', async () => {
    site.messages = [await armoredOf(await list.mailTo(CAROL, 2))];
    const mail = await newPage();
    await mail.goto(site.allowedUrl);
    const frame = await decryptByKeyboard(mail);
    const block = new URL((await frame.evaluate((f) => f.getAttribute('src')))!).hash.slice(1);
    const attack = await newPage();
    await attack.goto(site.attackUrl(BASE, block));
    await attack.waitForFunction(() => (window as unknown as { received: unknown[] }).received.length > 0, { timeout: 30_000 });
    const received = await attack.evaluate(() => (window as unknown as { received: unknown[] }).received);
    for (const m of received) expect(Object.keys(m as object).sort()).toEqual(['height', 'letterlock']);
    expect(await attack.$$eval('[data-letterlock]', (els) => els.length)).toBe(0); // no content script on this site
    await Promise.all([mail.close(), attack.close()]);
  });
});

// Issue 12, items 6 and 2, in Firefox: the driver cannot look inside extension
// frames placed in a page, so frames are driven by keyboard and checked by the
// state words the content script marks on them (test builds), by the heights
// they post, and by what reaches the test site.
describe('page isolation and reading in Firefox', { timeout: 240_000 }, () => {
  /** A post from Alice through the real list, as delivered to Carol. */
  async function throughList(message: { subject: string; text: string; html?: string; attachments?: { filename: string; contentType: string; content: Uint8Array }[] }): Promise<string> {
    const { key: listKey } = await readPublicKey(((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json()) as { listKey: { armored: string } }).listKey.armored);
    const post = await composePost({ message: { from: { address: list.alice.address }, to: [{ address: LIST }], ...message }, senderKey: list.alice.privateKey, listKey });
    const had = list.sink.to(CAROL).length;
    await send(list.server!.smtpPort, list.alice.address, LIST, post.pgpMime);
    return armoredOf(await list.mailTo(CAROL, had + 1));
  }

  async function mailWith(armored: string): Promise<Page> {
    site.messages = [armored];
    const mail = await newPage();
    await mail.goto(site.allowedUrl);
    return mail;
  }

  it('a copy of the reader frame the page makes gets no key: it stays small while the real one shows the message', async () => {
    const mail = await mailWith(await throughList({ subject: 'Copied', text: 'Line one.\nLine two.\nLine three.\nLine four.\nLine five.' }));
    const inner = await messageFrame(mail);
    await frameState(inner, 'reader', 'encrypted');
    await inner.evaluate(() => {
      const real = document.querySelector('iframe[data-letterlock="reader"]') as HTMLIFrameElement;
      const copy = document.createElement('iframe');
      copy.id = 'copy';
      copy.src = real.src;
      (window as unknown as { copyHeights: number[] }).copyHeights = [];
      addEventListener('message', (e) => {
        if (e.source === copy.contentWindow) (window as unknown as { copyHeights: number[] }).copyHeights.push((e.data as { height: number }).height);
      });
      copy.addEventListener('load', () => copy.contentWindow!.postMessage({ letterlock: 'frame-key', key: real.src.split('#')[1] }, '*'));
      document.body.append(copy);
    });
    const real = await decryptByKeyboard(mail);
    await inner.waitForFunction(() => (window as unknown as { copyHeights: number[] }).copyHeights.length > 0, { timeout: 30_000 });
    const realHeight = await real.evaluate((f) => f.getBoundingClientRect().height);
    const copyHeights = await inner.evaluate(() => (window as unknown as { copyHeights: number[] }).copyHeights);
    expect(Math.max(...copyHeights)).toBeLessThan(realHeight - 40);
    expect(await inner.$eval('#copy', (f) => f.getAttribute('data-test-state'))).toBeNull();
    for (const m of await inner.evaluate(() => (window as unknown as { received: unknown[] }).received)) expect(Object.keys(m as object).sort()).toEqual(['height', 'letterlock']);
    await mail.close();
  });

  it('a key press on a faded reader does not count; in plain sight it does', async () => {
    const mail = await mailWith(await throughList({ subject: 'Faded', text: 'Only when seen.' }));
    const inner = await messageFrame(mail);
    const frame = await frameState(inner, 'reader', 'encrypted');
    await frame.evaluate((f) => ((f as HTMLElement).style.opacity = '0.01'));
    await focusInFrame(mail, frame, 1);
    await mail.keyboard.press('Enter');
    await inner.waitForSelector('iframe[data-letterlock="reader"][data-test-step="refused"]', { timeout: 30_000 });
    expect(await frame.evaluate((f) => f.getAttribute('data-test-state'))).toBe('encrypted');
    await frame.evaluate((f) => ((f as HTMLElement).style.opacity = '1'));
    await focusInFrame(mail, frame, 1);
    await mail.keyboard.press('Enter');
    await frameState(inner, 'reader', 'decrypted');
    await mail.close();
  });

  it('decrypts at once only for a list set to decrypt automatically', async () => {
    const options = await openPage('options', '[data-test=options][data-test-state=ready]');
    const box = `[data-test=list-row][data-list="${LIST}"] [data-test=auto-decrypt]`;
    await options.waitForSelector(box, { timeout: 30_000 });
    await options.click(box);
    await options.waitForFunction((s) => (document.querySelector(s) as HTMLInputElement).checked, {}, box);
    const mail = await mailWith(await throughList({ subject: 'Auto', text: 'No click.' }));
    await frameState(await messageFrame(mail), 'reader', 'decrypted');
    await mail.close();
    await options.click(box);
    await options.waitForFunction((s) => !(document.querySelector(s) as HTMLInputElement).checked, {}, box);
    await options.close();
  });

  it('remote images stay out until "Load images", then come without the webmail\'s cookie or a referrer', async () => {
    site.hits = [];
    const mail = await mailWith(await throughList({ subject: 'Pictures', text: '', html: `<p><img src="${site.allowedUrl}img.png?from=firefox" alt="chart"></p>` }));
    const frame = await decryptByKeyboard(mail);
    expect(site.hits).toEqual([]);
    // One short line: the body frame fits it (it used to keep its first 300px, blank).
    const reader = await extensionFrameIn(mail, 'reader');
    const bodyHeight = () => reader.evaluate(() => document.querySelector('[data-test=html-body]')?.getBoundingClientRect().height ?? -1);
    await expect.poll(bodyHeight, { timeout: 30_000 }).toBeGreaterThan(0);
    await expect.poll(bodyHeight, { timeout: 30_000 }).toBeLessThan(150);
    await focusInFrame(mail, frame, 1); // "Load images" is the first control
    await mail.keyboard.press('Enter');
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="images-1"]', { timeout: 30_000 });
    expect(site.hits).toEqual([{ path: '/img.png?from=firefox', cookie: null, referer: null }]);
    await mail.close();
  });

  it('a received attachment opens in the extension\'s own page', async () => {
    const words = `FXATTACHED-${Math.random().toString(36).slice(2)}`;
    const mail = await mailWith(await throughList({ subject: 'File', text: 'See the file.', attachments: [{ filename: 'notes.txt', contentType: 'text/plain', content: new TextEncoder().encode(words) }] }));
    const frame = await decryptByKeyboard(mail);
    await focusInFrame(mail, frame, 1); // "Open or download" is the first control
    await mail.keyboard.press('Enter');
    // The background opened the tab (the frame says so); find it among the pages.
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="attachment-opened"]', { timeout: 30_000 });
    // tabs.create resolves before the tab has loaded; on a busy machine its page can be
    // listed as about:blank for a while, so a page still blank is asked where it is.
    const isAttachmentPage = async (p: Page): Promise<boolean> => {
      if (p.url().includes('/extension/pages/attachment/index.html')) return true;
      if (p.url() !== 'about:blank') return false;
      const href = await Promise.race([p.evaluate(() => location.href).catch(() => ''), new Promise<string>((r) => setTimeout(() => r(''), 2000))]);
      return href.includes('/extension/pages/attachment/index.html');
    };
    let tab: Page | undefined;
    let seen: string[] = [];
    for (const end = Date.now() + 60_000; !tab && Date.now() < end;) {
      const pages = await browser.pages();
      seen = pages.map((p) => p.url());
      for (const p of pages) if (!tab && await isAttachmentPage(p)) tab = p;
      if (!tab) await new Promise((r) => setTimeout(r, 200));
    }
    if (!tab) throw new Error(`the attachment page did not open; pages: ${seen.join(', ')}`);
    await tab.waitForSelector('[data-test=attachment-page][data-test-state=ready]', { timeout: 30_000 });
    expect(await tab.$eval('[data-test=attachment-name]', (e) => e.textContent)).toBe('notes.txt');
    expect(await tab.$eval('[data-test=attachment-text]', (e) => e.textContent)).toBe(words);
    const probe = (await mail.evaluate((m) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe('', m), words));
    expect(probe.reachable).toBe('clean');
    await Promise.all([tab.close(), mail.close()]);
  });

  it('a page stuffed with encrypted blocks is held to the stash limit', async () => {
    const mail = await mailWith('');
    const inner = await messageFrame(mail);
    await inner.evaluate(() => {
      const line = 'A'.repeat(76);
      const block = `-----BEGIN PGP MESSAGE-----\n\n${Array.from({ length: 40_000 }, () => line).join('\n')}\n-----END PGP MESSAGE-----`;
      for (let i = 0; i < 3; i++) {
        const d = document.createElement('div');
        d.textContent = block;
        document.getElementById('messagebody')!.append(d);
      }
    });
    await inner.waitForSelector('[data-letterlock=note]', { timeout: 60_000 });
    expect(await inner.$$eval('iframe[data-letterlock=reader]', (f) => f.length)).toBe(2);
    await mail.close();
  });

  it('refuses a list server on plain http:// unless it is on this computer', async () => {
    const page = await openPage('options', '[data-test=options][data-test-state=ready]');
    await page.locator('[data-test=list-address]').fill('other@lists.example.org');
    await page.locator('[data-test=list-server]').fill('http://lists.example.org');
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector('[data-test=error] ::-p-text(must use https://)', { timeout: 30_000 });
    expect(await page.$$eval('[data-test=list-candidate]', (e) => e.length)).toBe(0);
    await page.close();
  });

  it('locked: the one unlock form is in "Your keys", and the key card\'s link leads the cursor to it', async () => {
    const page = await openPage('options', '[data-test=options][data-test-state=ready]');
    await page.click('[data-test=lock-now]');
    await page.waitForSelector('[data-test=key] [data-test=lock][data-test-state=locked]', { timeout: 30_000 });
    expect(await page.$$eval('[data-test=unlock-passphrase]', (e) => e.length)).toBe(1);
    await page.click('[data-test=key-card] [data-test=key-unlock-link]');
    await page.waitForFunction(() => document.activeElement?.getAttribute('data-test') === 'unlock-passphrase', { timeout: 30_000 });
    await page.keyboard.type(PASSPHRASE);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('[data-test=key-card] [data-test=key-lock-state]')?.textContent === 'Unlocked', { timeout: 60_000 });
    expect(await page.$$eval('[data-test=key-unlock-link]', (e) => e.length)).toBe(0);
    await page.close();
  });
});
