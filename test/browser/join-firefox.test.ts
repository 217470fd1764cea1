// Following a join link in real headless Firefox ESR with the built extension,
// against the real list server: the list's join page, the toolbar popup on it
// offering "Join <list>", and the join it starts (a new user's first run with the
// list filled in, to the list's confirmation mail). The toolbar click is the
// browser action's own click handling run in the browser window (join-kit.ts),
// so the popup gets the activeTab grant; this build holds no host access at all,
// and the popup opened without a click (action.openPopup) sees nothing of the tab.
// The join page is shot in light and dark; the popup is not (it is no page the
// driver can shoot in Firefox; the Chromium test shoots it).

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExtension, launchFirefoxWithExtension, LIST, ListServerUnderTest, newFirefoxExtensionPage, PASSPHRASE, removeDir } from './extension-kit.ts';
import { CLUB_NAME, firefoxPopupClick, firefoxPopupText, firefoxToolbarClick, joinPageOf, nameTheList, until } from './join-kit.ts';
import { shootFirefox } from './screenshots.ts';

const ERIN = 'erin@example.org';
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
let extDir: string, profile: string, browser: Browser;
/** An extension page in its own tab, from which the open popup is read (extension.getViews). */
let helper: Page;
const list = new ListServerUnderTest();

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), list.start()]);
  nameTheList(list);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-join-firefox-'));
  // openPopup() without a click, for the control below.
  browser = await launchFirefoxWithExtension(extDir, profile, UUID, { 'extensions.openPopupWithoutUserGesture.enabled': true });
  helper = await newFirefoxExtensionPage(browser, `${BASE}extension/pages/archive/index.html`, '[data-test=archive]');
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await list.stop();
  removeDir(extDir);
  removeDir(profile);
});

async function openJoinPage(): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 900 });
  await page.goto(joinPageOf(list));
  await page.waitForSelector('[data-test=join-name]', { timeout: 60_000 });
  return page;
}

const popupText = (selector: string, what: string) => until(() => firefoxPopupText(helper, selector), 60_000, what);

async function closePopup(): Promise<void> {
  await helper.evaluate(() => {
    for (const v of (globalThis as unknown as { browser: { extension: { getViews(o: { type: string }): Window[] } } }).browser.extension.getViews({ type: 'popup' })) v.close();
  });
}

