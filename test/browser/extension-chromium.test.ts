// The built extension in real headless Chromium, against the real list server
// (in-process) and a loopback webmail-shaped page: create a key, add, subscribe
// and confirm a list in webmail, read a member's post decrypted and verified,
// write a post in the composer, browse the archive; the page's hostile script
// fails at every attempt; a stopped service worker comes back unlocked.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrivateKey, readMail, readPublicKey, composePost, unlockPrivateKey } from '../../shared/index.ts';
import { send } from '../integration/server/harness.ts';
import { armoredOf, artifact, buildExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir, Webmail } from './extension-kit.ts';

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

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), site.start(), list.start()]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-chromium-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: false,
    args: ['--headless=new', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
  extId = new URL(sw.url()).host;
  extBase = `chrome-extension://${extId}/`;
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
    await reader.locator('[data-test=reader][data-test-state=decrypted]').waitFor();
    expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    await reader.locator('[data-test=confirm-subscription]').click();
    await reader.locator('[data-test=confirm][data-test-state=confirmed]').waitFor();
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
    await reader.locator('[data-test=reader][data-test-state=decrypted]').waitFor();
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
    await mail.click('[data-letterlock=compose-button]');
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await composer.locator('[data-test=composer][data-test-state=ready]').waitFor();
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
    // What the webmail would send: a text/plain mail with the armored block as its body.
    const raw = `From: <${BOB}>\r\nTo: <${LIST}>\r\nSubject: ...\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored.replace(/\n/g, '\r\n')}`;
    await send(list.server!.smtpPort, BOB, LIST, raw);
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
    await archive.fill('[data-test=archive-filter]', 'meeting');
    await archive.locator('[data-test=archive-message]', { hasText: 'Meeting notes' }).waitFor();
    expect(await archive.locator('[data-test=archive-message]', { hasText: 'Reply from Bob' }).count()).toBe(0);
    await archive.fill('[data-test=archive-filter]', '');
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
    await readerIn(mail).locator('[data-test=reader][data-test-state=decrypted]').waitFor();
    // A block id the attacker copied out of the allowed page.
    const src = await mail.frames()[1]!.getAttribute('iframe[data-letterlock="reader"]', 'src');
    const block = new URL(src!).hash.slice(1);
    const attack = await ctx.newPage();
    await attack.goto(site.attackUrl(extBase, block));
    const stolen = attack.frameLocator('#steal-reader');
    await stolen.locator('[data-test=reader][data-test-state=error]').waitFor();
    expect(await stolen.locator('[data-test=reader]').getAttribute('data-test-error')).toBe('FORBIDDEN');
    // The options page is not web-accessible: the browser refuses to frame it.
    const optionsFrame = attack.frames().find((f) => f.name() === '' && f.parentFrame() && f.url().includes('options'));
    expect(await (optionsFrame ? optionsFrame.locator('[data-test=options]').count() : Promise.resolve(0))).toBe(0);
    expect(await attack.locator('[data-letterlock]').count()).toBe(0); // no content script on this site
    // All the framed reader told the page is that it failed.
    expect(await attack.evaluate('JSON.stringify(window.received)')).toBe(JSON.stringify([{ letterlock: 'frame-state', state: 'loading', signature: '', step: '' }, { letterlock: 'frame-state', state: 'error', signature: '', step: '' }]));
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
    await expect.poll(async () => (await swTarget()) === undefined, { timeout: 10_000 }).toBe(true);
    const after = await options.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'state.get', payload: {} })`) as { value: { unlocked: boolean; lockAt: number } };
    expect(after.value.unlocked).toBe(true);
    expect(after.value.lockAt).toBe(before.value.lockAt);
    expect(await swTarget()).toBeDefined(); // a new worker answered, from session storage
    site.messages = [await armoredOf(await list.mailTo(BOB, 2))];
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await readerIn(mail).locator('[data-test=reader][data-test-state=decrypted]').waitFor();
    // Lock now: a new reader says so in words.
    await options.reload();
    await options.click('[data-test=lock-now]');
    await options.locator('[data-test=lock][data-test-state=locked]').first().waitFor();
    await mail.reload();
    const reader = readerIn(mail);
    await reader.locator('[data-test=reader][data-test-state=error]').waitFor();
    expect(await reader.locator('[data-test=reader]').getAttribute('data-test-error')).toBe('LOCKED');
    await Promise.all([mail.close(), options.close()]);
    await cdp.detach().catch(() => {});
  });
});
