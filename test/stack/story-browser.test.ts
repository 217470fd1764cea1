// The whole story in real webmail: the built extension in real headless Chromium,
// one browser profile each for Alice and Bob, on the real stack (Postfix, Dovecot,
// Roundcube, the list server). They create keys and subscribe from the extension
// and confirm from the encrypted confirmation mail in Roundcube (PGP/MIME: the
// extension fetches the encrypted.asc attachment); Alice writes a post with the
// composer in Roundcube's compose page and sends it from Roundcube; Bob reads it
// in place (inline delivery) and in the archive; Carol's archive log-in is refused;
// Dave reads his copy with gpg; Bob replies from Roundcube and Alice reads the
// reply in the full view (PGP/MIME); the archive threads both; and no file of the
// stack holds the plaintext. Screenshots: test-artifacts/stack-story/.

import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Frame, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMarker, listFiles } from '../integration/server/scan.ts';
import { buildExtension, clickInReader, decryptInReader, PASSPHRASE, removeDir } from '../browser/extension-kit.ts';
import { Gpg } from '../support/gpg.ts';
import { makeKey } from '../support/keys.ts';
import { fetchAll, waitForMail, type FetchedMail } from './imap.ts';
import { startMailStack, type MailStack, type StackUser } from './mailstack.ts';
import { fillCompose, login, openCompose, openFullView, openInPreview, reply, SELECTORS, sendCompose } from './roundcube.ts';
import { archiveLogin, gpgRead, listInfo, scanStack, subscribeWithGpg } from './story-kit.ts';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'stack-story');
const MARKER = `LLSTORY-${randomUUID()}`;
const SUBJECT = `Grüße vom Stammtisch ✉ ${MARKER}`;
const BODY = `Liebe Liste,\n\nÄpfel, Öl und Čevapčići — ${MARKER} — 日本語のテキスト.\n\nAlice`;
const REPLY_SUBJECT = `Re: Grüße vom Stammtisch — ${MARKER}`;
const REPLY_BODY = `Danke Alice! Ich bringe Käse mit. ${MARKER}-antwort\n\nBob`;

interface Person {
  name: string;
  user: StackUser;
  word: string;
  profile: string;
  ctx: BrowserContext;
  extBase: string;
  /** The Roundcube tab. */
  mail: Page;
  fingerprint: string;
  publicKey: string;
  confirmation: FetchedMail | null;
}

let stack: MailStack;
let extDir: string;
let gpg: Gpg;
let alice: Person, bob: Person;
let dave: { fingerprint: string; confirmation: FetchedMail };
let list: { fingerprint: string; armored: string };
const started = Date.now();
const timings: Record<string, number> = {};

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function launch(name: string, user: StackUser, word: string): Promise<Person> {
  const profile = mkdtempSync(join(tmpdir(), `letterlock-story-${name}-`));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: false,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless=new', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
    const extBase = `chrome-extension://${new URL(sw.url()).host}/`;
    const mail = ctx.pages()[0] ?? (await ctx.newPage());
    return { name, user, word, profile, ctx, extBase, mail, fingerprint: '', publicKey: '', confirmation: null };
  } catch (e) {
    await ctx.close();
    removeDir(profile);
    throw e;
  }
}

async function extensionPage(p: Person, path: string): Promise<Page> {
  const page = await p.ctx.newPage();
  const url = `${p.extBase}extension/pages/${path}/index.html`;
  // On install the extension opens its options page itself, and Chromium may take this new tab
  // for it: our navigation is then "interrupted by another navigation" to the same page.
  await page.goto(url).catch(async (e: unknown) => {
    if (!/interrupted by another navigation/.test(String(e))) throw e;
    await page.waitForURL(url, { timeout: 30_000 });
  });
  return page;
}

/** Mail is decrypted on a click by default (issue 12): the reader's "Decrypt" button, then the message. */
const decryptIn = (reader: FrameLocator): Promise<void> => decryptInReader(reader);

/** The reader frame the extension placed in Roundcube's preview frame (or in the page: full view). */
function readerIn(page: Page, where: 'preview' | 'page'): FrameLocator {
  const doc = where === 'preview' ? page.frameLocator(SELECTORS.previewFrame) : page;
  return doc.frameLocator('iframe[data-letterlock="reader"]');
}

