// A new user in real headless Firefox ESR with the built extension, against the
// real list server: the popup starts the first run and an unset security word is
// no coloured badge; the guided first run (key, revocation certificate and
// encrypted backup saved to the download folder and checked, security word,
// webmail site, a list joined by its join link, states in words, confirmation in
// the webmail reader frame); a second key chosen for a second list is the one the
// list writes to; renewal re-publishes the key; errors replace earlier ones.
// Pages are shot in light and dark.

import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import * as openpgp from 'openpgp';
import type { Browser, Frame, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData } from '../../server/app.ts';
import { getList } from '../../server/store/lists.ts';
import { getMember } from '../../server/store/members.ts';
import { readPrivateKeyForStorage, unlockPrivateKey } from '../../shared/index.ts';
import { addList, SECRET } from '../integration/server/harness.ts';
import {
  armoredOf, buildExtension, focusInFrame, frameState, launchFirefoxWithExtension, LIST, ListServerUnderTest, newFirefoxExtensionPage,
  PASSPHRASE, removeDir, Webmail,
} from './extension-kit.ts';
import { shootFirefox } from './screenshots.ts';

const ERIN = 'erin@example.org';
const FRANK = 'frank@example.org';
const SECOND = 'second@lists.test';
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
let extDir: string, profile: string, downloads: string, browser: Browser;
const site = new Webmail();
const list = new ListServerUnderTest();


async function openPage(path: string, ready: string): Promise<Page> {
  // A long deadline: the driver sometimes loses a page for a while and it is opened again.
  return newFirefoxExtensionPage(browser, `${BASE}extension/pages/${path}`, ready, { timeoutMs: 90_000, viewport: { width: 1100, height: 900 } });
}

/** The keys the options page shows (the driver cannot call the extension's API from the page). */
async function keysShown(page: Page): Promise<{ fingerprint: string; address: string }[]> {
  return page.$$eval('[data-test=key-card]', (els) => els.map((e) => ({ fingerprint: e.getAttribute('data-fingerprint')!, address: e.querySelector('[data-test=key-address-shown]')!.textContent! })));
}

/** A file the page saved, once it is complete in the download folder. */
async function downloaded(suffix: string): Promise<string> {
  let found: string | undefined;
  await expect.poll(() => {
    found = readdirSync(downloads).find((f) => f.endsWith(suffix));
    return found !== undefined && existsSync(join(downloads, found)) && readFileSync(join(downloads, found), 'utf8').includes('-----END PGP');
  }, { timeout: 30_000 }).toBe(true);
  return readFileSync(join(downloads, found!), 'utf8');
}

const rowSel = (address: string, state?: string) => `[data-test=list-row][data-list="${address}"]${state ? `[data-test-state=${state}]` : ''}`;

