// Following a join link in real headless Chromium with the built extension,
// against the real list server: the list's join page, the toolbar popup on it
// offering "Join <list>" (the real toolbar click, through CDP
// Extensions.triggerAction, gives the popup the activeTab grant; without a
// click it sees nothing of the tab), and the join it starts: a new user's first
// run opens with the list filled in, and ends with the list's confirmation mail
// sent. The join page and the popup are shot in light and dark.
//
// Host access: this build holds http://127.0.0.1/* from install (Chromium's
// permission prompt cannot be answered under automation), so the activeTab
// checks use the same server under http://localhost, a host the extension has
// no access to: there only the click's activeTab grant lets the popup read the tab.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addList } from '../integration/server/harness.ts';
import { buildExtension, launchChromiumWithExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir } from './extension-kit.ts';
import { CHROMIUM_ACTION_ARGS, ChromiumPopup, chromiumToolbarClick, CLUB_NAME, joinPageOf, nameTheList } from './join-kit.ts';
import { shootChromium } from './screenshots.ts';

const BOB = 'bob@example.org';
const SECOND = 'second@lists.test';
let extDir: string, profile: string, ctx: BrowserContext, extId: string, extBase: string;
const list = new ListServerUnderTest();

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), list.start()]);
  nameTheList(list);
  await addList(list.dataDir, SECOND, { owner: 'owner@example.org' }, [list.alice]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-join-chromium-'));
  ({ ctx, extId, extBase } = await launchChromiumWithExtension(extDir!, profile, { width: 1100, height: 900 }, CHROMIUM_ACTION_ARGS));
  // The options page opens on install; this user starts from the join page instead.
  const isOptions = (p: Page) => p.url().startsWith(`${extBase}extension/pages/options/`);
  const end = Date.now() + 30_000;
  while (!ctx.pages().some(isOptions) && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  await Promise.all(ctx.pages().filter(isOptions).map((p) => p.close()));
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await list.stop();
  removeDir(extDir);
  removeDir(profile);
});

async function openJoinPage(url: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(url);
  await page.locator('[data-test=join-name]').waitFor();
  return page;
}

async function closePopup(popup: ChromiumPopup): Promise<void> {
  await popup.evaluate('window.close()').catch(() => {});
}