/**
 * What the webmail page itself can reach: its documents' HTML (our frames are
 * cross-origin, so their text is not in it) and whether it can open our frame.
 */
async function pageSees(doc: Page | Frame): Promise<{ html: string; frameAccess: string[] }> {
  return doc.evaluate(() => ({
    html: document.documentElement.outerHTML + [...document.querySelectorAll('textarea, input')].map((e) => (e as HTMLInputElement).value).join('\n'),
    frameAccess: [...document.querySelectorAll('iframe[data-letterlock]')].map((f) => {
      try {
        return (f as HTMLIFrameElement).contentDocument ? 'read' : 'null';
      } catch {
        return 'blocked';
      }
    }),
  }));
}

/** Options page: indicator, a new key, Roundcube's site allowed, the list looked up and pinned, then subscribed. */
async function install(p: Person, delivery: 'default' | 'pgp-mime'): Promise<void> {
  // With no key the options page is the guided first run: key, safety copies, word, site, then the list.
  const page = await extensionPage(p, 'options');
  await page.locator('[data-test=guide][data-test-state=key]').waitFor({ timeout: 30_000 });
  await page.fill('[data-test=key-name]', p.name);
  await page.fill('[data-test=key-address]', p.user.address);
  await page.fill('[data-test=key-passphrase]', PASSPHRASE);
  await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
  await page.click('[data-test=create-key-submit]');
  await page.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: 90_000 });
  await page.click('[data-test=guide-next]');
  await page.fill('[data-test=indicator-word]', p.word);
  await page.click('[data-test=indicator-save]');
  await page.locator('[data-test=security-indicator][data-test-state=chosen]').waitFor();
  // Roundcube and the list server both run on 127.0.0.1 (access is per host).
  await page.fill('[data-test=site-input]', 'http://127.0.0.1');
  await page.click('[data-test=site-add]');
  await page.locator('[data-test=guide][data-test-state=list]').waitFor();
  await page.click('[data-test=guide-next]');
  await page.click('[data-test=guide-finish]');
  await page.locator('[data-test=key][data-test-state=present]').waitFor({ timeout: 60_000 });
  p.fingerprint = (await page.textContent('[data-test=key-fingerprint]'))!.replace(/ /g, '');
  p.publicKey = await page.inputValue('[data-test=public-key]');
  expect(p.fingerprint).toMatch(/^[0-9A-F]{40}$/);
  await page.locator('[data-test=site][data-site="http://127.0.0.1"]').waitFor();

  await page.fill('[data-test=list-address]', stack.listAddress);
  await page.fill('[data-test=list-server]', stack.urls.api);
  await page.click('[data-test=list-lookup]');
  await page.locator('[data-test=list-candidate][data-test-state=new]').waitFor();
  expect((await page.textContent('[data-test=candidate-fingerprint]'))!.replace(/ /g, '')).toBe(list.fingerprint);
  await page.click('[data-test=list-pin]');
  const row = page.locator(`[data-test=list-row][data-list="${stack.listAddress}"]`);
  await row.and(page.locator('[data-test-state=pinned]')).waitFor();
  // With a webmail site allowed, the extension proposes inline delivery.
  expect(await page.getAttribute('[data-test=delivery]', 'data-test-default')).toBe('inline');
  expect(await page.inputValue('[data-test=delivery]')).toBe('inline');
  if (delivery === 'pgp-mime') await page.selectOption('[data-test=delivery]', 'pgp-mime');
  await shot(page, `01-${p.name.toLowerCase()}-options-before-subscribing`);
  await page.click('[data-test=subscribe]');
  await row.and(page.locator('[data-test-state=confirmation-sent]')).waitFor();
  await page.close();
}

