// The story in real webmail with the built extension in Firefox ESR (puppeteer-core
// over WebDriver BiDi), on the real stack. Firefox's automation cannot reach
// extension frames inside web pages, so those frames are driven by keyboard and
// checked by the state words they report to the content script (decrypted,
// verified, confirmed); extension pages (options, archive) are read directly.
// Covered: Alice and Bob subscribe and confirm in Roundcube (the PGP/MIME
// confirmation read from its encrypted.asc attachment), Alice writes with the
// composer in Roundcube's compose page and sends from Roundcube, Bob reads it in
// the preview frame (inline) and its words in the archive, Carol is refused, Dave
// reads it with gpg, Bob replies from Roundcube, Alice reads the reply in the full
// view (PGP/MIME), the archive threads both, and the no-plaintext scan.
// Screenshots: test-artifacts/stack-story/firefox-*.png.

import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMarker } from '../integration/server/scan.ts';
import { buildExtension, focusInFrame, frameState, launchFirefoxWithExtension, newFirefoxExtensionPage, PASSPHRASE, removeDir } from '../browser/extension-kit.ts';
import { Gpg } from '../support/gpg.ts';
import { makeKey } from '../support/keys.ts';
import { fetchAll, waitForMail, type FetchedMail } from './imap.ts';
import { startMailStack, type MailStack, type StackUser } from './mailstack.ts';
import { SELECTORS } from './roundcube.ts';
import { archiveLogin, gpgRead, listInfo, scanStack, subscribeWithGpg } from './story-kit.ts';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'stack-story');
const MARKER = `LLFXSTORY-${randomUUID()}`;
const SUBJECT = `Grüße aus Firefox ✉ ${MARKER}`;
const BODY = `Hallo Bob, schöne Grüße — Čevapčići und 日本語. ${MARKER}`;
const REPLY_SUBJECT = `Re: Grüße aus Firefox — ${MARKER}`;
const REPLY_BODY = `Danke, Alice! Käse kommt mit. ${MARKER}-antwort`;

interface Person {
  name: string;
  user: StackUser;
  uuid: string;
  profile: string;
  browser: Browser;
  mail: Page;
  confirmation: FetchedMail | null;
  publicKey: string;
  fingerprint: string;
}

let stack: MailStack;
let extDir: string;
let alice: Person, bob: Person;
let list: { fingerprint: string; armored: string };
let gpg: Gpg;
let dave: { fingerprint: string; confirmation: FetchedMail };
const started = Date.now();
const timings: Record<string, number> = {};

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `firefox-${name}.png`), fullPage: true });
}

async function launch(name: string, user: StackUser): Promise<Person> {
  const uuid = randomUUID();
  const profile = mkdtempSync(join(tmpdir(), `letterlock-fxstory-${name}-`));
  let browser: Browser;
  try {
    browser = await launchFirefoxWithExtension(extDir, profile, uuid);
  } catch (e) {
    removeDir(profile);
    throw e;
  }
  let mail: Page;
  try {
    mail = await browser.newPage();
    await mail.setViewport({ width: 1400, height: 1000 });
  } catch (e) {
    await browser.close();
    removeDir(profile);
    throw e;
  }
  return { name, user, uuid, profile, browser, mail, confirmation: null, publicKey: '', fingerprint: '' };
}

/** moz-extension pages never report their load to the driver: start, then wait for content. */
async function extensionPage(p: Person, path: string, ready: string): Promise<Page> {
  return newFirefoxExtensionPage(p.browser, `moz-extension://${p.uuid}/extension/pages/${path}/index.html`, ready, { viewport: { width: 1280, height: 1000 } });
}

// ---- Roundcube in puppeteer (the playwright helpers of roundcube.ts, same selectors) ----------