describe('joining from a list\'s join page in Firefox', () => {
  it('the popup sees the join page only through the toolbar click (activeTab), not on its own', async () => {
    const page = await openJoinPage();
    await page.bringToFront();
    // No click: the popup the extension opens itself cannot read the tab.
    await helper.evaluate(() => (globalThis as unknown as { browser: { action: { openPopup(): Promise<void> } } }).browser.action.openPopup());
    await popupText('[data-test=popup-actions][data-test-join=none]', 'the popup without the click to finish looking at the tab');
    expect(await firefoxPopupText(helper, '[data-test=join-offer]')).toBeUndefined();
    await closePopup();

    await firefoxToolbarClick(browser, page);
    const offer = await popupText('[data-test=join-offer][data-test-state=offer]', 'the join offer in the popup');
    expect(offer).toContain(`Join ${CLUB_NAME}`);
    expect(offer).toContain(`${LIST}, on the list server 127.0.0.1:${list.server!.httpPort}`);
    await closePopup();
    await page.close();
  }, 240_000);

  it('a new user: join page, "Join <list>" in the popup, the first run with the list filled in, confirmation sent', async () => {
    const page = await openJoinPage();
    expect(await page.$eval('[data-test=join-name]', (e) => e.textContent)).toBe(CLUB_NAME);
    const pageFingerprint = (await page.$eval('[data-test=join-fingerprint]', (e) => e.textContent))!;
    await shootFirefox(page, 'join-page');

    await firefoxToolbarClick(browser, page);
    expect(await popupText('[data-test=join-offer][data-test-state=offer]', 'the join offer')).toContain('Set up Letterlock first');
    expect(await firefoxPopupText(helper, '[data-test=join-offer-button]')).toBe(`Join ${CLUB_NAME}`);
    // The driver does not see moz-extension URLs load (TOOLCHAIN.md): the options tab is the new page target.
    const before = new Set(browser.targets());
    await firefoxPopupClick(helper, '[data-test=join-offer-button]');
    const target = await until(async () => browser.targets().find((t) => !before.has(t) && t.type() === 'page'), 60_000, 'the options tab the popup opens');
    const options = (await target.page())!;
    await options.waitForSelector('[data-test=guide][data-test-state=key]', { timeout: 90_000 });
    const href = await options.evaluate(() => location.href);
    expect(href.startsWith(`${BASE}extension/pages/options/index.html#join=`)).toBe(true);
    expect(decodeURIComponent(href.split('#join=')[1]!)).toBe(joinPageOf(list));

    // The first run, its optional steps skipped, reaches the list step with the list filled in.
    await options.locator('[data-test=key-name]').fill('Erin');
    await options.locator('[data-test=key-address]').fill(ERIN);
    await options.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await options.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await options.click('[data-test=create-key-submit]');
    await options.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: 60_000 });
    for (const step of ['word', 'site', 'list']) {
      await options.click('[data-test=guide-next]');
      await options.waitForSelector(`[data-test=guide][data-test-state=${step}]`);
    }
    expect(await options.$eval('[data-test=list-address]', (e) => (e as HTMLInputElement).value)).toBe(LIST);
    expect(await options.$eval('[data-test=list-server]', (e) => (e as HTMLInputElement).value)).toBe(list.base);
    // The browser's prompt for the list server is answered "allow" by the kit's preference.
    await options.click('[data-test=list-lookup]');
    await options.waitForSelector('[data-test=list-candidate]', { timeout: 60_000 });
    // The fingerprint to compare is the one the join page shows.
    expect((await options.$eval('[data-test=candidate-fingerprint]', (e) => e.textContent))!.replace(/\s/g, '')).toBe(pageFingerprint.replace(/\s/g, ''));
    await options.click('[data-test=list-pin]');
    const row = `[data-test=list-row][data-list="${LIST}"]`;
    await options.waitForSelector(`${row}[data-test-state=pinned]`);
    // Pinned: the join form is cleared for the next list, and says where this one went.
    expect(await options.$eval('[data-test=list-address]', (e) => (e as HTMLInputElement).value)).toBe('');
    expect(await options.$eval('[data-test=list-server]', (e) => (e as HTMLInputElement).value)).toBe('');
    expect(await options.$eval('[data-test=list-added]', (e) => e.textContent)).toContain(LIST);
    await options.click('[data-test=subscribe]');
    await options.waitForSelector(`${row}[data-test-state=confirmation-sent]`, { timeout: 60_000 });
    expect(await options.$eval(`${row} [data-test=list-state]`, (e) => e.textContent)).toBe('Waiting for your confirmation');
    expect((await list.mailTo(ERIN, 1)).length).toBeGreaterThan(0);
    await shootFirefox(options, 'options-joined-from-page');
    await options.close();
    await page.close();
  }, 300_000);

  it('a bare list address with no server: Letterlock looks on the address\'s own domain over https, and says to use the join link when nothing answers', async () => {
    const options = await newFirefoxExtensionPage(browser, `${BASE}extension/pages/options/index.html`, '[data-test=options][data-test-mode=manage]', { viewport: { width: 1100, height: 900 } });
    await options.locator('[data-test=list-address]').fill('news@nowhere.invalid');
    await options.click('[data-test=list-lookup]');
    const form = '[data-test=add-list]';
    await options.waitForSelector(`${form} [data-test=error]`, { timeout: 90_000 });
    // The guess is shown where the server goes, and the error says what to do instead.
    expect(await options.$eval('[data-test=list-server]', (e) => (e as HTMLInputElement).value)).toBe('https://nowhere.invalid');
    const error = await options.$eval(`${form} [data-test=error]`, (e) => e.textContent);
    expect(error).toContain('No Letterlock list news@nowhere.invalid answered at https://nowhere.invalid');
    expect(error).toContain('join link');
    expect(error).toContain('letterlock list show');
    await shootFirefox(options, 'options-join-bare-address');
    await options.close();
  }, 240_000);
});
