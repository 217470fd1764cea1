// Moderating in the browser (issue 12 item 4), in real headless Chromium with the
// built extension, against the real list server: the list's owner (their key
// imported into the extension) signs in on the held-posts page, sees a member's
// held posts decrypted on their own machine with the signature checked, approves
// one (the server delivers it to the members) and rejects the other (the server
// drops it). Screenshots in light and dark.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armoredOf, buildExtension, removeDir } from './extension-kit.ts';
import { MOD_LIST, ModeratedList } from './moderation-kit.ts';
import { shootChromium } from './screenshots.ts';

const OWNER = 'olga@example.org';
let extDir: string, profile: string, ctx: BrowserContext, extBase: string;
const list = new ModeratedList();

async function openPage(path: string, query = ''): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${extBase}extension/pages/${path}/index.html${query}`);
  return page;
}

/** One request on the extension's bus from one of its own pages (test set-up only). */
async function bus<T>(page: Page, type: string, payload: unknown): Promise<T> {
  const answer = await page.evaluate(`chrome.runtime.sendMessage(${JSON.stringify({ letterlock: 1, type, payload })})`) as { ok: boolean; value: T; error?: unknown };
  if (!answer.ok) throw new Error(`${type}: ${JSON.stringify(answer.error)}`);
  return answer.value;
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), list.start(OWNER)]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-chromium-mod-'));
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: false,
    args: ['--headless=new', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
  extBase = `chrome-extension://${new URL(sw.url()).host}/`;
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await list.stop();
  removeDir(extDir);
  removeDir(profile);
});

describe('moderating in Chromium', () => {
  const marker = `HELD-${Math.random().toString(36).slice(2)}`;
  let first = 0, second = 0;

  it('the owner\'s key and the list are set up; a member\'s two posts are held on the server', async () => {
    const popup = await openPage('popup');
    await popup.locator('[data-test=open-options]').waitFor();
    await bus(popup, 'key.import', { armored: list.owner.privateArmored, passphrase: list.owner.passphrase });
    const candidate = await bus<{ fingerprint: string }>(popup, 'list.lookup', { address: MOD_LIST, server: list.base });
    expect(candidate.fingerprint).toBe(await list.fingerprint());
    await bus(popup, 'list.pin', { address: MOD_LIST, fingerprint: candidate.fingerprint });
    await popup.reload();
    // The popup leads to the held posts.
    await popup.locator('[data-test=open-moderation]').waitFor({ timeout: 30_000 });
    await popup.close();
    first = await list.holdPost('Budget for the spring meeting', `Please approve the budget. ${marker}-one`);
    second = await list.holdPost('Buy cheap watches', `Spam spam. ${marker}-two`);
  }, 120_000);

  it('the held posts appear decrypted, their signatures verified', async () => {
    const page = await openPage('moderation', `?list=${encodeURIComponent(MOD_LIST)}`);
    await page.locator('[data-test=moderation-sign-in]').click();
    await page.locator('[data-test=moderation][data-test-state=signed-in]').waitFor({ timeout: 60_000 });
    const posts = page.locator('[data-test=held-post]');
    await expect.poll(() => posts.count(), { timeout: 30_000 }).toBe(2);
    const one = page.locator(`[data-test=held-post][data-id="${first}"]`);
    expect(await one.getAttribute('data-test-state')).toBe('decrypted');
    expect(await one.locator('[data-test=held-subject]').textContent()).toBe('Budget for the spring meeting');
    expect(await one.locator('[data-test=held-from]').textContent()).toContain(list.alice.address);
    expect(await one.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    expect(await one.locator('[data-test=held-view]').textContent()).toContain(`${marker}-one`);
    await shootChromium(page, 'moderation');
    await page.close();
  }, 120_000);

  it('approve: the post is delivered to the members and leaves the queue', async () => {
    const page = await openPage('moderation', `?list=${encodeURIComponent(MOD_LIST)}`);
    await page.locator('[data-test=moderation-sign-in]').click();
    await page.locator(`[data-test=held-post][data-id="${first}"][data-test-state=decrypted]`).waitFor({ timeout: 60_000 });
    const aliceBefore = list.sink.to(list.alice.address).length;
    await page.locator(`[data-test=held-post][data-id="${first}"] [data-test=held-approve]`).click();
    await page.locator('[data-test=moderation-status]').waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-test=moderation-status]').textContent()).toContain('Approved');
    await page.locator(`[data-test=held-post][data-id="${first}"]`).waitFor({ state: 'detached' });
    await list.waitHeld([second]);
    // The member's copy is a real one: it decrypts with her key and carries the post.
    await list.sink.waitFor(() => list.sink.to(list.alice.address).length > aliceBefore, 60_000, 'the approved copy to alice');
    const copy = list.sink.to(list.alice.address).at(-1)!.raw;
    expect(copy.toString('utf8')).not.toContain(marker);
    const out = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: await armoredOf(copy) }), decryptionKeys: list.alice.privateKey, format: 'utf8' });
    expect(String(out.data)).toContain('Budget for the spring meeting');

    // Reject: asked first, then the post is gone from the server.
    const other = page.locator(`[data-test=held-post][data-id="${second}"]`);
    await other.locator('[data-test=held-reject]').click();
    await other.locator('[data-test=held-reject-ask]').waitFor();
    await shootChromium(page, 'moderation-reject');
    await other.locator('[data-test=held-reject-confirm]').click();
    await other.waitFor({ state: 'detached', timeout: 60_000 });
    expect(await page.locator('[data-test=moderation-status]').textContent()).toContain('Rejected');
    await list.waitHeld([]);
    expect(await page.locator('[data-test=held-count]').getAttribute('data-count')).toBe('0');
    await page.close();
  }, 180_000);

  it('the options page links the list it moderates to its held posts', async () => {
    const page = await openPage('options');
    const link = page.locator(`[data-test=list-row][data-list="${MOD_LIST}"] [data-test=list-moderate]`);
    await link.waitFor({ timeout: 30_000 });
    expect(await link.getAttribute('href')).toBe(`../moderation/index.html?list=${encodeURIComponent(MOD_LIST)}`);
    await page.close();
  }, 60_000);
});
