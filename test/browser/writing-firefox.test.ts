// Issue 12, "Writing", in real headless Firefox ESR (puppeteer-core over WebDriver
// BiDi) with the built extension, against the real list server. The reply is
// driven by keyboard, as a keyboard user would, and checked by the state words the
// frames report (test builds) and by what reaches the compose box and the list;
// the attachments test reaches into the composer frame itself. Checked here:
// - an inline confirmation (the form Carol chose) is found and confirmed;
// - "Reply to list" opens the composer for the reply; the draft is saved
//   encrypted (IndexedDB holds no plaintext), restored when the reply is opened
//   again, and deleted on send; the delivered copy decrypts to inner MIME with
//   In-Reply-To/References of the original, and the archive threads it.
// - attachments: the composer frame is reached as a frame of its own
//   (extensionFrameIn); files are set on its file input by WebDriver BiDi
//   input.setFiles and dropped on it as a drop event carrying files; too many
//   (dropped) and too large (chosen) are refused in words; one file chosen and
//   one dropped go out encrypted, and the delivered post, read with a member's
//   key, carries both byte for byte.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Frame, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, readMail, readPublicKey, signStatement, type ThreadPage } from '../../shared/index.ts';
import { armoredOf, buildExtension, extensionFrameIn, focusInFrame, frameState, launchFirefoxWithExtension, LIST, ListServerUnderTest, newFirefoxExtensionPage, PASSPHRASE, removeDir, Webmail } from './extension-kit.ts';
import { shootFirefox } from './screenshots.ts';

const CAROL = 'carol@example.org';
const UUID = randomUUID();
const BASE = `moz-extension://${UUID}/`;
const T = 60_000;
let extDir: string, profile: string, browser: Browser;
const site = new Webmail();
const list = new ListServerUnderTest();

async function openPage(path: string, ready: string): Promise<Page> {
  return newFirefoxExtensionPage(browser, `${BASE}extension/pages/${path}/index.html`, ready, { timeoutMs: Math.max(T, 90_000) });
}

async function messageFrame(page: Page): Promise<Frame> {
  const handle = await page.waitForSelector('#messagecontframe');
  return (await handle!.contentFrame())!;
}

async function showMail(body: string): Promise<Page> {
  site.messages = [body];
  const mail = await browser.newPage();
  await mail.setViewport({ width: 1280, height: 1000 });
  await mail.goto(site.allowedUrl);
  return mail;
}

async function decryptByKeyboard(mail: Page) {
  const frame = await frameState(await messageFrame(mail), 'reader', 'encrypted');
  await focusInFrame(mail, frame, 1);
  await mail.keyboard.press('Enter');
  return frameState(await messageFrame(mail), 'reader', 'decrypted');
}