async function login(p: Person): Promise<void> {
  await p.mail.goto(stack.urls.roundcube!);
  await p.mail.locator(SELECTORS.loginUser).fill(p.user.address);
  await p.mail.locator(SELECTORS.loginPassword).fill(p.user.password);
  await Promise.all([p.mail.waitForNavigation({ timeout: 60_000 }), p.mail.click(SELECTORS.loginSubmit)]);
  await p.mail.waitForSelector(SELECTORS.messageList, { timeout: 60_000 });
}

/** Opens the inbox until the message with this IMAP uid is listed, clicks it, and returns the preview frame. */
async function openInPreview(p: Person, uid: number): Promise<Frame> {
  const end = Date.now() + 30_000;
  let id: string | null = null;
  while (!id) {
    await p.mail.goto(`${stack.urls.roundcube}?_task=mail&_mbox=INBOX`);
    await p.mail.waitForFunction(() => {
      const rc = (window as unknown as { rcmail?: { busy?: boolean; message_list?: unknown } }).rcmail;
      return !!rc && !rc.busy && !!rc.message_list;
    }, { timeout: 60_000 });
    id = await p.mail.evaluate((u) => (window as unknown as { rcmail: { message_list: { rows: Record<string, { obj?: HTMLElement }> } } }).rcmail.message_list.rows[u]?.obj?.id ?? null, uid);
    if (!id && Date.now() > end) throw new Error(`no message with uid ${uid} in ${p.user.address}'s Roundcube inbox`);
  }
  await p.mail.click(`[id="${id}"]`);
  const frame = (await (await p.mail.waitForSelector(SELECTORS.previewFrame, { visible: true }))!.contentFrame())!;
  await frame.waitForFunction((u) => location.href.includes(`_uid=${u}`) && !!document.querySelector('#messagebody'), { timeout: 60_000 }, uid);
  return frame;
}

async function openFullView(p: Person, uid: number): Promise<void> {
  await p.mail.goto(`${stack.urls.roundcube}?_task=mail&_action=show&_uid=${uid}&_mbox=INBOX`);
  await p.mail.waitForSelector(SELECTORS.messageBody);
}

const readerState = (where: Page | Frame, state: string) => frameState(where, 'reader', state);


async function install(p: Person, delivery: 'default' | 'pgp-mime'): Promise<void> {
  // With no key the options page is the guided first run: key, safety copies, word, site, then the list.
  const page = await extensionPage(p, 'options', '[data-test=guide][data-test-state=key]');
  await page.locator('[data-test=key-name]').fill(p.name);
  await page.locator('[data-test=key-address]').fill(p.user.address);
  await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
  await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
  await page.click('[data-test=create-key-submit]');
  await page.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: 90_000 });
  await page.click('[data-test=guide-next]');
  await page.locator('[data-test=indicator-word]').fill(`${p.name.toLowerCase()}-word`);
  await page.click('[data-test=indicator-save]');
  await page.waitForSelector('[data-test=security-indicator][data-test-state=chosen]');
  // Firefox's real optional-permission request for Roundcube's (and the list server's) host.
  await page.locator('[data-test=site-input]').fill('http://127.0.0.1');
  await page.click('[data-test=site-add]');
  await page.waitForSelector('[data-test=guide][data-test-state=list]');
  await page.click('[data-test=guide-next]');
  await page.click('[data-test=guide-finish]');
  await page.waitForSelector('[data-test=key][data-test-state=present]', { timeout: 60_000 });
  p.fingerprint = (await page.$eval('[data-test=key-fingerprint]', (e) => e.textContent))!.replace(/ /g, '');
  p.publicKey = await page.$eval('[data-test=public-key]', (e) => (e as HTMLTextAreaElement).value);
  await page.waitForSelector('[data-test=site][data-site="http://127.0.0.1"]');
  await page.locator('[data-test=list-address]').fill(stack.listAddress);
  await page.locator('[data-test=list-server]').fill(stack.urls.api);
  await page.click('[data-test=list-lookup]');
  await page.waitForSelector('[data-test=list-candidate][data-test-state=new]');
  expect((await page.$eval('[data-test=candidate-fingerprint]', (e) => e.textContent))!.replace(/ /g, '')).toBe(list.fingerprint);
  await page.click('[data-test=list-pin]');
  await page.waitForSelector(`[data-test=list-row][data-list="${stack.listAddress}"][data-test-state=pinned]`);
  expect(await page.$eval('[data-test=delivery]', (e) => (e as HTMLSelectElement).value)).toBe('inline');
  if (delivery === 'pgp-mime') await page.select('[data-test=delivery]', 'pgp-mime');
  await page.click('[data-test=subscribe]');
  await page.waitForSelector(`[data-test=list-row][data-list="${stack.listAddress}"][data-test-state=confirmation-sent]`);
  // Mail decrypts on a click by default; this story reads by keyboard and full view, so the list decrypts at once.
  const auto = `[data-test=list-row][data-list="${stack.listAddress}"] [data-test=auto-decrypt]`;
  await page.click(auto);
  await page.waitForFunction((sel) => (document.querySelector(sel) as HTMLInputElement).checked, {}, auto);
  await page.close();
}