describe('joining from a list\'s join page in Chromium', () => {
  it('the popup sees the join page only through the toolbar click (activeTab), not on its own', async () => {
    const url = joinPageOf(list).replace('127.0.0.1', 'localhost');
    const page = await openJoinPage(url);
    await page.bringToFront();
    // No click: the popup opened by the extension itself cannot read the tab.
    await ctx.serviceWorkers()[0]!.evaluate(() => (globalThis as unknown as { chrome: { action: { openPopup(): Promise<void> } } }).chrome.action.openPopup());
    const browser = await ctx.browser()!.newBrowserCDPSession();
    const unclicked = await ChromiumPopup.attach(browser, `${extBase}extension/pages/popup/`);
    // Once the popup has asked the browser for the tab: no offer.
    await unclicked.waitFor('[data-test=popup-actions][data-test-join=none]');
    expect(await unclicked.evaluate('document.querySelector("[data-test=join-offer]") === null')).toBe(true);
    await closePopup(unclicked);

    // The user's click: now the popup reads this tab (a host it holds no access to) and offers the list.
    const popup = await chromiumToolbarClick(ctx, extId, page);
    const offer = await popup.waitFor('[data-test=join-offer][data-test-state=offer]');
    expect(offer).toContain(`Join ${CLUB_NAME}`);
    expect(offer).toContain(`${LIST}, on the list server localhost:${list.server!.httpPort}`);
    await closePopup(popup);
    await page.close();
  }, 240_000);

  it('a new user: join page, "Join <list>" in the popup, the first run with the list filled in, confirmation sent', async () => {
    const page = await openJoinPage(joinPageOf(list));
    expect(await page.locator('[data-test=join-name]').textContent()).toBe(CLUB_NAME);
    const pageFingerprint = (await page.locator('[data-test=join-fingerprint]').textContent())!;
    await shootChromium(page, 'join-page');

    const popup = await chromiumToolbarClick(ctx, extId, page);
    const offer = await popup.waitFor('[data-test=join-offer][data-test-state=offer]');
    expect(offer).toContain('Set up Letterlock first');
    expect(await popup.evaluate('document.querySelector("[data-test=join-offer-button]").textContent')).toBe(`Join ${CLUB_NAME}`);
    await popup.shoot('popup-join-offer');
    const [options] = await Promise.all([ctx.waitForEvent('page', { timeout: 60_000 }), popup.click('[data-test=join-offer-button]')]);
    await options.locator('[data-test=guide][data-test-state=key]').waitFor({ timeout: 60_000 });
    expect(decodeURIComponent(options.url().split('#join=')[1]!)).toBe(joinPageOf(list));

    // The first run, its optional steps skipped, reaches the list step with the list filled in.
    await options.fill('[data-test=key-name]', 'Bob');
    await options.fill('[data-test=key-address]', BOB);
    await options.fill('[data-test=key-passphrase]', PASSPHRASE);
    await options.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await options.click('[data-test=create-key-submit]');
    await options.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: 60_000 });
    for (const step of ['word', 'site', 'list']) {
      await options.click('[data-test=guide-next]');
      await options.locator(`[data-test=guide][data-test-state=${step}]`).waitFor();
    }
    expect(await options.inputValue('[data-test=list-address]')).toBe(LIST);
    expect(await options.inputValue('[data-test=list-server]')).toBe(list.base);
    await options.click('[data-test=list-lookup]');
    await options.locator('[data-test=list-candidate]').waitFor({ timeout: 60_000 });
    // The fingerprint to compare is the one the join page shows.
    expect((await options.locator('[data-test=candidate-fingerprint]').textContent())!.replace(/\s/g, '')).toBe(pageFingerprint.replace(/\s/g, ''));
    await options.click('[data-test=list-pin]');
    const row = options.locator(`[data-test=list-row][data-list="${LIST}"]`);
    await row.and(options.locator('[data-test-state=pinned]')).waitFor();
    // Pinned: the join form is cleared for the next list, and says where this one went.
    expect(await options.inputValue('[data-test=list-address]')).toBe('');
    expect(await options.inputValue('[data-test=list-server]')).toBe('');
    expect(await options.textContent('[data-test=list-added]')).toContain(LIST);
    await options.click('[data-test=subscribe]');
    await row.and(options.locator('[data-test-state=confirmation-sent]')).waitFor({ timeout: 60_000 });
    expect(await row.locator('[data-test=list-state]').textContent()).toBe('Waiting for your confirmation');
    // The list wrote to Bob: his confirmation mail is on its way.
    expect((await list.mailTo(BOB, 1)).length).toBeGreaterThan(0);
    await shootChromium(options, 'options-joined-from-page');
    await options.close();
    await page.close();
  }, 300_000);

  it('with a key already: the popup on another list\'s join page opens the options at "Join a list", filled in', async () => {
    const page = await openJoinPage(`${list.base}/join/${SECOND}`);
    const popup = await chromiumToolbarClick(ctx, extId, page);
    const offer = await popup.waitFor('[data-test=join-offer][data-test-state=offer]');
    expect(offer).toContain(`Join ${SECOND}`); // no name set: the address names it
    expect(offer).not.toContain('Set up Letterlock first');
    const [options] = await Promise.all([ctx.waitForEvent('page', { timeout: 60_000 }), popup.click('[data-test=join-offer-button]')]);
    await options.locator('[data-test=options][data-test-mode=manage]').waitFor({ timeout: 60_000 });
    expect(await options.inputValue('[data-test=list-address]')).toBe(SECOND);
    expect(await options.inputValue('[data-test=list-server]')).toBe(list.base);
    // The join step is scrolled into view, below the keys and settings.
    await expect.poll(() => options.locator('[data-test=list-lookup]').evaluate((e) => {
      const r = e.getBoundingClientRect();
      return r.top >= 0 && r.bottom <= innerHeight;
    }), { timeout: 30_000 }).toBe(true);
    await options.click('[data-test=list-lookup]');
    await options.locator('[data-test=list-candidate]').waitFor({ timeout: 60_000 });
    await options.close();
    await page.close();
  }, 240_000);
});
