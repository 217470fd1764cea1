// Moderating in the browser (issue 12 item 4), in real headless Firefox ESR
// (puppeteer-core over WebDriver BiDi) with the built extension, against the real
// list server: the list's owner sees a member's held posts decrypted on the
// held-posts page with the signature checked, approves one (delivered to the
// members) and rejects the other (gone from the server). Screenshots in light and dark.

import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armoredOf, buildExtension, launchFirefoxWithExtension, newFirefoxExtensionPage, removeDir } from './extension-kit.ts';
import { MOD_LIST, ModeratedList } from './moderation-kit.ts';
import { shootFirefox } from './screenshots.ts';

const OWNER = 'oskar@example.org';
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
let extDir: string, profile: string, browser: Browser;
const list = new ModeratedList();

async function openPage(path: string, ready: string, query = ''): Promise<Page> {
  return newFirefoxExtensionPage(browser, `${BASE}extension/pages/${path}/index.html${query}`, ready, { timeoutMs: 90_000, viewport: { width: 1280, height: 1000 } });
}

/** One request on the extension's bus from one of its own pages (test set-up only). */
async function bus<T>(page: Page, type: string, payload: unknown): Promise<T> {
  const answer = await page.evaluate(`browser.runtime.sendMessage(${JSON.stringify({ letterlock: 1, type, payload })})`) as { ok: boolean; value: T; error?: unknown };
  if (!answer.ok) throw new Error(`${type}: ${JSON.stringify(answer.error)}`);
  return answer.value;
}

async function attr(page: Page, selector: string, name: string): Promise<string | null> {
  return page.$eval(selector, (e, n) => e.getAttribute(n), name);
}

async function text(page: Page, selector: string): Promise<string> {
  return page.$eval(selector, (e) => e.textContent ?? '');
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), list.start(OWNER)]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-firefox-mod-'));
  browser = await launchFirefoxWithExtension(extDir!, profile, UUID);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await list.stop();
  removeDir(extDir);
  removeDir(profile);
});

describe('moderating in Firefox', () => {
  const marker = `HELD-${Math.random().toString(36).slice(2)}`;
  let first = 0, second = 0;

  it('the owner\'s key and the list are set up; a member\'s two posts are held on the server', async () => {
    const popup = await openPage('popup', '[data-test=open-options]');
    await bus(popup, 'key.import', { armored: list.owner.privateArmored, passphrase: list.owner.passphrase });
    const candidate = await bus<{ fingerprint: string }>(popup, 'list.lookup', { address: MOD_LIST, server: list.base });
    expect(candidate.fingerprint).toBe(await list.fingerprint());
    await bus(popup, 'list.pin', { address: MOD_LIST, fingerprint: candidate.fingerprint });
    await popup.close();
    const again = await openPage('popup', '[data-test=open-moderation]');
    await again.close();
    first = await list.holdPost('Budget for the spring meeting', `Please approve the budget. ${marker}-one`);
    second = await list.holdPost('Buy cheap watches', `Spam spam. ${marker}-two`);
  }, 120_000);

  it('the held posts appear decrypted, their signatures verified; approve delivers, reject removes', async () => {
    const page = await openPage('moderation', '[data-test=moderation-sign-in]', `?list=${encodeURIComponent(MOD_LIST)}`);
    await page.click('[data-test=moderation-sign-in]');
    await page.waitForSelector('[data-test=moderation][data-test-state=signed-in]', { timeout: 60_000 });
    const one = `[data-test=held-post][data-id="${first}"]`;
    const two = `[data-test=held-post][data-id="${second}"]`;
    await page.waitForSelector(`${one}[data-test-state=decrypted]`, { timeout: 30_000 });
    await page.waitForSelector(`${two}[data-test-state=decrypted]`, { timeout: 30_000 });
    expect(await text(page, `${one} [data-test=held-subject]`)).toBe('Budget for the spring meeting');
    expect(await text(page, `${one} [data-test=held-from]`)).toContain(list.alice.address);
    expect(await attr(page, `${one} [data-test=signature]`, 'data-test-state')).toBe('verified');
    expect(await text(page, `${one} [data-test=held-view]`)).toContain(`${marker}-one`);
    expect(await text(page, `${two} [data-test=held-view]`)).toContain(`${marker}-two`);
    await shootFirefox(page, 'moderation');

    const aliceBefore = list.sink.to(list.alice.address).length;
    await page.click(`${one} [data-test=held-approve]`);
    await page.waitForSelector('[data-test=moderation-status]', { timeout: 60_000 });
    expect(await text(page, '[data-test=moderation-status]')).toContain('Approved');
    await list.waitHeld([second]);
    await list.sink.waitFor(() => list.sink.to(list.alice.address).length > aliceBefore, 60_000, 'the approved copy to alice');
    const copy = list.sink.to(list.alice.address).at(-1)!.raw;
    expect(copy.toString('utf8')).not.toContain(marker);
    const out = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: await armoredOf(copy) }), decryptionKeys: list.alice.privateKey, format: 'utf8' });
    expect(String(out.data)).toContain('Budget for the spring meeting');

    await page.click(`${two} [data-test=held-reject]`);
    await page.waitForSelector(`${two} [data-test=held-reject-ask]`);
    await page.click(`${two} [data-test=held-reject-confirm]`);
    await page.waitForSelector('[data-test=held-count][data-count="0"]', { timeout: 60_000 });
    expect(await text(page, '[data-test=moderation-status]')).toContain('Rejected');
    await list.waitHeld([]);
    await page.close();
  }, 240_000);

  it('the options page links the list it moderates to its held posts', async () => {
    const page = await openPage('options', `[data-test=list-row][data-list="${MOD_LIST}"] [data-test=list-moderate]`);
    expect(await attr(page, `[data-test=list-row][data-list="${MOD_LIST}"] [data-test=list-moderate]`, 'href')).toBe(`../moderation/index.html?list=${encodeURIComponent(MOD_LIST)}`);
    await page.close();
  }, 90_000);
});