/** `form`: the delivery form chosen at subscription, which the confirmation mail comes in. */
async function confirmInRoundcube(p: Person, form: 'inline' | 'pgp-mime'): Promise<void> {
  p.confirmation = await waitForMail(stack, p.user, (m) => m.subject.startsWith('Confirm your subscription'), `${p.name}'s confirmation mail`);
  await login(p);
  const preview = await openInPreview(p, p.confirmation.uid);
  const frame = await readerState(preview, 'decrypted');
  // PGP/MIME: placed from the encrypted.asc attachment; inline: from the text.
  expect(await frame.evaluate((f) => f.getAttribute('data-letterlock-source'))).toBe(form === 'pgp-mime' ? 'attachment' : null);
  expect(await frame.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
  await shot(p.mail, `01-${p.name.toLowerCase()}-confirmation`);
  // The reader's only control is "Confirm subscription".
  // Once more if the first press did not take: the reader refuses a press on a control it has
  // not yet seen shown for long enough (its click-jacking guard, which a loaded machine can
  // trip), and the button stays for another try; once confirmed, the button is gone.
  for (let attempt = 1; ; attempt++) {
    await focusInFrame(p.mail, frame, 1);
    await p.mail.keyboard.press('Enter');
    try {
      await preview.waitForSelector('iframe[data-letterlock="reader"][data-test-step="confirmed"]', { timeout: 30_000 });
      break;
    } catch (e) {
      if (attempt >= 2) throw e;
    }
  }
  const options = await extensionPage(p, 'options', `[data-test=list-row][data-list="${stack.listAddress}"][data-test-state=member]`);
  await options.close();
}

/** Writes with the composer beside Roundcube's body box, by keyboard; checks only ciphertext reached the page. */
async function writeWithComposer(p: Person, subject: string, text: string, screenshot: string): Promise<void> {
  const page = p.mail;
  await page.bringToFront(); // keyboard input goes to the active tab only
  await (await page.waitForSelector(`${SELECTORS.body} ~ [data-letterlock=compose-button]`))!.click();
  const composer = (await page.waitForSelector('iframe[data-letterlock="composer"][data-test-state="ready"]', { timeout: 30_000 }))!;
  await focusInFrame(page, composer, 2); // the list, then the subject
  await page.keyboard.type(subject);
  await page.keyboard.press('Tab');
  await page.keyboard.type(text);
  await shot(page, screenshot);
  // Back to the subject, where Enter sends the form (the attachments' file chooser follows the message).
  await page.keyboard.down('Shift');
  await page.keyboard.press('Tab');
  await page.keyboard.up('Shift');
  await page.keyboard.press('Enter');
  // A reply's box already holds quoted ciphertext: wait for only the new armored post, and the composer gone.
  await page.waitForFunction((sel) => (document.querySelector(sel) as HTMLTextAreaElement).value.startsWith('-----BEGIN PGP MESSAGE-----') && !document.querySelector('iframe[data-letterlock="composer"]'), { timeout: 30_000 }, SELECTORS.body);
  const armored = await page.$eval(SELECTORS.body, (e) => (e as HTMLTextAreaElement).value);
  expect(armored.trimEnd().endsWith('-----END PGP MESSAGE-----')).toBe(true);
  expect(armored).not.toContain(MARKER);
  expect(await page.evaluate(() => document.documentElement.outerHTML)).not.toContain(MARKER);
}

async function send(p: Person): Promise<void> {
  await Promise.all([
    p.mail.waitForFunction(() => !/_action=compose/.test(location.href), { timeout: 30_000 }),
    p.mail.click(SELECTORS.send),
  ]);
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  let t = Date.now();
  // Settled one by one, so what did start is stopped in afterAll even when the other failed.
  const [built, up] = await Promise.allSettled([buildExtension('firefox'), startMailStack()]);
  if (built.status === 'fulfilled') extDir = built.value;
  if (up.status === 'fulfilled') stack = up.value;
  for (const r of [built, up]) if (r.status === 'rejected') throw r.reason;
  timings.setup = Date.now() - t;
  list = await listInfo(stack);
  gpg = new Gpg();
  t = Date.now();
  const [a, b] = await Promise.allSettled([launch('Alice', stack.users.alice!), launch('Bob', stack.users.bob!)]);
  if (a.status === 'fulfilled') alice = a.value;
  if (b.status === 'fulfilled') bob = b.value;
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
  timings.browsers = Date.now() - t;
}, 240_000);