async function messageFrame(page: Page): Promise<Frame> {
  const handle = await page.waitForSelector('#messagecontframe');
  return (await handle!.contentFrame())!;
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), site.start(), list.start()]);
  await addList(list.dataDir, SECOND, { owner: 'owner@example.org' }, [list.alice]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-firstrun-firefox-'));
  downloads = mkdtempSync(join(tmpdir(), 'letterlock-firstrun-downloads-'));
  browser = await launchFirefoxWithExtension(extDir, profile, UUID, {
    'browser.download.folderList': 2,
    'browser.download.dir': downloads,
    'browser.download.useDownloadDir': true,
    'browser.download.always_ask_before_handling_new_types': false,
    'browser.download.alwaysOpenPanel': false,
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
  removeDir(downloads);
});

describe('first run and keys in Firefox', () => {
  it('the popup starts the first run; an unset security word is no coloured badge', async () => {
    const popup = await openPage('popup/index.html', '[data-test=popup-start]');
    expect(await popup.$eval('[data-test=security-indicator]', (e) => e.getAttribute('data-test-state'))).toBe('unset');
    expect(await popup.$eval('[data-test=security-indicator]', (e) => getComputedStyle(e).backgroundColor)).toBe('rgba(0, 0, 0, 0)');
    await shootFirefox(popup, 'popup-new-user');
    await popup.close();
  }, 240_000);

  it('first run: key, revocation certificate and backup files, word, site, a list joined by its link, confirmed in webmail', async () => {
    const page = await openPage('options/index.html#first-run', '[data-test=guide][data-test-state=key]');
    await shootFirefox(page, 'options-first-run-1-key');
    await page.locator('[data-test=key-name]').fill('Erin');
    // A passphrase too short: its error sits at its field, tied to it, and the field takes the focus.
    await page.locator('[data-test=key-address]').fill(ERIN);
    await page.locator('[data-test=key-passphrase]').fill('short');
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=field-error][data-field=passphrase]');
    expect(await page.$eval('[data-test=key-passphrase]', (e) => [e.getAttribute('aria-invalid'), e.getAttribute('aria-describedby')])).toEqual(['true', 'passphrase-hint create-key-passphrase-error']);
    await page.waitForFunction(() => document.activeElement?.getAttribute('data-test') === 'key-passphrase');
    expect(await page.$$eval('[data-test=create-key] [data-test=error]', (e) => e.length)).toBe(0);
    await page.$eval('[data-test=key-passphrase]', (e) => { (e as HTMLInputElement).value = ''; });
    await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await page.select('[data-test=key-expiry]', '365');
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: 60_000 });
    await page.click('[data-test=save-revocation]');
    const { data } = await openpgp.unarmor(await downloaded('-revocation.asc'));
    const sig = (await openpgp.readSignature({ binarySignature: data as Uint8Array })).packets[0]!;
    expect(sig.signatureType).toBe(openpgp.enums.signature.keyRevocation);
    await page.click('[data-test=backup-key]');
    const { key, facts } = await readPrivateKeyForStorage(await downloaded('-private-protected.asc'));
    expect(Buffer.from(sig.issuerFingerprint!).toString('hex').toUpperCase()).toBe(facts.fingerprint);
    expect(facts.addresses).toEqual([ERIN]);
    await unlockPrivateKey(key, PASSPHRASE);
    await page.waitForSelector('[data-test=safety][data-test-state=saved]');
    await shootFirefox(page, 'options-first-run-2-safety');

    const popup = await openPage('popup/index.html', '[data-test=word-prompt]');
    expect(await popup.$eval('[data-test=security-indicator]', (e) => e.getAttribute('data-test-state'))).toBe('unset');
    await shootFirefox(popup, 'popup-no-word');
    await popup.close();

    await page.click('[data-test=guide-next]');
    await page.waitForSelector('[data-test=guide][data-test-state=word] [data-test=word-prompt]');
    await shootFirefox(page, 'options-first-run-3-word');
    await page.locator('[data-test=indicator-word]').fill('heron');
    await page.click('[data-test=indicator-save]');
    await page.waitForSelector('[data-test=guide][data-test-state=site]');
    await shootFirefox(page, 'options-first-run-4-site');
    await page.locator('[data-test=site-input]').fill('http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.waitForSelector('[data-test=guide][data-test-state=list]');

    await page.locator('[data-test=list-address]').fill(`${list.base}/lists/${LIST}`); // the unversioned form
    expect(await page.$eval('[data-test=list-address]', (e) => (e as HTMLInputElement).value)).toBe(LIST);
    expect(await page.$eval('[data-test=list-server]', (e) => (e as HTMLInputElement).value)).toBe(list.base);
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector('[data-test=list-pin]');
    await page.click('[data-test=list-pin]');
    await page.waitForSelector(rowSel(LIST, 'pinned'));
    expect(await page.$eval(`${rowSel(LIST)} [data-test=list-state]`, (e) => e.textContent)).toBe('List key confirmed');
    await page.click('[data-test=subscribe]');
    await page.waitForSelector(rowSel(LIST, 'confirmation-sent'));
    expect(await page.$eval(`${rowSel(LIST)} [data-test=list-state]`, (e) => e.textContent)).toBe('Waiting for your confirmation');
    expect(await page.$eval('body', (e) => (e as HTMLElement).innerText)).not.toContain('confirmation-sent');
    await shootFirefox(page, 'options-first-run-5-list');
    // The list's mail opens without a click (the per-list setting), so the driver,
    // which cannot click inside extension frames here, sees it decrypted.
    await page.click(`${rowSel(LIST)} [data-test=auto-decrypt]`);
    await page.waitForFunction((sel: string) => (document.querySelector(sel) as HTMLInputElement | null)?.checked === true, { timeout: 30_000 }, `${rowSel(LIST)} [data-test=auto-decrypt]`);
    await page.click('[data-test=guide-next]');
    await page.waitForSelector('[data-test=guide-done]');
    await shootFirefox(page, 'options-first-run-6-done');
    await page.click('[data-test=guide-finish]');
    await page.waitForSelector('[data-test=options][data-test-mode=manage]');
    await page.close();

    site.messages = [await armoredOf(await list.mailTo(ERIN, 1))];
    const mail = await browser.newPage();
    await mail.setViewport({ width: 1100, height: 900 });
    await mail.goto(site.allowedUrl);
    const frame = await frameState(await messageFrame(mail), 'reader', 'decrypted');
    // The reader frame in the web page is shot dark too (reached as its own browsing context).
    expect((await shootFirefox(mail, 'reader')).darkFrames).toBe(1);
    await focusInFrame(mail, frame, 1);
    await mail.keyboard.press('Enter');
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="confirmed"]', { timeout: 30_000 });
    await mail.close();
    const again = await openPage('options/index.html', `${rowSel(LIST, 'member')}`);
    expect(await again.$eval(`${rowSel(LIST)} [data-test=list-state]`, (e) => e.textContent)).toBe('Subscribed');
    await shootFirefox(again, 'options-manage');
    await again.close();
  }, 240_000);

  it('a second key chosen for a second list is the one the list writes to', async () => {
    const page = await openPage('options/index.html', '[data-test=options][data-test-mode=manage]');
    await page.click('[data-test=add-key]');
    await page.locator('[data-test=key-name]').fill('Frank');
    await page.locator('[data-test=key-address]').fill(FRANK);
    await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=key-card]:nth-child(2)', { timeout: 60_000 });
    const frank = (await keysShown(page)).find((k) => k.address === FRANK)!;
    await page.locator('[data-test=list-address]').fill(SECOND);
    await page.locator('[data-test=list-server]').fill(list.base);
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector('[data-test=list-pin]');
    await page.click('[data-test=list-pin]');
    await page.waitForSelector(`${rowSel(SECOND, 'pinned')} [data-test=list-key]`);
    await page.select(`${rowSel(SECOND)} [data-test=list-key]`, frank.fingerprint);
    await page.waitForFunction((sel: string, fp: string) => (document.querySelector(sel) as HTMLSelectElement | null)?.value === fp && !(document.querySelector(sel) as HTMLSelectElement).disabled,
      { timeout: 30_000 }, `${rowSel(SECOND)} [data-test=list-key]`, frank.fingerprint);
    await page.click(`${rowSel(SECOND)} [data-test=subscribe]`);
    await page.waitForSelector(rowSel(SECOND, 'confirmation-sent'));
    await list.mailTo(FRANK, 1);
    expect(list.sink.to(ERIN)).toHaveLength(1);
    await shootFirefox(page, 'options-two-keys');
    await page.close();
  }, 240_000);

  it('renews a key: a wrong passphrase says what to do, then the list holds the renewed key', async () => {
    const page = await openPage('options/index.html', '[data-test=key-card][data-test-state=default]');
    const card = '[data-test=key-card][data-test-state=default]';
    const before = (await keysShown(page))[0]!;
    expect(before.address).toBe(ERIN);
    await page.click(`${card} [data-test=renew-details] summary`);
    await page.select(`${card} [data-test=renew-days]`, '1825');
    await page.locator(`${card} [data-test=renew-passphrase]`).fill('not the passphrase');
    await page.click(`${card} [data-test=renew-submit]`);
    await page.waitForSelector(`${card} [data-test=renew-key] [data-test=error]`);
    expect(await page.$eval(`${card} [data-test=renew-key] [data-test=error]`, (e) => e.textContent)).toMatch(/passphrase does not unlock.*try again/i);
    await page.locator(`${card} [data-test=renew-passphrase]`).fill(PASSPHRASE);
    await page.click(`${card} [data-test=renew-submit]`);
    await page.waitForSelector(`${card} [data-test=renew-key][data-test-state=renewed]`, { timeout: 60_000 });
    expect(await page.$$eval(`${card} [data-test=renew-key] [data-test=error]`, (e) => e.length)).toBe(0);
    expect(await page.$eval(`${card} [data-test=renew-result]`, (e) => e.textContent)).toContain(LIST);
    await shootFirefox(page, 'options-renewed');
    await page.close();
    const sql = await openData(list.dataDir, SECRET);
    try {
      const registered = await openpgp.readKey({ armoredKey: (await getMember(sql, (await getList(sql, LIST))!.id, ERIN))!.publicKey });
      expect(registered.getFingerprint().toUpperCase()).toBe(before.fingerprint);
      expect(Math.abs(((await registered.getExpirationTime()) as Date).getTime() - (Date.now() + 1825 * 86_400_000))).toBeLessThan(86_400_000);
    } finally {
      await sql.close();
    }
  }, 240_000);

  it('errors say what to do, and a later attempt replaces the earlier error', async () => {
    const page = await openPage('options/index.html', '[data-test=options][data-test-mode=manage]');
    const err = '[data-test=add-list] [data-test=error]';
    await page.locator('[data-test=list-address]').fill('nobody@lists.test');
    await page.locator('[data-test=list-server]').fill('lists dot test');
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector(err);
    const first = await page.$eval(err, (e) => e.textContent);
    expect(first).toMatch(/web address like https:\/\//);
    await page.locator('[data-test=list-server]').fill(list.base);
    await page.click('[data-test=list-lookup]');
    await page.waitForFunction((sel: string, old: string) => document.querySelector(sel) && document.querySelector(sel)!.textContent !== old, { timeout: 30_000 }, err, first!);
    expect(await page.$$eval(err, (e) => e.length)).toBe(1);
    expect(await page.$eval(err, (e) => e.textContent)).toMatch(/Check the list address and the server address/);
    await shootFirefox(page, 'options-error');
    await page.close();
  }, 240_000);
});