/** In Roundcube: open the confirmation mail (in the form chosen at subscription) in the preview, read it in the reader frame, confirm with one click. */
async function confirmInRoundcube(p: Person, form: 'inline' | 'pgp-mime'): Promise<void> {
  p.confirmation = await waitForMail(stack, p.user, (m) => m.subject.startsWith('Confirm your subscription'), `${p.name}'s confirmation mail`);
  expect(p.confirmation.raw.toString('latin1')).toMatch(form === 'pgp-mime' ? /Content-Type: multipart\/encrypted/i : /^Content-Type: text\/plain/im);
  await login(p.mail, stack.urls.roundcube!, p.user);
  const preview = await openInPreview(p.mail, { uid: p.confirmation.uid });
  const reader = readerIn(p.mail, 'preview');
  await decryptIn(reader);
  // PGP/MIME: placed from the encrypted.asc attachment Roundcube could not show; inline: from the text.
  expect(await preview.getAttribute('iframe[data-letterlock="reader"]', 'data-letterlock-source')).toBe(form === 'pgp-mime' ? 'attachment' : null);
  expect(await preview.locator(`${SELECTORS.encryptedNotice}`).isVisible()).toBe(false);
  expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
  expect(await reader.locator('[data-test=subject]').textContent()).toBe(`Confirm your subscription to ${stack.listAddress}`);
  expect(await reader.locator('[data-test=security-word]').first().textContent()).toBe(p.word);
  await shot(p.mail, `02-${p.name.toLowerCase()}-confirmation-in-roundcube`);
  await clickInReader(reader, '[data-test=confirm-subscription]', reader.locator('[data-test=confirm][data-test-state=confirmed]'));
  await shot(p.mail, `03-${p.name.toLowerCase()}-confirmed`);
  const options = await extensionPage(p, 'options');
  await options.locator(`[data-test=list-row][data-list="${stack.listAddress}"][data-test-state=member]`).waitFor();
  await options.close();
}

/** Writes with the composer beside Roundcube's body box; returns the armored text it put there. */
async function writeWithComposer(p: Person, subject: string, text: string): Promise<string> {
  const page = p.mail;
  // One button, beside the visible body box (not beside Roundcube's hidden recipient textareas).
  await page.locator(`${SELECTORS.body} ~ [data-letterlock=compose-button]`).waitFor();
  expect(await page.locator('[data-letterlock=compose-button]').count()).toBe(1);
  await page.locator(`${SELECTORS.body} ~ [data-letterlock=compose-button]`).click();
  const composer = page.frameLocator('iframe[data-letterlock="composer"]');
  await composer.locator('[data-test=composer][data-test-state=ready]').waitFor();
  expect(await composer.locator('[data-test=composer-list]').inputValue()).toBe(stack.listAddress);
  await composer.locator('[data-test=composer-subject]').fill(subject);
  await composer.locator('[data-test=composer-text]').fill(text);
  const seen = await pageSees(page);
  expect(seen.frameAccess).toEqual(['null']);
  expect(seen.html).not.toContain(MARKER);
  await shot(page, `${p === alice ? '04' : '11'}-${p.name.toLowerCase()}-composer-in-roundcube`);
  await composer.locator('[data-test=composer-send]').click();
  // A reply's box already holds the quoted ciphertext: wait for the box to be only the new armored post, and the composer gone.
  await page.waitForFunction((sel) => {
    const v = (document.querySelector(sel) as HTMLTextAreaElement).value;
    return v.startsWith('-----BEGIN PGP MESSAGE-----') && v.trimEnd().endsWith('-----END PGP MESSAGE-----') && !document.querySelector('iframe[data-letterlock="composer"]');
  }, SELECTORS.body);
  const armored = await page.inputValue(SELECTORS.body);
  expect(armored.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
  expect((await pageSees(page)).html).not.toContain(MARKER);
  return armored;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  let t = Date.now();
  // Chromium cannot answer a permission prompt under automation: the test build holds 127.0.0.1 (see extension/manifest.ts).
  // Settled one by one, so what did start is stopped in afterAll even when the other failed.
  const [built, up] = await Promise.allSettled([buildExtension('chrome', ['http://127.0.0.1/*']), startMailStack()]);
  if (built.status === 'fulfilled') extDir = built.value;
  if (up.status === 'fulfilled') stack = up.value;
  for (const r of [built, up]) if (r.status === 'rejected') throw r.reason;
  timings.setup = Date.now() - t;
  list = await listInfo(stack);
  gpg = new Gpg();
  t = Date.now();
  const [a, b] = await Promise.allSettled([launch('Alice', stack.users.alice!, 'otter'), launch('Bob', stack.users.bob!, 'heron')]);
  if (a.status === 'fulfilled') alice = a.value;
  if (b.status === 'fulfilled') bob = b.value;
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
  timings.browsers = Date.now() - t;
}, 240_000);

