// The built extension in real headless Chromium, against the real list server
// (in-process) and a loopback webmail-shaped page: create a key, add, subscribe
// and confirm a list in webmail, read a member's post decrypted and verified,
// write a post in the composer, browse the archive; the page's hostile script
// fails at every attempt; a stopped service worker comes back unlocked.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrivateKey, readMail, readPublicKey, composePost, unlockPrivateKey } from '../../shared/index.ts';
import { send } from '../integration/server/harness.ts';
import { armoredOf, artifact, buildExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir, Webmail, launchChromiumWithExtension, clickInReader, decryptInReader } from './extension-kit.ts';

const BOB = 'bob@example.org';
let extDir: string, profile: string, ctx: BrowserContext, extBase: string, extId: string;
const site = new Webmail();
const list = new ListServerUnderTest();

async function openPage(path: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${extBase}extension/pages/${path}/index.html`);
  return page;
}

function readerIn(page: Page, nth = 0): FrameLocator {
  return page.frameLocator('#messagecontframe').frameLocator('iframe[data-letterlock="reader"]').nth(nth);
}

/** Mail is decrypted on a click by default: wait for the button, click it, wait for the message. */
const decryptIn = (reader: FrameLocator): Promise<void> => decryptInReader(reader);

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), site.start(), list.start()]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-chromium-'));
  ({ ctx, extId, extBase } = await launchChromiumWithExtension(extDir!, profile));
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('the extension in Chromium', () => {
  it('options: security indicator, a new key (Argon2-protected), an allowed site', async () => {
    // With no key the options page is the guided first run: key, safety copies, word, site.
    const page = await openPage('options');
    await page.locator('[data-test=guide][data-test-state=key]').waitFor();
    await page.fill('[data-test=key-name]', 'Bob');
    await page.fill('[data-test=key-address]', BOB);
    await page.fill('[data-test=key-passphrase]', 'short');
    expect(await page.getAttribute('[data-test=passphrase-hint]', 'data-test-state')).toBe('weak');
    await page.fill('[data-test=key-passphrase]', PASSPHRASE);
    expect(await page.getAttribute('[data-test=passphrase-hint]', 'data-test-state')).toBe('strong');
    await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: 30_000 });
    await page.click('[data-test=guide-next]');
    await page.fill('[data-test=indicator-word]', 'otter');
    await page.click('[data-test=indicator-save]');
    await page.locator('[data-test=security-indicator][data-test-state=chosen]').waitFor();
    expect(await page.textContent('[data-test=security-word]')).toBe('otter');
    await page.fill('[data-test=site-input]', 'http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.locator('[data-test=guide][data-test-state=list]').waitFor();
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.locator('[data-test=key][data-test-state=present]').waitFor({ timeout: 30_000 });
    expect((await page.textContent('[data-test=key-fingerprint]'))!.replace(/ /g, '')).toMatch(/^[0-9A-F]{40}$/);
    await page.locator('[data-test=lock][data-test-state=unlocked]').first().waitFor();
    await page.locator('[data-test=site][data-site="http://127.0.0.1"]').waitFor();
    await page.close();

    const popup = await openPage('popup');
    await popup.locator('[data-test=lock][data-test-state=unlocked]').waitFor();
    expect(await popup.textContent('[data-test=security-word]')).toBe('otter');
    await popup.close();
  });

  it('adds the list (fingerprint shown, then pinned), subscribes, and confirms with one click in webmail', async () => {
    const info = (await (await fetch(`${list.base}/v1/lists/${LIST}`)).json()) as { listKey: { fingerprint: string } };
    const page = await openPage('options');
    await page.fill('[data-test=list-address]', LIST);
    await page.fill('[data-test=list-server]', list.base);
    await page.click('[data-test=list-lookup]');
    await page.locator('[data-test=list-candidate][data-test-state=new]').waitFor();
    expect((await page.textContent('[data-test=candidate-fingerprint]'))!.replace(/ /g, '')).toBe(info.listKey.fingerprint);
    await page.click('[data-test=list-pin]');
    const row = page.locator(`[data-test=list-row][data-list="${LIST}"]`);
    await row.and(page.locator('[data-test-state=pinned]')).waitFor();
    await page.selectOption('[data-test=delivery]', 'inline');
    await page.click('[data-test=subscribe]');
    await row.and(page.locator('[data-test-state=confirmation-sent]')).waitFor();
    await page.screenshot({ path: artifact('chromium-options.png'), fullPage: true });

    site.messages = [`Confirmation from the list:\n\n${await armoredOf(await list.mailTo(BOB, 1))}`];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    const reader = readerIn(mail);
    await decryptIn(reader);
    expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    await clickInReader(reader, '[data-test=confirm-subscription]', reader.locator('[data-test=confirm][data-test-state=confirmed]'));
    await page.reload();
    await row.and(page.locator('[data-test-state=member]')).waitFor();
    await Promise.all([page.close(), mail.close()]);
  });

  let alicePostMarker = '';
  it('shows a member\'s post decrypted in the reader frame, signature verified by its fingerprint; the page reaches nothing', async () => {
    alicePostMarker = `MARKER-${Math.random().toString(36).slice(2)}`;
    const alice = list.alice;
    const { key: listKey } = await readPublicKey((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json() as { listKey: { armored: string } }).listKey.armored);
    const post = await composePost({ message: { subject: 'Meeting notes', from: { address: alice.address, name: 'Alice' }, to: [{ address: LIST }], text: `Hello list. ${alicePostMarker}` }, senderKey: alice.privateKey, listKey });
    await send(list.server!.smtpPort, alice.address, LIST, post.pgpMime);
    const armored = await armoredOf(await list.mailTo(BOB, 2));
    site.messages = [];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    // The post appears after the page loaded, the way webmail fills its preview.
    await mail.frameLocator('#messagecontframe').locator('#messagebody').waitFor({ state: 'attached' });
    await mail.frames()[1]!.evaluate((text) => {
      const pre = document.createElement('div');
      pre.className = 'pre';
      for (const line of text.split('\n')) {
        pre.append(document.createTextNode(line), document.createElement('br'));
      }
      document.getElementById('messagebody')!.append(pre);
    }, `> earlier quote\n${armored}`);
    const reader = readerIn(mail);
    await decryptIn(reader);
    expect(await reader.locator('[data-test=plaintext]').textContent()).toContain(alicePostMarker);
    expect(await reader.locator('[data-test=subject]').textContent()).toBe('Meeting notes');
    expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    expect((await reader.locator('[data-test=signer-fingerprint]').textContent())!.replace(/ /g, '')).toBe(alice.publicKey.getFingerprint().toUpperCase());
    expect(await reader.locator('[data-test=security-word]').textContent()).toBe('otter');
    await mail.screenshot({ path: artifact('chromium-reader.png'), fullPage: true });

    const probe = (await mail.evaluate(([id, marker]) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<unknown> } }).hostile.probe(id!, marker!), [extId, alicePostMarker])) as Record<string, unknown>;
    expect(probe.frames).toBe(1); // found through the same-origin message frame
    expect(['null', 'blocked']).toContain((probe.frameReads as string[])[0]);
    const inner = (await mail.frames()[1]!.evaluate(`(() => {
      const f = document.querySelector('iframe[data-letterlock="reader"]');
      let read; try { read = f.contentDocument ? 'read' : 'null'; } catch (e) { read = 'blocked'; }
      let win; try { win = f.contentWindow.document ? 'read' : 'null'; } catch (e) { win = 'blocked'; }
      return { read, win, html: document.documentElement.outerHTML };
    })()`)) as { read: string; win: string; html: string };
    expect(inner.read).toBe('null');
    expect(inner.win).toBe('blocked');
    expect(inner.html).not.toContain(alicePostMarker);
    expect(probe.runtime).toBe('no-api');
    expect(probe.fakeInsert).toBe('ignored');
    expect(probe.reachable).toBe('clean');
    await mail.close();
  });

  it('writes a post in the composer: armored text lands in the compose box, the list accepts it, the archive shows it decrypted', async () => {
    const marker = `COMPOSED-${Math.random().toString(36).slice(2)}`;
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    // A click the page makes itself opens nothing (it could take a reply the user prepared
    // in the archive viewer). Counted, it opens a composer within one message to the
    // background (tens of ms); the test watches for 3 s, so a slow machine cannot make
    // this fail, only (at worst) miss a regression.
    await mail.evaluate(() => (document.querySelector('[data-letterlock=compose-button]') as HTMLButtonElement).click());
    const opened = await mail.waitForSelector('iframe[data-letterlock="composer"]', { state: 'attached', timeout: 3000 }).then(() => true, () => false);
    expect(opened).toBe(false);
    await mail.click('[data-letterlock=compose-button]');
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await composer.locator('[data-test=composer][data-test-state=ready]').waitFor();
    expect(await mail.locator('iframe[data-letterlock="composer"]').count()).toBe(1);
    expect(await composer.locator('[data-test=security-word]').textContent()).toBe('otter');
    await composer.locator('[data-test=composer-subject]').fill('Reply from Bob');
    await composer.locator('[data-test=composer-text]').fill(`My answer. ${marker}`);
    await mail.screenshot({ path: artifact('chromium-composer.png'), fullPage: true });
    const probe = (await mail.evaluate(([id, m]) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe(id!, m!), [extId, marker]));
    expect(probe.frames).toBeGreaterThan(0);
    expect((probe.frameReads as string[]).length).toBeGreaterThan(0);
    for (const r of probe.frameReads as string[]) expect(['null', 'blocked']).toContain(r);
    expect(probe.reachable).toBe('clean');
    await composer.locator('[data-test=composer-send]').click();
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'));
    const armored = await mail.inputValue('#composebody');
    expect(armored.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
    expect(armored).not.toContain(marker);
    expect((await mail.evaluate(([id, m]) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe(id!, m!), [extId, marker])).reachable).toBe('clean');
    await mail.close();

    const aliceHad = list.sink.to(list.alice.address).length;
    await list.postFromWebmail(BOB, armored);
    const copy = await list.mailTo(list.alice.address, aliceHad + 1);
    const alice = list.alice;
    const read = await readMail(copy, { privateKey: await unlockPrivateKey(await parsePrivateKey(alice.privateArmored), alice.passphrase), senderKeys: [] });
    expect(read.message.subject).toBe('Reply from Bob');
    expect(read.message.text).toContain(marker);

    const archive = await openPage('archive');
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive][data-test-state=signed-in]').waitFor();
    const row = archive.locator('[data-test=archive-message][data-test-state=decrypted]', { hasText: 'Reply from Bob' });
    await row.waitFor();
    await archive.fill('[data-test=archive-search]', 'meeting');
    await archive.locator('[data-test=archive-search-status][data-test-state=done]').waitFor({ timeout: 60_000 });
    await archive.locator('[data-test=archive-result]', { hasText: 'Meeting notes' }).waitFor();
    expect(await archive.locator('[data-test=archive-result]', { hasText: 'Reply from Bob' }).count()).toBe(0);
    await archive.fill('[data-test=archive-search]', '');
    await row.locator('[data-test=archive-open]').click();
    await archive.locator('[data-test=archive-view][data-test-state=decrypted]').waitFor();
    expect(await archive.locator('[data-test=archive-view] [data-test=plaintext]').textContent()).toContain(marker);
    expect(await archive.locator('[data-test=archive-view] [data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    await archive.screenshot({ path: artifact('chromium-archive.png'), fullPage: true });
    await archive.close();
  });

  it('a site the user did not allow: no content script, and framed extension pages give it nothing', async () => {
    site.messages = [`${await armoredOf(await list.mailTo(BOB, 2))}`];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await decryptIn(readerIn(mail));
    // The frame's URL the attacker copied out of the allowed page: the per-session
    // (use_dynamic_url) address and the block id, but never the frame key.
    const src = await mail.frames()[1]!.getAttribute('iframe[data-letterlock="reader"]', 'src');
    const dynamicBase = `${new URL(src!).origin}/`;
    expect(dynamicBase).not.toBe(extBase);
    const block = new URL(src!).hash.slice(1);
    const attack = await ctx.newPage();
    await attack.goto(site.attackUrl(dynamicBase, block));
    const stolen = attack.frameLocator('#steal-reader');
    // Whether or not Chromium lets this site load it, it gets no key: it waits, shows nothing.
    await attack.waitForLoadState('load');
    const states = await stolen.locator('[data-test=reader]').evaluateAll((els) => els.map((e) => e.getAttribute('data-test-state')));
    expect(states.every((st) => st === 'waiting')).toBe(true);
    expect(await stolen.locator('[data-test=plaintext]').count()).toBe(0);
    // The extension's fixed URL is not web-accessible at all: no page can probe it.
    expect(await attack.evaluate(async (u) => fetch(u).then(() => 'loaded', () => 'refused'), `${extBase}extension/pages/reader/index.html`)).toBe('refused');
    // The options page is not web-accessible: the browser refuses to frame it.
    const optionsFrame = attack.frames().find((f) => f.name() === '' && f.parentFrame() && f.url().includes('options'));
    expect(await (optionsFrame ? optionsFrame.locator('[data-test=options]').count() : Promise.resolve(0))).toBe(0);
    expect(await attack.locator('[data-letterlock]').count()).toBe(0); // no content script on this site
    // All the framed reader told the page is its height.
    for (const m of (await attack.evaluate('window.received')) as unknown[]) expect(Object.keys(m as object).sort()).toEqual(['height', 'letterlock']);
    await Promise.all([mail.close(), attack.close()]);
  });

  it('a stopped and restarted service worker keeps the unlocked state until the timeout and keeps working', async () => {
    const options = await openPage('options');
    await options.locator('[data-test=lock][data-test-state=unlocked]').first().waitFor();
    const before = await options.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'state.get', payload: {} })`) as { value: { lockAt: number } };
    // Stop the worker (as the browser does when it is idle); its memory is gone.
    const cdp = await ctx.newCDPSession(options);
    const swTarget = async () => ((await cdp.send('Target.getTargets')).targetInfos).find((t) => t.type === 'service_worker' && t.url.startsWith(extBase));
    const firstId = (await swTarget())!.targetId;
    await cdp.send('Target.closeTarget', { targetId: firstId });
    await expect.poll(async () => (await swTarget()) === undefined, { timeout: 30_000 }).toBe(true);
    const after = await options.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'state.get', payload: {} })`) as { value: { unlocked: boolean; lockAt: number } };
    expect(after.value.unlocked).toBe(true);
    expect(after.value.lockAt).toBe(before.value.lockAt);
    expect(await swTarget()).toBeDefined(); // a new worker answered, from session storage
    site.messages = [await armoredOf(await list.mailTo(BOB, 2))];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await decryptIn(readerIn(mail));
    // Lock now: a new reader says so in words.
    await options.reload();
    await options.click('[data-test=lock-now]');
    await options.locator('[data-test=lock][data-test-state=locked]').first().waitFor();
    // Locked: the one unlock form is in "Your keys", and the key card's link leads the cursor to it.
    expect(await options.locator('[data-test=key] [data-test=lock] [data-test=unlock-passphrase]').count()).toBe(1);
    expect(await options.locator('[data-test=unlock-passphrase]').count()).toBe(1);
    await options.click('[data-test=key-card] [data-test=key-unlock-link]');
    expect(await options.evaluate(() => document.activeElement?.getAttribute('data-test'))).toBe('unlock-passphrase');
    await mail.reload();
    const reader = readerIn(mail);
    await reader.locator('[data-test=decrypt]').click();
    await reader.locator('[data-test=reader][data-test-state=error]').waitFor();
    expect(await reader.locator('[data-test=reader]').getAttribute('data-test-error')).toBe('LOCKED');
    await Promise.all([mail.close(), options.close()]);
    await cdp.detach().catch(() => {});
  });
});

// Issue 12, items 6 and 2: what a hostile page on an allowed site tries, and reading.
describe('page isolation and reading in Chromium', () => {
  let bobKey: Awaited<ReturnType<typeof readPublicKey>>['key'];

  /** A post from Alice encrypted to Bob (as the list delivers it), shown in the webmail page. */
  async function showPost(message: { subject: string; text: string; html?: string; attachments?: { filename: string; contentType: string; content: Uint8Array }[] }): Promise<Page> {
    const post = await composePost({ message: { from: { address: list.alice.address, name: 'Alice' }, to: [{ address: LIST }], ...message }, senderKey: list.alice.privateKey, listKey: bobKey });
    site.messages = [post.armored];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    return mail;
  }

  const received = (mail: Page) => mail.frames()[1]!.evaluate('window.received') as Promise<unknown[]>;

  beforeAll(async () => {
    const options = await openPage('options');
    await options.locator('[data-test=lock]').first().waitFor();
    if ((await options.locator('[data-test=lock][data-test-state=locked]').count()) > 0) {
      await options.fill('[data-test=unlock-passphrase]', PASSPHRASE);
      await options.click('[data-test=unlock]');
      await options.locator('[data-test=lock][data-test-state=unlocked]').first().waitFor({ timeout: 30_000 });
    }
    const state = (await options.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'state.get', payload: {} })`)) as { value: { key: { publicKey: string } } };
    bobKey = (await readPublicKey(state.value.key.publicKey)).key;
    await options.close();
  }, 60_000);

  it('frame keys: a copy of the reader frame the page makes (same URL, same tab) gets nothing; frames post only their height', async () => {
    const marker = `COPY-${Math.random().toString(36).slice(2)}`;
    const mail = await showPost({ subject: 'Copied', text: `Do not show twice. ${marker}` });
    const inner = mail.frames()[1]!;
    await readerIn(mail).locator('[data-test=reader][data-test-state=encrypted]').waitFor({ timeout: 30_000 });
    // The page copies the frame (block id and all) and posts look-alike keys to the copy.
    await inner.evaluate(() => {
      const real = document.querySelector('iframe[data-letterlock="reader"]') as HTMLIFrameElement;
      const copy = document.createElement('iframe');
      copy.id = 'copy';
      copy.src = real.src;
      copy.style.cssText = 'width:600px;height:300px';
      copy.addEventListener('load', () => {
        for (const key of ['guess', real.src.split('#')[1]!, '0'.repeat(32)]) copy.contentWindow!.postMessage({ letterlock: 'frame-key', key }, '*');
      });
      document.body.append(copy);
    });
    const copy = mail.frameLocator('#messagecontframe').frameLocator('#copy');
    await copy.locator('[data-test=reader][data-test-state=waiting]').waitFor();
    await decryptIn(readerIn(mail));
    expect(await readerIn(mail).locator('[data-test=plaintext]').textContent()).toContain(marker);
    // The real frame has used the key; the copy still has nothing.
    expect(await copy.locator('[data-test=reader]').getAttribute('data-test-state')).toBe('waiting');
    expect(await copy.locator('[data-test=plaintext]').count()).toBe(0);
    const all = await received(mail);
    expect(all.length).toBeGreaterThan(0);
    for (const m of all) expect(m).toEqual({ letterlock: 'frame-height', height: expect.any(Number) });
    expect(JSON.stringify(await mail.evaluate('window.received ?? []'))).not.toContain('decrypted');
    await mail.close();
  });

  it('a click on a faded reader, or one under an overlay that lets clicks through, does not count', async () => {
    const mail = await showPost({ subject: 'Clickjack', text: 'Only for a real click.' });
    const inner = mail.frames()[1]!;
    const reader = readerIn(mail);
    await reader.locator('[data-test=reader][data-test-state=encrypted]').waitFor({ timeout: 30_000 });
    // 1% opacity: the user cannot see what they click.
    await inner.evaluate(() => ((document.querySelector('iframe[data-letterlock="reader"]') as HTMLElement).style.opacity = '0.01'));
    await reader.locator('[data-test=decrypt]').click();
    await reader.locator('[data-test=reader][data-test-refusals="1"]').waitFor();
    expect(await reader.locator('[data-test=reader]').getAttribute('data-test-state')).toBe('encrypted');
    expect(await reader.locator('[data-test=error]').textContent()).toContain('covers or hides');
    // Opaque again, but under the page's own look-alike box that lets the click through.
    await inner.evaluate(() => {
      const f = document.querySelector('iframe[data-letterlock="reader"]') as HTMLElement;
      f.style.opacity = '1';
      const r = f.getBoundingClientRect();
      const cover = document.createElement('div');
      cover.id = 'cover';
      cover.textContent = 'Signature verified. Send your dues to IBAN XX00 0000.';
      cover.style.cssText = `position:absolute;left:${r.left + scrollX}px;top:${r.top + scrollY}px;width:${r.width}px;height:${r.height}px;background:#fff;pointer-events:none;z-index:10`;
      document.body.append(cover);
    });
    await mail.evaluate(() => document.getElementById('messagecontframe')!.scrollIntoView());
    await reader.locator('[data-test=decrypt]').click();
    await reader.locator('[data-test=reader][data-test-refusals="2"]').waitFor();
    expect(await reader.locator('[data-test=reader]').getAttribute('data-test-state')).toBe('encrypted');
    // In plain sight, the same click counts.
    await inner.evaluate(() => document.getElementById('cover')!.remove());
    await reader.locator('[data-test=decrypt]').click();
    await reader.locator('[data-test=reader][data-test-state=decrypted]').waitFor({ timeout: 30_000 });
    await mail.close();
  });

  it('decrypts at once only for a list the user set to decrypt automatically', async () => {
    const options = await openPage('options');
    const box = options.locator(`[data-test=list-row][data-list="${LIST}"] [data-test=auto-decrypt]`);
    // The box follows the stored setting once the background answers.
    await box.click();
    await expect.poll(async () => box.isChecked()).toBe(true);
    const mail = await showPost({ subject: 'Auto', text: 'No click needed.' });
    await readerIn(mail).locator('[data-test=reader][data-test-state=decrypted]').waitFor({ timeout: 30_000 });
    await mail.close();
    await box.click();
    await expect.poll(async () => box.isChecked()).toBe(false);
    await options.reload();
    await options.locator(`[data-test=list-row][data-list="${LIST}"]`).waitFor();
    expect(await options.locator(`[data-test=list-row][data-list="${LIST}"] [data-test=auto-decrypt]`).isChecked()).toBe(false);
    const again = await showPost({ subject: 'Manual', text: 'Click again.' });
    await readerIn(again).locator('[data-test=reader][data-test-state=encrypted]').waitFor({ timeout: 30_000 });
    await Promise.all([again.close(), options.close()]);
  });

  it('HTML mail: remote images stay out (sanitizer and CSP) until "Load images"; a link opens only after showing its real target', async () => {
    site.hits = [];
    const img = `${site.allowedUrl}img.png?from=mail`;
    const landing = `${site.allowedUrl}landing?from=link`;
    const mail = await showPost({ subject: 'Pictures', text: '', html: `<p>Look: <img src="${img}" alt="chart"></p><p><a href="${landing}">our site</a></p>` });
    const reader = readerIn(mail);
    await decryptIn(reader);
    const body = reader.frameLocator('[data-test=html-body]');
    await body.locator('text=our site').waitFor();
    // Two short lines: the body frame fits them (it used to keep its first 300px, blank).
    const bodyHeight = () => reader.locator('[data-test=html-body]').evaluate((f) => f.getBoundingClientRect().height);
    await expect.poll(bodyHeight, { timeout: 30_000 }).toBeLessThan(150);
    expect(await body.locator('img').count()).toBe(0);
    expect(await body.locator('body').textContent()).toContain('[image: chart]');
    // The CSP itself refuses a remote image in the reader, whatever the sanitizer does.
    const csp = await reader.locator('body').evaluate((b, src) => new Promise<string>((resolve) => {
      const i = document.createElement('img');
      i.onload = () => resolve('loaded');
      i.onerror = () => resolve('blocked');
      i.src = src;
      b.append(i);
    }), `${site.allowedUrl}img.png?from=csp`);
    expect(csp).toBe('blocked');
    expect(site.hits).toEqual([]);
    await reader.locator('[data-test=load-images]').click();
    await body.locator('img[alt=chart]').waitFor();
    expect(await body.locator('img[alt=chart]').getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    // Reloaded with the images, it fits again, and the reader frame follows its content.
    await expect.poll(bodyHeight, { timeout: 30_000 }).toBeLessThan(200);
    const gap = async () => {
      const outer = await mail.frameLocator('#messagecontframe').locator('iframe[data-letterlock="reader"]').first().evaluate((f) => f.getBoundingClientRect().height);
      const inner = await reader.locator('html').evaluate((e) => e.getBoundingClientRect().height);
      return Math.abs(outer - inner);
    };
    await expect.poll(gap, { timeout: 30_000 }).toBeLessThan(12);
    expect(site.hits).toEqual([{ path: '/img.png?from=mail', cookie: null, referer: null }]); // the webmail's cookie stays home
    // The link: the real target first, then a new tab.
    await body.locator('text=our site').click();
    expect(await reader.locator('[data-test=link-target]').textContent()).toBe(landing);
    const [tab] = await Promise.all([ctx.waitForEvent('page'), reader.locator('[data-test=link-open]').click()]);
    await tab.waitForURL(landing);
    await tab.locator('#landing').waitFor();
    expect(site.hits.at(-1)).toMatchObject({ path: '/landing?from=link', referer: null });
    await Promise.all([tab.close(), mail.close()]);
  });

  it('a received attachment opens in the extension\'s own page, never in the web page', async () => {
    const words = `ATTACHED-${Math.random().toString(36).slice(2)}`;
    const mail = await showPost({ subject: 'With a file', text: 'See the file.', attachments: [{ filename: 'notes.txt', contentType: 'text/plain', content: new TextEncoder().encode(words) }] });
    const reader = readerIn(mail);
    await decryptIn(reader);
    const [tab] = await Promise.all([ctx.waitForEvent('page'), reader.locator('[data-test=attachment-open]').click()]);
    await tab.locator('[data-test=attachment-page][data-test-state=ready]').waitFor({ timeout: 30_000 });
    expect(tab.url().startsWith(`${extBase}extension/pages/attachment/index.html`)).toBe(true);
    expect(await tab.textContent('[data-test=attachment-name]')).toBe('notes.txt');
    expect(await tab.textContent('[data-test=attachment-text]')).toBe(words);
    expect(await tab.getAttribute('[data-test=attachment-download]', 'download')).toBe('notes.txt');
    const probe = (await mail.evaluate(([id, m]) => (window as unknown as { hostile: { probe(a: string, b: string): Promise<Record<string, unknown>> } }).hostile.probe(id!, m!), [extId, words]));
    expect(probe.reachable).toBe('clean');
    // Single use: the page reloaded (or another tab) gets nothing.
    await tab.reload();
    await tab.locator('[data-test=attachment-page][data-test-state=error]').waitFor();
    await Promise.all([tab.close(), mail.close()]);
  });

  it('a page stuffed with encrypted blocks is held to the stash limit (8 MB per tab)', async () => {
    site.messages = [];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await mail.frames()[1]!.evaluate(() => {
      const line = 'A'.repeat(76);
      const block = `-----BEGIN PGP MESSAGE-----\n\n${Array.from({ length: 40_000 }, () => line).join('\n')}\n-----END PGP MESSAGE-----`;
      for (let i = 0; i < 3; i++) {
        const d = document.createElement('div');
        d.className = 'pre';
        d.textContent = block; // about 3 MB each
        document.getElementById('messagebody')!.append(d);
      }
    });
    const inner = mail.frames()[1]!;
    await inner.waitForSelector('[data-letterlock=note]', { timeout: 60_000 });
    expect(await inner.locator('iframe[data-letterlock=reader]').count()).toBe(2);
    expect(await inner.textContent('[data-letterlock=note]')).toContain('too many encrypted messages');
    await mail.close();
  });

  it('refuses a list server on plain http:// unless it is on this computer', async () => {
    const page = await openPage('options');
    await page.fill('[data-test=list-address]', 'other@lists.example.org');
    await page.fill('[data-test=list-server]', 'http://lists.example.org');
    await page.click('[data-test=list-lookup]');
    await page.locator('[data-test=error]', { hasText: 'must use https://' }).first().waitFor();
    expect(await page.locator('[data-test=list-candidate]').count()).toBe(0);
    await page.close();
  });
});
