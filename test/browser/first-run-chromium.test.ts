// A new user in real headless Chromium with the built extension, against the real
// list server: the options page opens on install, the popup starts the first run,
// an unset security word shows no coloured badge; the guided first run (key,
// revocation certificate and encrypted backup downloaded and checked, security
// word, webmail site, a list joined by its join link, states in words); a second
// key chosen for a second list (the list registers it, the composer and the
// archive sign with it); renewal re-publishes the key to the list; errors say what
// to do and a later attempt replaces them. Every page is shot in light and dark.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData } from '../../server/app.ts';
import { getList } from '../../server/store/lists.ts';
import { getMember } from '../../server/store/members.ts';
import { parsePrivateKey, readMail, readPrivateKeyForStorage, unlockPrivateKey } from '../../shared/index.ts';
import { addList, SECRET } from '../integration/server/harness.ts';
import { armoredOf, buildExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir, Webmail, launchChromiumWithExtension, confirmInChromiumWebmail } from './extension-kit.ts';
import { Gpg } from '../support/gpg.ts';
import { shootChromium } from './screenshots.ts';

const BOB = 'bob@example.org';
const DAVE = 'dave@example.org';
const SECOND = 'second@lists.test';
let extDir: string, profile: string, ctx: BrowserContext, extBase: string;
const site = new Webmail();
const list = new ListServerUnderTest();

interface StateLike { keys: { fingerprint: string; address: string; publicKey: string; expires: string | null }[] }

async function openPage(path: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${extBase}extension/pages/${path}`);
  return page;
}

/** The background's state, asked from an extension page (as the pages do). */
async function stateOf(page: Page): Promise<StateLike> {
  const a = (await page.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'state.get', payload: {} })`)) as { value: StateLike };
  return a.value;
}

async function downloadText(page: Page, click: Locator): Promise<string> {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), click.click()]);
  return readFileSync((await dl.path())!, 'utf8');
}

function row(page: Page, address: string): Locator {
  return page.locator(`[data-test=list-row][data-list="${address}"]`);
}

async function confirmInWebmail(to: string, n: number): Promise<void> {
  const mail = await confirmInChromiumWebmail(ctx, site, await armoredOf(await list.mailTo(to, n)));
  if (n === 1 && to === BOB) await shootChromium(mail, 'reader');
  await mail.close();
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), site.start(), list.start()]);
  await addList(list.dataDir, SECOND, { owner: 'owner@example.org' }, [list.alice]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-firstrun-chromium-'));
  ({ ctx, extBase } = await launchChromiumWithExtension(extDir!, profile, { width: 1100, height: 900 }));
}, 180_000);