afterAll(async () => {
  for (const p of [alice, bob]) await p?.ctx.close().catch(() => {});
  gpg?.cleanup();
  if (process.env.STACK_DEBUG && stack) console.log(readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8'), readFileSync(join(stack.folders.listData, 'logs', 'server.log'), 'utf8'));
  await stack?.stop();
  removeDir(extDir);
  for (const p of [alice, bob]) removeDir(p?.profile);
  console.log(`[story-browser] total ${Date.now() - started} ms; ${JSON.stringify(timings)}`);
});

describe('the story in Roundcube with the extension in Chromium', () => {
  it('1. Alice and Bob install the extension, create keys, subscribe, and confirm from the mail in their Roundcube inbox; Dave subscribes with gpg', async () => {
    const t = Date.now();
    const daveDone = subscribeWithGpg(stack, gpg, stack.users.dave!, 'Dave');
    // Bob keeps the proposed inline delivery (webmail); Alice also reads in a mail program: PGP/MIME.
    await Promise.all([install(alice, 'pgp-mime'), install(bob, 'default')]);
    await Promise.all([confirmInRoundcube(alice, 'pgp-mime'), confirmInRoundcube(bob, 'inline')]);
    dave = await daveDone;
    timings.step1 = Date.now() - t;
  }, 180_000);

  let postMessageId = '';
  it('2. Alice writes the post with the composer in Roundcube and sends it from Roundcube to the list', async () => {
    expect(alice.confirmation && bob.confirmation && dave, 'step 1 ran').toBeTruthy();
    const t = Date.now();
    await openCompose(alice.mail);
    await fillCompose(alice.mail, { to: [stack.listAddress] });
    const armored = await writeWithComposer(alice, SUBJECT, BODY);
    expect(armored).not.toContain(MARKER);
    // The real subject is inside the encryption; Roundcube's field holds the placeholder.
    expect(await alice.mail.inputValue(SELECTORS.subject)).toBe('...');
    await shot(alice.mail, '05-alice-compose-filled-with-ciphertext');
    await sendCompose(alice.mail);
    await shot(alice.mail, '06-alice-sent');
    // Roundcube kept its Sent copy: the armored text with the placeholder subject, in Roundcube's own headers.
    const sent = (await fetchAll(stack, alice.user, 'Sent')).at(-1)!;
    const sentText = sent.raw.toString('utf8');
    expect(sentText).toMatch(/^X-Sender: alice@example\.test/m);
    expect(sent.subject).toBe('...');
    expect(sentText).toContain('-----BEGIN PGP MESSAGE-----');
    expect(findMarker(sent.raw, MARKER)).toBeNull();
    postMessageId = /^Message-ID: (<[^>]+>)/im.exec(sentText)![1]!;
    timings.step2 = Date.now() - t;
  }, 90_000);

  let bobCopy: FetchedMail;
  it('3. the post goes Roundcube → Postfix → list server → Postfix → Dovecot; Bob reads it decrypted in place, signed by Alice (verified)', async () => {
    const t = Date.now();
    bobCopy = await waitForMail(stack, bob.user, (m) => m.uid > bob.confirmation!.uid && m.raw.includes('List-Id'), "Bob's copy of Alice's post", 45_000);
    timings.travel = Date.now() - t;
    const maillog = readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8');
    expect(maillog).toMatch(new RegExp(`to=<${stack.listAddress}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.ports.listSmtp},.* status=sent`));
    expect(maillog).toMatch(new RegExp(`to=<${bob.user.address}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.ports.lmtp},.* status=sent`));
    const raw = bobCopy.raw.toString('latin1');
    expect(raw).toMatch(/by mx\.example\.test \(Postfix\)/);
    // The list's copy goes by the Message-ID signed inside the post (the one readers see and
    // reply to), not by the outer one Roundcube gave the mail it sent.
    expect(postMessageId).not.toBe('');
    expect(raw).toMatch(/^Message-ID: <[^>\s]+>\r?$/m);
    expect(raw).not.toContain(`Message-ID: ${postMessageId}`);
    // Bob chose webmail: an inline armored text/plain body, which Roundcube shows as text.
    expect(raw).toMatch(/^Content-Type: text\/plain/m);
    expect(raw).toContain('-----BEGIN PGP MESSAGE-----');
    expect(findMarker(bobCopy.raw, MARKER)).toBeNull();

    const preview = await openInPreview(bob.mail, { uid: bobCopy.uid });
    const reader = readerIn(bob.mail, 'preview');
    await decryptIn(reader);
    expect(await preview.getAttribute('iframe[data-letterlock="reader"]', 'data-letterlock-source')).toBeNull(); // from the text, not an attachment
    expect(await reader.locator('[data-test=subject]').textContent()).toBe(SUBJECT);
    expect(await reader.locator('[data-test=plaintext]').textContent()).toContain('Äpfel, Öl und Čevapčići');
    expect(await reader.locator('[data-test=plaintext]').textContent()).toContain(MARKER);
    expect(await reader.locator('[data-test=from]').textContent()).toContain(alice.user.address);
    expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    expect((await reader.locator('[data-test=signer-fingerprint]').textContent())!.replace(/ /g, '')).toBe(alice.fingerprint);
    expect(await reader.locator('[data-test=security-word]').first().textContent()).toBe('heron');
    // The page holds the ciphertext (hidden) and our frame; it can read neither the frame nor the plaintext.
    for (const doc of [bob.mail, preview]) {
      const seen = await pageSees(doc);
      expect(seen.html).not.toContain(MARKER);
      for (const a of seen.frameAccess) expect(['null', 'blocked']).toContain(a);
    }
    await shot(bob.mail, '07-bob-reads-post-in-roundcube-preview');
    timings.step3 = Date.now() - t;
  }, 90_000);

  it('4. Bob reads the same post in the archive viewer; Carol, not a member, is refused at log-in', async () => {
    const archive = await extensionPage(bob, 'archive');
    await archive.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive][data-test-state=signed-in]').waitFor();
    const row = archive.locator('[data-test=archive-message][data-test-state=decrypted]', { hasText: SUBJECT });
    await row.waitFor();
    await row.locator('[data-test=archive-open]').click();
    const view = archive.locator('[data-test=archive-view][data-test-state=decrypted]');
    await view.waitFor();
    expect(await view.locator('[data-test=plaintext]').textContent()).toContain(MARKER);
    expect(await view.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    expect((await view.locator('[data-test=signer-fingerprint]').textContent())!.replace(/ /g, '')).toBe(alice.fingerprint);
    await shot(archive, '08-bob-archive');
    await archive.close();

    const carol = await makeKey(stack.users.carol!.address);
    const refused = await archiveLogin(stack, carol);
    expect([401, 403]).toContain(refused.status);
    writeFileSync(join(ARTIFACTS, '08b-carol-archive-login-refused.txt'), `HTTP ${refused.status} ${JSON.stringify(refused.body)}\n`);
    // Nor did the list send her anything.
    expect((await fetchAll(stack, stack.users.carol!)).filter((m) => m.raw.includes('List-Id'))).toEqual([]);
  }, 60_000);

  it("5. Dave's copy, fetched over IMAP, decrypts with gpg: the plaintext and Alice's good signature", async () => {
    const copy = await waitForMail(stack, stack.users.dave!, (m) => m.uid > dave.confirmation.uid, "Dave's copy", 30_000);
    expect(copy.raw.toString('latin1')).toMatch(/Content-Type: multipart\/encrypted/i); // the API's default: PGP/MIME
    const read = await gpgRead(gpg, copy.raw, alice.publicKey);
    expect(read.goodsig).toContain(alice.user.address);
    expect(read.validFingerprint).toBe(alice.fingerprint);
    expect(read.subject).toBe(SUBJECT);
    expect(read.text).toContain('日本語のテキスト');
    expect(read.from).toBe(alice.user.address);
    // This step's record (no browser): what gpg said.
    writeFileSync(join(ARTIFACTS, '09-dave-gpg.txt'), `gpg --decrypt of Dave's copy (IMAP uid ${copy.uid})\nGOODSIG ${read.goodsig}\nVALIDSIG ${read.validFingerprint}\nSubject: ${read.subject}\nFrom: ${read.from}\n`);
  }, 60_000);

  it('6. Bob replies from Roundcube through the composer; Alice reads the reply (PGP/MIME, full view); the archive threads both posts', async () => {
    const t = Date.now();
    await openInPreview(bob.mail, { uid: bobCopy.uid });
    await reply(bob.mail);
    expect(await bob.mail.inputValue(SELECTORS.toField)).toContain(stack.listAddress);
    expect(await bob.mail.inputValue(SELECTORS.subject)).toBe('Re: ...');
    await writeWithComposer(bob, REPLY_SUBJECT, REPLY_BODY);
    expect(await bob.mail.inputValue(SELECTORS.subject)).toBe('Re: ...'); // a reply's placeholder stays
    await sendCompose(bob.mail);

    const copy = await waitForMail(stack, alice.user, (m) => m.raw.includes('List-Id') && /^In-Reply-To:/m.test(m.raw.toString('latin1')), "Alice's copy of Bob's reply", 45_000);
    expect(copy.raw.toString('latin1')).toMatch(/Content-Type: multipart\/encrypted/i);
    await openFullView(alice.mail, { uid: copy.uid });
    const reader = readerIn(alice.mail, 'page');
    await decryptIn(reader);
    expect(await alice.mail.getAttribute('iframe[data-letterlock="reader"]', 'data-letterlock-source')).toBe('attachment');
    expect(await reader.locator('[data-test=subject]').textContent()).toBe(REPLY_SUBJECT);
    expect(await reader.locator('[data-test=plaintext]').textContent()).toContain('Ich bringe Käse mit');
    expect(await reader.locator('[data-test=signature]').getAttribute('data-test-state')).toBe('verified');
    expect((await reader.locator('[data-test=signer-fingerprint]').textContent())!.replace(/ /g, '')).toBe(bob.fingerprint);
    expect((await pageSees(alice.mail)).html).not.toContain(MARKER);
    await shot(alice.mail, '12-alice-reads-reply-full-view');

    const archive = await extensionPage(alice, 'archive');
    await archive.locator('[data-test=archive-list] option').first().waitFor({ state: 'attached' });
    await archive.click('[data-test=archive-sign-in]');
    await archive.locator('[data-test=archive][data-test-state=signed-in]').waitFor();
    const post = archive.locator('[data-test=archive-message][data-test-state=decrypted]', { hasText: SUBJECT });
    const answer = archive.locator('[data-test=archive-message][data-test-state=decrypted]', { hasText: REPLY_SUBJECT });
    await Promise.all([post.waitFor(), answer.waitFor()]);
    const thread = await post.getAttribute('data-thread');
    expect(await answer.getAttribute('data-thread')).toBe(thread);
    expect(thread).toBe(await post.getAttribute('data-id')); // the post is the thread's root, the reply under it
    expect(await answer.textContent()).toContain('↳');
    await shot(archive, '13-alice-archive-thread');
    await archive.close();
    timings.step6 = Date.now() - t;
  }, 120_000);

  it("7. no file of the stack (Roundcube's database, Postfix's queue, Dovecot's mailboxes, the list server's data) holds the post's plaintext", async () => {
    for (const p of [alice, bob]) await p.ctx.close();
    await stack.stop({ remove: false });
    expect(readFileSync(stack.folders.roundcubeDb).byteLength).toBeGreaterThan(0);
    // The post and the reply passed through: Roundcube kept the Sent copies of both (ciphertext).
    for (const u of ['alice', 'bob']) expect(listFiles(join(stack.folders.mail, u, 'Maildir', '.Sent')).filter((p) => /\/(cur|new)\//.test(p)).length).toBeGreaterThan(0);
    scanStack(stack, MARKER, SUBJECT, { extraRoots: [gpg.home], mailboxes: ['alice', 'bob', 'dave'] });
  }, 60_000);
});