/** Every record of the drafts database, read in an extension page (the background's origin). */
async function draftRecords(): Promise<Array<{ armored: string }>> {
  const page = await openPage('options', '[data-test=options]');
  try {
    return await page.evaluate(() => new Promise<Array<{ armored: string }>>((resolve, reject) => {
      const r = indexedDB.open('letterlock-drafts');
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('drafts')) return resolve([]);
        const get = db.transaction('drafts').objectStore('drafts').getAll();
        get.onsuccess = () => {
          db.close();
          resolve(get.result as Array<{ armored: string }>);
        };
        get.onerror = () => reject(get.error);
      };
    }));
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('firefox'), site.start(), list.start()]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-writing-firefox-'));
  browser = await launchFirefoxWithExtension(extDir!, profile, UUID);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('writing in Firefox', () => {
  it('a key, the site, and an inline confirmation found and confirmed by the reader', async () => {
    const page = await openPage('options', '[data-test=guide][data-test-state=key]');
    await page.locator('[data-test=key-name]').fill('Carol');
    await page.locator('[data-test=key-address]').fill(CAROL);
    await page.locator('[data-test=key-passphrase]').fill(PASSPHRASE);
    await page.locator('[data-test=key-passphrase-again]').fill(PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.waitForSelector('[data-test=guide][data-test-state=safety]', { timeout: T });
    await page.click('[data-test=guide-next]');
    await page.locator('[data-test=indicator-word]').fill('heron');
    await page.click('[data-test=indicator-save]');
    await page.locator('[data-test=site-input]').fill('http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.waitForSelector('[data-test=guide][data-test-state=list]', { timeout: T });
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.waitForSelector('[data-test=key][data-test-state=present]', { timeout: T });
    await page.locator('[data-test=list-address]').fill(LIST);
    await page.locator('[data-test=list-server]').fill(list.base);
    await page.click('[data-test=list-lookup]');
    await page.waitForSelector('[data-test=list-candidate][data-test-state=new]', { timeout: T });
    await page.click('[data-test=list-pin]');
    await page.waitForSelector(`[data-test=list-row][data-list="${LIST}"][data-test-state=pinned]`, { timeout: T });
    await page.select('[data-test=delivery]', 'inline');
    await page.click('[data-test=subscribe]');
    await page.waitForSelector(`[data-test=list-row][data-list="${LIST}"][data-test-state=confirmation-sent]`, { timeout: T });
    await page.close();

    const raw = (await list.mailTo(CAROL, 1)).toString('utf8');
    expect(raw.slice(0, raw.indexOf('\r\n\r\n'))).toMatch(/^Content-Type: text\/plain; charset=us-ascii$/m);
    const mail = await showMail(raw.slice(raw.indexOf('\r\n\r\n') + 4).replace(/\r\n/g, '\n'));
    const frame = await decryptByKeyboard(mail);
    expect(await frame.evaluate((f) => f.getAttribute('data-test-signature'))).toBe('verified');
    await focusInFrame(mail, frame, 1); // "Confirm subscription" (a confirmation offers no reply)
    await mail.keyboard.press('Enter');
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="confirmed"]', { timeout: T });
    await mail.close();
    const again = await openPage('options', `[data-test=list-row][data-list="${LIST}"][data-test-state=member]`);
    await again.close();
  });

  it('"Reply to list": quoted reply, draft kept encrypted and restored, threaded on the list and in the archive', async () => {
    const alice = list.alice;
    const marker = `FXREPLY-${Math.random().toString(36).slice(2)}`;
    const { key: listKey } = await readPublicKey((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json() as { listKey: { armored: string } }).listKey.armored);
    const root = await composePost({ message: { subject: 'Choir practice', from: { address: alice.address, name: 'Alice' }, to: [{ address: LIST }], text: 'Tuesday at eight.' }, senderKey: alice.privateKey, listKey });
    await list.postFromWebmail(alice.address, root.armored, { messageId: '<wm-fx-root@127.0.0.1>' });
    const copy = await armoredOf(await list.mailTo(CAROL, 2));

    const mail = await showMail(copy);
    const reader = await decryptByKeyboard(mail);
    await focusInFrame(mail, reader, 1); // "Reply to list" is the first control of a plain post
    await mail.keyboard.press('Enter');
    await (await messageFrame(mail)).waitForSelector('iframe[data-letterlock="reader"][data-test-step="reply-ready"]', { timeout: T });
    const composer = (await mail.waitForSelector('iframe[data-letterlock="composer"][data-test-state="ready"][data-test-signature="list"]', { timeout: T }))!;
    await focusInFrame(mail, composer, 2); // subject, then the message (the reply has no list choice)
    await mail.keyboard.type(`Count me in. ${marker} `);
    await mail.waitForSelector('iframe[data-letterlock="composer"][data-test-step="saved"]', { timeout: T });
    await shootFirefox(mail, 'composer-reply');
    const records = await draftRecords();
    expect(records).toHaveLength(1);
    const stored = JSON.stringify(records);
    for (const plain of [marker, 'Choir', 'Tuesday at eight', 'Count me in']) expect(stored).not.toContain(plain);
    expect(records[0]!.armored.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
    await mail.close();

    // Opened again for the same message: the draft comes back, and is what goes out.
    const again = await showMail(copy);
    const reader2 = await decryptByKeyboard(again);
    await focusInFrame(again, reader2, 1);
    await again.keyboard.press('Enter');
    const composer2 = (await again.waitForSelector('iframe[data-letterlock="composer"][data-test-state="ready"][data-test-step="restored"]', { timeout: T }))!;
    await focusInFrame(again, composer2, 1); // the subject: Enter there sends the form
    await again.keyboard.press('Enter');
    await again.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), { timeout: T });
    const armored = await again.$eval('#composebody', (e) => (e as HTMLTextAreaElement).value);
    expect(armored).not.toContain(marker);
    await again.close();
    expect(await draftRecords()).toHaveLength(0);

    const had = list.sink.to(alice.address).length;
    await list.postFromWebmail(CAROL, armored, { messageId: '<wm-fx-reply@127.0.0.1>' });
    const { read, innerHead: head } = await list.readByAlice(had + 1);
    expect(head).toContain(`In-Reply-To: ${root.messageId}`);
    expect(head).toContain(`References: ${root.messageId}`);
    expect(read.message.subject).toBe('Re: Choir practice');
    expect(read.message.text).toContain(marker);
    expect(read.message.text).toContain('Alice <alice@example.org> wrote:\n> Tuesday at eight.');

    const api = async <R>(path: string, body?: unknown, token?: string): Promise<R> => (await (await fetch(`${list.base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })).json()) as R;
    const c = await api<{ challengeId: string; statement: string }>(`/v1/lists/${LIST}/auth/challenge`, { address: alice.address });
    const l = await api<{ token: string }>(`/v1/lists/${LIST}/auth/login`, { challengeId: c.challengeId, signature: await signStatement(c.statement, alice.privateKey) });
    const threads = await api<ThreadPage>(`/v1/lists/${LIST}/archive/threads`, undefined, l.token);
    const thread = threads.threads.find((t) => t.messages.some((m) => m.messageId === root.messageId))!;
    expect(thread.messages.map((m) => m.messageId)).toEqual([root.messageId, read.message.messageId]);
  });

  it('attachments: bounds refused in words (dropped and chosen), one file chosen and one dropped, sent encrypted, delivered byte for byte', async () => {
    const alice = list.alice;
    const marker = `FXFILES-${Math.random().toString(36).slice(2)}`;
    // Every byte value, so a text-mode mangling anywhere on the way shows.
    const chosenBytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(`\r\n${marker}\n`)]);
    const droppedText = `dropped notes ${marker}\n`;
    const dir = mkdtempSync(join(tmpdir(), 'letterlock-fx-files-'));
    const chosenPath = join(dir, 'scores.bin');
    const hugePath = join(dir, 'huge.bin');
    writeFileSync(chosenPath, chosenBytes);
    writeFileSync(hugePath, Buffer.alloc(11 * 1024 * 1024));
    try {
      const mail = await showMail('Nothing encrypted here.');
      await mail.click('button[data-letterlock="compose-button"]');
      await mail.waitForSelector('iframe[data-letterlock="composer"][data-test-state="ready"]', { timeout: T });
      const composer = await extensionFrameIn(mail, 'composer');
      await composer.waitForSelector('[data-test=composer][data-test-state=ready]', { timeout: T });
      const errorText = () => composer.$eval('[data-test=composer] .error', (e) => e.textContent ?? '').catch(() => '');
      const items = () => composer.$$eval('[data-test=attachment-item]', (els) => els.map((e) => e.textContent ?? ''));
      /** Drags files over the message box and drops them there, as the browser does for files from the desktop. */
      const drop = (files: { name: string; text: string }[]) => composer.evaluate(async (fs) => {
        const dt = new DataTransfer();
        for (const f of fs) dt.items.add(new File([f.text], f.name, { type: 'text/plain' }));
        const target = document.querySelector('[data-test=composer-text]')!;
        target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        // While files are over it, the attachments box says where they go (the page re-renders on its own time).
        const box = document.querySelector('[data-test=composer-attachments]')!;
        for (const end = Date.now() + 10_000; !box.classList.contains('dropping') && Date.now() < end;) await new Promise(requestAnimationFrame);
        const over = box.className;
        const ev = new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
        target.dispatchEvent(ev);
        return { over, taken: ev.defaultPrevented };
      }, files);

      // Eleven files dropped: refused in words, none taken.
      const many = await drop(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, text: 'x' })));
      expect(many).toEqual({ over: 'dropping', taken: true });
      await expect.poll(errorText, { timeout: T }).toContain('Attach at most 10 files');
      // 11 MB chosen in the file chooser: refused in words, none taken.
      const input = (await composer.waitForSelector('[data-test=composer-files]'))!;
      await (input as unknown as { uploadFile(...p: string[]): Promise<void> }).uploadFile(hugePath);
      await expect.poll(errorText, { timeout: T }).toMatch(/The attachments \(11\.0 MB\) are too large: at most 10\.0 MB/);
      expect(await items()).toEqual([]);
      await shootFirefox(mail, 'composer-files-refused');

      // One file chosen, one dropped.
      await (input as unknown as { uploadFile(...p: string[]): Promise<void> }).uploadFile(chosenPath);
      await expect.poll(items, { timeout: T }).toHaveLength(1);
      expect(await errorText()).toBe('');
      await drop([{ name: 'dropped.txt', text: droppedText }]);
      await expect.poll(items, { timeout: T }).toHaveLength(2);
      expect((await items()).map((t) => t.replace(/\s*Remove$/, ''))).toEqual([`scores.bin (${chosenBytes.length} bytes)`, `dropped.txt (${Buffer.byteLength(droppedText)} bytes)`]);

      await composer.locator('[data-test=composer-subject]').fill('Scores for Tuesday');
      await composer.locator('[data-test=composer-text]').fill(`Two files attached. ${marker}`);
      await shootFirefox(mail, 'composer-files');
      await composer.click('[data-test=composer-send]');
      await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), { timeout: T });
      const armored = await mail.$eval('#composebody', (e) => (e as HTMLTextAreaElement).value);
      expect(armored).not.toContain(marker);
      expect(armored).not.toContain('scores.bin');
      await mail.close();

      const had = list.sink.to(alice.address).length;
      await list.postFromWebmail(CAROL, armored, { messageId: '<wm-fx-files@127.0.0.1>' });
      const delivered = await list.mailTo(alice.address, had + 1);
      expect(delivered.includes(Buffer.from(marker))).toBe(false);
      const read = await readMail(delivered, { privateKey: alice.privateKey, senderKeys: [] });
      expect(read.message.subject).toBe('Scores for Tuesday');
      expect(read.message.text).toContain(marker);
      expect(read.message.attachments.map((a) => a.filename)).toEqual(['scores.bin', 'dropped.txt']);
      expect(Buffer.from(read.message.attachments[0]!.content).equals(chosenBytes)).toBe(true);
      expect(Buffer.from(read.message.attachments[1]!.content).equals(Buffer.from(droppedText))).toBe(true);
    } finally {
      removeDir(dir);
    }
  });
});