afterAll(async () => {
  for (const p of [alice, bob]) await p?.browser.close().catch(() => {});
  gpg?.cleanup();
  await stack?.stop();
  removeDir(extDir);
  for (const p of [alice, bob]) removeDir(p?.profile);
  console.log(`[story-firefox] total ${Date.now() - started} ms; ${JSON.stringify(timings)}`);
});

describe('the story in Roundcube with the extension in Firefox ESR', () => {
  it('1. Alice and Bob install the extension, create keys, subscribe, and confirm from the mail in Roundcube; Dave subscribes with gpg', async () => {
    const t = Date.now();
    const daveDone = subscribeWithGpg(stack, gpg, stack.users.dave!, 'Dave');
    await Promise.all([install(alice, 'pgp-mime'), install(bob, 'default')]);
    await Promise.all([confirmInRoundcube(alice, 'pgp-mime'), confirmInRoundcube(bob, 'inline')]);
    dave = await daveDone;
    timings.step1 = Date.now() - t;
  }, 180_000);

  it('2. Alice writes the post with the composer in Roundcube (keyboard) and sends it from Roundcube', async () => {
    expect(alice.confirmation && bob.confirmation, 'step 1 ran').toBeTruthy();
    const t = Date.now();
    const page = alice.mail;
    await page.goto(`${stack.urls.roundcube}?_task=mail&_action=compose`);
    await page.waitForSelector(SELECTORS.body, { visible: true, timeout: 60_000 });
    const to = (await page.waitForSelector(SELECTORS.recipientInput))!;
    await to.click();
    await to.type(stack.listAddress);
    await page.keyboard.press('Enter');
    await page.waitForFunction((sel, a) => (document.querySelector(sel) as HTMLTextAreaElement).value.includes(a), {}, SELECTORS.toField, stack.listAddress);
    await writeWithComposer(alice, SUBJECT, BODY, '02-alice-composer');
    expect(await page.$eval(SELECTORS.subject, (e) => (e as HTMLInputElement).value)).toBe('...');
    await shot(page, '03-alice-compose-filled');
    await send(alice);
    const sent = (await fetchAll(stack, alice.user, 'Sent')).at(-1)!;
    expect(sent.raw.toString('utf8')).toMatch(/^X-Sender: alice@example\.test/m); // Roundcube's own header
    expect(findMarker(sent.raw, MARKER)).toBeNull();
    timings.step2 = Date.now() - t;
  }, 90_000);

  it('3. the post reaches Bob through Postfix, the list server and Dovecot; he reads it in Roundcube, verified, and its plaintext in the archive', async () => {
    const t = Date.now();
    const copy = await waitForMail(stack, bob.user, (m) => m.uid > bob.confirmation!.uid && m.raw.includes('List-Id'), "Bob's copy", 45_000);
    expect(copy.raw.toString('latin1')).toMatch(/^Content-Type: text\/plain/m); // inline, for webmail
    expect(findMarker(copy.raw, MARKER)).toBeNull();
    const preview = await openInPreview(bob, copy.uid);
    const frame = await readerState(preview, 'decrypted');
    expect(await frame.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    expect(await frame.evaluate((f) => f.getAttribute('data-letterlock-source'))).toBeNull();
    expect(await preview.evaluate(() => document.documentElement.outerHTML)).not.toContain(MARKER);
    await shot(bob.mail, '04-bob-reads-in-preview');

    // The words themselves: the archive viewer is an extension page the driver can read.
    const archive = await extensionPage(bob, 'archive', '[data-test=archive-list] option');
    await archive.click('[data-test=archive-sign-in]');
    await archive.waitForSelector('[data-test=archive][data-test-state=signed-in]');
    const row = await archive.waitForSelector(`[data-test=archive-message][data-test-state=decrypted] ::-p-text(${MARKER})`);
    await row!.click();
    await archive.waitForSelector('[data-test=archive-view][data-test-state=decrypted]');
    expect(await archive.$eval('[data-test=archive-view] [data-test=subject]', (e) => e.textContent)).toBe(SUBJECT);
    expect(await archive.$eval('[data-test=archive-view] [data-test=plaintext]', (e) => e.textContent)).toContain(BODY);
    expect(await archive.$eval('[data-test=archive-view] [data-test=signature]', (e) => e.getAttribute('data-test-state'))).toBe('verified');
    expect(await archive.$eval('[data-test=archive-view] [data-test=from]', (e) => e.textContent)).toContain(alice.user.address);
    await shot(archive, '05-bob-archive');
    await archive.close();

    // Alice chose PGP/MIME: her copy shows in Roundcube's full view from the encrypted.asc attachment.
    const own = await waitForMail(stack, alice.user, (m) => m.uid > alice.confirmation!.uid && m.raw.includes('List-Id'), "Alice's copy", 30_000);
    expect(own.raw.toString('latin1')).toMatch(/Content-Type: multipart\/encrypted/i);
    await openFullView(alice, own.uid);
    const full = await readerState(alice.mail, 'decrypted');
    expect(await full.evaluate((f) => f.getAttribute('data-letterlock-source'))).toBe('attachment');
    expect(await full.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    await shot(alice.mail, '06-alice-full-view-pgp-mime');
    timings.step3 = Date.now() - t;
  }, 120_000);

  it("4-5. Carol, not a member, is refused at the archive's log-in; Dave's gpg shows the post with Alice's good signature", async () => {
    expect([401, 403]).toContain((await archiveLogin(stack, await makeKey(stack.users.carol!.address))).status);
    const copy = await waitForMail(stack, stack.users.dave!, (m) => m.uid > dave.confirmation.uid, "Dave's copy", 30_000);
    const read = await gpgRead(gpg, copy.raw, alice.publicKey);
    expect(read.goodsig).toContain(alice.user.address);
    expect(read.validFingerprint).toBe(alice.fingerprint);
    expect(read.subject).toBe(SUBJECT);
    expect(read.text).toContain(BODY);
  }, 60_000);

  it('6. Bob replies from Roundcube through the composer; Alice reads the reply in the full view; the archive threads both', async () => {
    const t = Date.now();
    const page = bob.mail;
    await page.bringToFront();
    await page.click(SELECTORS.reply); // the post is still open in Bob's preview
    await page.waitForSelector(SELECTORS.body, { visible: true, timeout: 60_000 });
    expect(await page.$eval(SELECTORS.subject, (e) => (e as HTMLInputElement).value)).toBe('Re: ...');
    expect(await page.$eval(SELECTORS.toField, (e) => (e as HTMLTextAreaElement).value)).toContain(stack.listAddress);
    await writeWithComposer(bob, REPLY_SUBJECT, REPLY_BODY, '07-bob-composer-reply');
    expect(await page.$eval(SELECTORS.subject, (e) => (e as HTMLInputElement).value)).toBe('Re: ...');
    await send(bob);

    const copy = await waitForMail(stack, alice.user, (m) => m.raw.includes('List-Id') && /^In-Reply-To:/m.test(m.raw.toString('latin1')), "Alice's copy of the reply", 45_000);
    await openFullView(alice, copy.uid);
    const full = await readerState(alice.mail, 'decrypted');
    expect(await full.evaluate((f) => f.getAttribute('data-letterlock-source'))).toBe('attachment');
    expect(await full.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    await shot(alice.mail, '08-alice-reads-reply');

    const archive = await extensionPage(alice, 'archive', '[data-test=archive-list] option');
    await archive.click('[data-test=archive-sign-in]');
    await archive.waitForSelector('[data-test=archive][data-test-state=signed-in]');
    // Both posts decrypted in the list; then open the reply.
    await archive.waitForFunction((a, b) => {
      const texts = [...document.querySelectorAll('[data-test=archive-message][data-test-state=decrypted]')].map((e) => e.textContent ?? '');
      return texts.some((t) => t.includes(a) && !t.startsWith('↳')) && texts.some((t) => t.includes(b));
    }, { timeout: 30_000 }, SUBJECT, REPLY_SUBJECT);
    await archive.$$eval('[data-test=archive-message]', (els, b) => {
      (els.find((e) => (e.textContent ?? '').includes(b))!.querySelector('[data-test=archive-open]') as HTMLElement).click();
    }, REPLY_SUBJECT);
    await archive.waitForSelector('[data-test=archive-view][data-test-state=decrypted]');
    expect(await archive.$eval('[data-test=archive-view] [data-test=subject]', (e) => e.textContent)).toBe(REPLY_SUBJECT);
    expect(await archive.$eval('[data-test=archive-view] [data-test=signature]', (e) => e.getAttribute('data-test-state'))).toBe('verified');
    const rows = await archive.$$eval('[data-test=archive-message]', (els) => els.map((e) => ({ id: e.getAttribute('data-id'), thread: e.getAttribute('data-thread'), text: e.textContent ?? '' })));
    const post = rows.find((r) => r.text.includes(SUBJECT))!;
    const reply = rows.find((r) => r.text.includes(REPLY_SUBJECT))!;
    expect(post.thread).toBe(post.id); // the post is the thread's root, the reply under it
    expect(reply.thread).toBe(post.id);
    expect(reply.text.startsWith('↳')).toBe(true);
    await shot(archive, '09-alice-archive-thread');
    await archive.close();
    timings.step6 = Date.now() - t;
  }, 120_000);

  it("7. the stack's files hold the post's plaintext nowhere", async () => {
    for (const p of [alice, bob]) await p.browser.close();
    await stack.stop({ remove: false });
    expect(readFileSync(stack.folders.roundcubeDb).byteLength).toBeGreaterThan(0);
    scanStack(stack, MARKER, SUBJECT, { extraRoots: [gpg.home], mailboxes: ['alice', 'bob', 'dave'] });
  }, 60_000);
});