afterAll(async () => {
  await ctx?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('first run and keys in Chromium', () => {
  let guide: Page;

  it('opens the options page on install; the popup starts the first run; an unset security word is no coloured badge', async () => {
    const isOptions = (p: Page) => p.url().startsWith(`${extBase}extension/pages/options/`);
    await expect.poll(() => ctx.pages().some(isOptions), { timeout: 30_000 }).toBe(true);
    await Promise.all(ctx.pages().filter(isOptions).map((p) => p.close()));

    const popup = await openPage('popup/index.html');
    await popup.locator('[data-test=popup-start]').waitFor();
    const badge = popup.locator('[data-test=security-indicator]');
    expect(await badge.getAttribute('data-test-state')).toBe('unset');
    expect(await badge.evaluate((e) => getComputedStyle(e).backgroundColor)).toBe('rgba(0, 0, 0, 0)');
    expect(await popup.textContent('body')).not.toContain('No key yet.');
    await shootChromium(popup, 'popup-new-user');
    [guide] = await Promise.all([ctx.waitForEvent('page'), popup.click('[data-test=start-first-run]')]);
    await guide.locator('[data-test=guide][data-test-state=key]').waitFor();
    expect(guide.url()).toContain('#first-run');
    await popup.close();
  }, 240_000);

  it('first run: key, revocation certificate and encrypted backup, security word, webmail site, a list joined by its link', async () => {
    const page = guide;
    expect(await page.getAttribute('[data-test=options]', 'data-test-mode')).toBe('first-run');
    await shootChromium(page, 'options-first-run-1-key');
    await page.fill('[data-test=key-name]', 'Bob');
    // A mistyped address and a second passphrase that differs: each error sits at its field, tied to it.
    await page.fill('[data-test=key-address]', 'bob@example');
    await page.fill('[data-test=key-passphrase]', PASSPHRASE);
    await page.fill('[data-test=key-passphrase-again]', `${PASSPHRASE}x`);
    await page.click('[data-test=create-key-submit]');
    const addressError = page.locator('[data-test=field-error][data-field=address]');
    await addressError.waitFor();
    expect(await addressError.textContent()).toContain('needs a dot');
    expect(await page.getAttribute('[data-test=key-address]', 'aria-invalid')).toBe('true');
    expect(await page.getAttribute('[data-test=key-address]', 'aria-describedby')).toBe(await addressError.getAttribute('id'));
    // The error is right under its field, not under the button.
    expect(await page.evaluate(() => document.querySelector('[data-test=key-address]')!.closest('label')!.nextElementSibling?.getAttribute('data-field'))).toBe('address');
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('data-test'))).toBe('key-address');
    expect(await page.locator('[data-test=create-key] [data-test=error]').count()).toBe(0);
    await page.fill('[data-test=key-address]', BOB);
    expect(await addressError.count()).toBe(0); // fixed: its error goes
    await page.click('[data-test=create-key-submit]');
    const againError = page.locator('[data-test=field-error][data-field=again]');
    await againError.waitFor();
    expect(await page.getAttribute('[data-test=key-passphrase-again]', 'aria-invalid')).toBe('true');
    expect(await page.getAttribute('[data-test=key-address]', 'aria-invalid')).toBeNull();
    await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await page.selectOption('[data-test=key-expiry]', '365');
    await page.click('[data-test=create-key-submit]');
    await page.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: 60_000 });
    const fp = (await stateOf(page)).keys[0]!.fingerprint;
    // Until both copies are saved, the way on says it leaves them behind (the certificate is not shown again).
    expect(await page.getAttribute('[data-test=guide-next]', 'data-test-state')).toBe('unsaved');
    expect(await page.textContent('[data-test=guide-next]')).toBe('Go on without saving them');
    expect(await page.textContent('[data-test=safety-unsaved]')).toContain('the revocation certificate');

    // The revocation certificate: a key revocation signature issued by this key.
    const cert = await downloadText(page, page.locator('[data-test=save-revocation]'));
    expect(await page.textContent('[data-test=safety-unsaved]')).not.toContain('revocation');
    const { data } = await openpgp.unarmor(cert);
    const sig = (await openpgp.readSignature({ binarySignature: data as Uint8Array })).packets[0]!;
    expect(sig.signatureType).toBe(openpgp.enums.signature.keyRevocation);
    expect(Buffer.from(sig.issuerFingerprint!).toString('hex').toUpperCase()).toBe(fp);
    // The backup: the key, still protected by the passphrase (and only that one opens it).
    const backup = await downloadText(page, page.locator('[data-test=backup-key]'));
    const { key, facts } = await readPrivateKeyForStorage(backup);
    expect(facts.fingerprint).toBe(fp);
    await expect(unlockPrivateKey(key, 'not the passphrase')).rejects.toThrow();
    await unlockPrivateKey(key, PASSPHRASE);
    // For GnuPG / Thunderbird: the same key under the same passphrase, in the form GnuPG 2.2 imports.
    await page.click('[data-test=safety] [data-test=gnupg-export] summary');
    expect(await page.textContent('[data-test=safety] [data-test=gnupg-export-words]')).toContain('Thunderbird, GnuPG');
    await page.fill('[data-test=safety] [data-test=gnupg-passphrase]', PASSPHRASE);
    const forGpg = await downloadText(page, page.locator('[data-test=safety] [data-test=gnupg-export-submit]'));
    expect((await page.inputValue('[data-test=safety] [data-test=gnupg-passphrase]'))).toBe('');
    const legacy = await readPrivateKeyForStorage(forGpg);
    expect(legacy.facts.fingerprint).toBe(fp);
    expect((legacy.key.keyPacket as unknown as { s2k: { type: string } }).s2k.type).toBe('iterated');
    const gpg = new Gpg();
    try {
      await gpg.mustRun(['--import'], forGpg, PASSPHRASE);
      expect((await gpg.mustRun(['--list-secret-keys', '--with-colons'])).stdout.toString()).toContain(fp);
    } finally {
      gpg.cleanup();
    }
    await page.locator('[data-test=safety][data-test-state=saved]').waitFor();
    await page.locator('[data-test=guide-next][data-test-state=ready]').waitFor();
    expect(await page.textContent('[data-test=guide-next]')).toBe('Next');
    expect(await page.locator('[data-test=safety-unsaved]').count()).toBe(0);
    await shootChromium(page, 'options-first-run-2-safety');

    // Key but no word yet: the popup asks for one, still with no coloured badge.
    const popup = await openPage('popup/index.html');
    await popup.locator('[data-test=word-prompt]').waitFor();
    expect(await popup.getAttribute('[data-test=security-indicator]', 'data-test-state')).toBe('unset');
    await shootChromium(popup, 'popup-no-word');
    await popup.close();

    await page.click('[data-test=guide-next]');
    await page.locator('[data-test=guide][data-test-state=word]').waitFor();
    await page.locator('[data-test=word-prompt]').waitFor();
    await shootChromium(page, 'options-first-run-3-word');
    await page.fill('[data-test=indicator-word]', 'otter');
    await page.click('[data-test=indicator-save]');
    await page.locator('[data-test=guide][data-test-state=site]').waitFor();
    expect(await page.textContent('[data-test=security-word]')).toBe('otter');

    await shootChromium(page, 'options-first-run-4-site');
    await page.fill('[data-test=site-input]', 'http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.locator('[data-test=guide][data-test-state=list]').waitFor();
    expect(await page.locator('[data-test=permission-wait]').count()).toBe(0);

    // A join link (the list's URL in the server's registry API) fills both fields.
    await page.fill('[data-test=list-address]', `${list.base}/v1/lists/${encodeURIComponent(LIST)}`);
    expect(await page.inputValue('[data-test=list-address]')).toBe(LIST);
    expect(await page.inputValue('[data-test=list-server]')).toBe(list.base);
    await page.click('[data-test=list-lookup]');
    await page.click('[data-test=list-pin]');
    await row(page, LIST).and(page.locator('[data-test-state=pinned]')).waitFor();
    expect(await row(page, LIST).locator('[data-test=list-state]').textContent()).toBe('List key confirmed');
    await page.click('[data-test=subscribe]');
    await row(page, LIST).and(page.locator('[data-test-state=confirmation-sent]')).waitFor();
    expect(await row(page, LIST).locator('[data-test=list-state]').textContent()).toBe('Waiting for your confirmation');
    expect(await row(page, LIST).locator('[data-test=list-next]').textContent()).toContain('Confirm subscription');
    expect(await page.innerText('body')).not.toContain('confirmation-sent');
    await shootChromium(page, 'options-first-run-5-list');
    await page.click('[data-test=guide-next]');
    await page.locator('[data-test=guide-done]').waitFor();
    // Joined is not subscribed yet: the summary says the list waits for the confirmation, and what to do.
    const done = page.locator(`[data-test=guide-done-list][data-list="${LIST}"]`);
    expect(await done.getAttribute('data-test-state')).toBe('confirmation-sent');
    expect(await done.textContent()).toMatch(/Waiting for your confirmation\. Open the confirmation mail/);
    await shootChromium(page, 'options-first-run-6-done');
    await page.click('[data-test=guide-finish]');
    await page.locator('[data-test=options][data-test-mode=manage]').waitFor();

    await confirmInWebmail(BOB, 1);
    await page.reload();
    await row(page, LIST).and(page.locator('[data-test-state=member]')).waitFor();
    expect(await row(page, LIST).locator('[data-test=list-state]').textContent()).toBe('Subscribed');
    expect(await page.locator('[data-test=key-expiry-shown]').first().textContent()).toMatch(/^Expires on /);
    await shootChromium(page, 'options-manage');
    await page.close();
  }, 240_000);

  it('several keys: a second key chosen for a second list is the one the list registers, and the composer and archive use it', async () => {
    const page = await openPage('options/index.html');
    await page.locator('[data-test=options][data-test-mode=manage]').waitFor();
    await page.click('[data-test=add-key]');
    await page.fill('[data-test=key-name]', 'Dave');
    await page.fill('[data-test=key-address]', DAVE);
    await page.fill('[data-test=key-passphrase]', PASSPHRASE);
    await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await expect.poll(() => page.locator('[data-test=key-card]').count(), { timeout: 60_000 }).toBe(2);
    await page.locator('[data-test=safety] [data-test=save-revocation]').waitFor(); // offered for the new key too
    const keys = (await stateOf(page)).keys;
    expect(keys.map((k) => k.address)).toEqual([BOB, DAVE]);
    const dave = keys[1]!;

    await page.fill('[data-test=list-address]', SECOND);
    await page.fill('[data-test=list-server]', list.base);
    await page.click('[data-test=list-lookup]');
    await page.click('[data-test=list-pin]');
    await row(page, SECOND).and(page.locator('[data-test-state=pinned]')).waitFor();
    await row(page, SECOND).locator('[data-test=list-key]').selectOption(dave.fingerprint);
    const chosen = async () => ((await page.evaluate(`chrome.runtime.sendMessage({ letterlock: 1, type: 'lists.get', payload: {} })`)) as { value: { address: string; keyFingerprint: string | null }[] })
      .value.find((l) => l.address === SECOND)?.keyFingerprint;
    await expect.poll(chosen, { timeout: 30_000 }).toBe(dave.fingerprint);
    await row(page, SECOND).locator('[data-test=subscribe]').click();
    await row(page, SECOND).and(page.locator('[data-test-state=confirmation-sent]')).waitFor();
    await shootChromium(page, 'options-two-keys');
    // The list wrote to Dave's address: it registered the key chosen for it.
    await confirmInWebmail(DAVE, 1);
    expect(list.sink.to(BOB)).toHaveLength(1);
    await page.reload();
    await row(page, SECOND).and(page.locator('[data-test-state=member]')).waitFor();
    expect(await row(page, SECOND).locator('[data-test=list-key-shown]').getAttribute('data-fingerprint')).toBe(dave.fingerprint);
    await page.close();

    // The composer signs a post to the second list with Dave's key.
    const marker = `SECONDKEY-${Math.random().toString(36).slice(2)}`;
    const mail = await ctx.newPage();
    await mail.goto(site.allowedUrl);
    await mail.click('[data-letterlock=compose-button]');
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await composer.locator('[data-test=composer][data-test-state=ready]').waitFor({ timeout: 30_000 });
    await composer.locator('[data-test=composer-list]').selectOption(SECOND);
    await composer.locator('[data-test=composer-subject]').fill('From the second key');
    await composer.locator('[data-test=composer-text]').fill(`Hello second list. ${marker}`);
    await composer.locator('[data-test=composer-send]').click();
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), undefined, { timeout: 60_000 }).catch(async (e) => {
      throw new Error(`compose box: ${(await mail.inputValue('#composebody')).slice(0, 80)} / frames: ${await mail.locator('iframe[data-letterlock]').count()}`, { cause: e });
    });
    const armored = await mail.inputValue('#composebody');
    await shootChromium(mail, 'composer');
    await mail.close();
    const had = list.sink.to(list.alice.address).length;
    await list.postFromWebmail(DAVE, armored, { to: SECOND });
    const alice = list.alice;
    const read = await readMail(await list.mailTo(alice.address, had + 1), {
      privateKey: await unlockPrivateKey(await parsePrivateKey(alice.privateArmored), alice.passphrase),
      senderKeys: [await openpgp.readKey({ armoredKey: dave.publicKey }) as openpgp.PublicKey],
    });
    expect(read.message.text).toContain(marker);
    expect(read.message.from?.address).toBe(DAVE);
    expect(read.verification).toMatchObject({ valid: true, signerFingerprint: dave.fingerprint });

    // The archive of the second list: signed in with Dave's key (the server checks it).
    const archive = await openPage('archive/index.html');
    await archive.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await archive.selectOption('[data-test=archive-list]', SECOND);
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive][data-test-state=signed-in]').waitFor({ timeout: 30_000 });
    const msg = archive.locator('[data-test=archive-message][data-test-state=decrypted]', { hasText: 'From the second key' });
    await msg.locator('[data-test=archive-open]').click();
    await archive.locator('[data-test=archive-view][data-test-state=decrypted]').waitFor();
    await shootChromium(archive, 'archive');
    await archive.close();
  }, 240_000);

  it('renews a key from the options page: a wrong passphrase says what to do, then the list gets the renewed key', async () => {
    const page = await openPage('options/index.html');
    await page.locator('[data-test=options][data-test-mode=manage]').waitFor();
    const bob = page.locator(`[data-test=key-card][data-test-state=default]`);
    const before = (await stateOf(page)).keys[0]!;
    await bob.locator('[data-test=renew-details] summary').click();
    await bob.locator('[data-test=renew-days]').selectOption('1825');
    await bob.locator('[data-test=renew-passphrase]').fill('not the passphrase');
    await bob.locator('[data-test=renew-submit]').click();
    const form = bob.locator('[data-test=renew-key]');
    await form.locator('[data-test=error]').waitFor();
    expect(await form.locator('[data-test=error]').textContent()).toMatch(/passphrase does not unlock.*try again/i);
    await bob.locator('[data-test=renew-passphrase]').fill(PASSPHRASE);
    await bob.locator('[data-test=renew-submit]').click();
    await form.and(page.locator('[data-test-state=renewed]')).waitFor({ timeout: 60_000 });
    expect(await form.locator('[data-test=error]').count()).toBe(0); // the earlier error is gone
    expect(await form.locator('[data-test=renew-result]').textContent()).toContain(LIST);
    const after = (await stateOf(page)).keys[0]!;
    expect(after.fingerprint).toBe(before.fingerprint);
    const in5y = Date.now() + 1825 * 86_400_000;
    expect(Math.abs(Date.parse(after.expires!) - in5y)).toBeLessThan(86_400_000);
    await shootChromium(page, 'options-renewed');
    await page.close();

    // The list server now holds the renewed key for Bob.
    const sql = await openData(list.dataDir, SECRET);
    try {
      const m = (await getMember(sql, (await getList(sql, LIST))!.id, BOB))!;
      const registered = await openpgp.readKey({ armoredKey: m.publicKey });
      expect(registered.getFingerprint().toUpperCase()).toBe(before.fingerprint);
      expect(((await registered.getExpirationTime()) as Date).getTime()).toBe(Date.parse(after.expires!));
    } finally {
      await sql.close();
    }
  }, 240_000);

  it('errors say what to do, and a later attempt replaces the earlier error', async () => {
    const page = await openPage('options/index.html');
    await page.locator('[data-test=options][data-test-mode=manage]').waitFor();
    const form = page.locator('[data-test=add-list]');
    await page.fill('[data-test=list-address]', 'nobody@lists.test');
    await page.fill('[data-test=list-server]', 'lists dot test');
    await page.click('[data-test=list-lookup]');
    await form.locator('[data-test=error]').waitFor();
    const first = await form.locator('[data-test=error]').textContent();
    expect(first).toMatch(/web address like https:\/\//);
    await page.fill('[data-test=list-server]', list.base);
    await page.click('[data-test=list-lookup]');
    await expect.poll(() => form.locator('[data-test=error]').textContent(), { timeout: 30_000 }).not.toBe(first);
    expect(await form.locator('[data-test=error]').count()).toBe(1);
    expect(await form.locator('[data-test=error]').textContent()).toMatch(/Check the list address and the server address/);
    await shootChromium(page, 'options-error');
    await page.fill('[data-test=list-address]', LIST);
    await page.click('[data-test=list-lookup]');
    await page.locator('[data-test=list-candidate]').waitFor();
    expect(await form.locator('[data-test=error]').count()).toBe(0);
    await page.close();
  }, 240_000);
});
