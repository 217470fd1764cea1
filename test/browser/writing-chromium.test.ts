// Issue 12, "Writing", in real headless Chromium with the built extension, against
// the real list server (in-process, real SMTP to a sink, real HTTP):
// - an inline confirmation (the delivery form Bob chose) is found and confirmed by the reader;
// - "Reply to list" in the reader opens the composer with "Re:", an attribution
//   line and "> " quoted text; a file is attached (count and size bounds refused
//   with clear words, for files chosen and dropped); the draft is saved encrypted to Bob's own key (IndexedDB
//   holds no plaintext) and restored when the reply is opened again; sending
//   deletes it; the delivered copy decrypts to inner MIME with In-Reply-To and
//   References of the original and the attachment, and the archive threads the
//   reply under its root;
// - "Reply" to the author encrypts to the author alone.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type FrameLocator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, readMessage, readPublicKey, signStatement, type ThreadPage } from '../../shared/index.ts';
import { armoredOf, buildExtension, LIST, ListServerUnderTest, PASSPHRASE, removeDir, Webmail, launchChromiumWithExtension, clickInReader, decryptInReader } from './extension-kit.ts';
import { shootChromium } from './screenshots.ts';

const BOB = 'bob@example.org';
let extDir: string, profile: string, ctx: BrowserContext, extBase: string;
const site = new Webmail();
const list = new ListServerUnderTest();
const T = 60_000;

async function openPage(path: string): Promise<Page> {
  const page = await ctx.newPage();
  await page.goto(`${extBase}extension/pages/${path}/index.html`);
  return page;
}

function readerIn(page: Page): FrameLocator {
  return page.frameLocator('#messagecontframe').frameLocator('iframe[data-letterlock="reader"]').first();
}

const decryptIn = (reader: FrameLocator): Promise<void> => decryptInReader(reader, T);

/** Every record of the drafts database, read in an extension page (the background's origin). */
async function draftRecords(): Promise<Array<{ id: string; fingerprint: string; armored: string; savedAt: number }>> {
  const page = await openPage('popup');
  try {
    return await page.evaluate(() => new Promise((resolve, reject) => {
      const r = indexedDB.open('letterlock-drafts');
      r.onerror = () => reject(r.error);
      r.onsuccess = () => {
        const db = r.result;
        if (!db.objectStoreNames.contains('drafts')) return resolve([]);
        const get = db.transaction('drafts').objectStore('drafts').getAll();
        get.onsuccess = () => {
          db.close();
          resolve(get.result);
        };
        get.onerror = () => reject(get.error);
      };
    }));
  } finally {
    await page.close();
  }
}

/** The webmail page showing one delivered mail's body as text. */
async function showMail(body: string): Promise<Page> {
  site.messages = [body];
  const mail = await ctx.newPage();
  await mail.goto(site.allowedUrl);
  return mail;
}

beforeAll(async () => {
  [extDir] = await Promise.all([buildExtension('chrome', ['http://127.0.0.1/*']), site.start(), list.start()]);
  profile = mkdtempSync(join(tmpdir(), 'letterlock-writing-chromium-'));
  ({ ctx, extBase } = await launchChromiumWithExtension(extDir!, profile));
}, 240_000);

afterAll(async () => {
  await ctx?.close();
  await Promise.all([site.stop(), list.stop()]);
  removeDir(extDir);
  removeDir(profile);
});

describe('writing in Chromium', () => {
  it('a key, the site, and an inline confirmation found and confirmed by the reader', async () => {
    const page = await openPage('options');
    await page.locator('[data-test=guide][data-test-state=key]').waitFor({ timeout: T });
    await page.fill('[data-test=key-name]', 'Bob');
    await page.fill('[data-test=key-address]', BOB);
    await page.fill('[data-test=key-passphrase]', PASSPHRASE);
    await page.fill('[data-test=key-passphrase-again]', PASSPHRASE);
    await page.click('[data-test=create-key-submit]');
    await page.locator('[data-test=guide][data-test-state=safety]').waitFor({ timeout: T });
    await page.click('[data-test=guide-next]');
    await page.fill('[data-test=indicator-word]', 'heron');
    await page.click('[data-test=indicator-save]');
    await page.fill('[data-test=site-input]', 'http://127.0.0.1');
    await page.click('[data-test=site-add]');
    await page.locator('[data-test=guide][data-test-state=list]').waitFor({ timeout: T });
    await page.click('[data-test=guide-next]');
    await page.click('[data-test=guide-finish]');
    await page.locator('[data-test=key][data-test-state=present]').waitFor({ timeout: T });

    await page.fill('[data-test=list-address]', LIST);
    await page.fill('[data-test=list-server]', list.base);
    await page.click('[data-test=list-lookup]');
    await page.locator('[data-test=list-candidate][data-test-state=new]').waitFor({ timeout: T });
    await page.click('[data-test=list-pin]');
    const row = page.locator(`[data-test=list-row][data-list="${LIST}"]`);
    await row.and(page.locator('[data-test-state=pinned]')).waitFor({ timeout: T });
    await page.selectOption('[data-test=delivery]', 'inline');
    await page.click('[data-test=subscribe]');
    await row.and(page.locator('[data-test-state=confirmation-sent]')).waitFor({ timeout: T });

    // The confirmation arrives in the form Bob chose: an armored block as the text/plain body.
    const raw = (await list.mailTo(BOB, 1)).toString('utf8');
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(head).toMatch(/^Content-Type: text\/plain; charset=us-ascii$/m);
    expect(head).not.toMatch(/multipart\/encrypted/);
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4).replace(/\r\n/g, '\n');
    expect(body.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
    const mail = await showMail(body); // exactly as a webmail shows the body
    const reader = readerIn(mail);
    await decryptIn(reader);
    await clickInReader(reader, '[data-test=confirm-subscription]', reader.locator('[data-test=confirm][data-test-state=confirmed]'), T);
    // A confirmation offers no reply.
    expect(await reader.locator('[data-test=reply-list]').count()).toBe(0);
    await page.reload();
    await row.and(page.locator('[data-test-state=member]')).waitFor({ timeout: T });
    await Promise.all([page.close(), mail.close()]);
  }, 180_000);

  let root: { messageId: string; armored: string };
  const marker = `REPLYMARK-${Math.random().toString(36).slice(2)}`;
  const fileBytes = new TextEncoder().encode(`attached notes ${marker}\n`);

  it('"Reply to list" opens the composer with the quote; bounds on files; the draft is kept only encrypted and restored', async () => {
    const alice = list.alice;
    const { key: listKey } = await readPublicKey((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json() as { listKey: { armored: string } }).listKey.armored);
    const post = await composePost({ message: { subject: 'Picnic plans', from: { address: alice.address, name: 'Alice' }, to: [{ address: LIST }], text: 'Bring bread.\nAnd cheese.' }, senderKey: alice.privateKey, listKey });
    root = { messageId: post.messageId, armored: post.armored };
    // From webmail: an outer Message-ID of the webmail's own; the list goes by the protected one.
    await list.postFromWebmail(alice.address, post.armored, { messageId: '<wm-root@127.0.0.1>' });
    const copy = await list.mailTo(BOB, 2);
    const mail = await showMail(await armoredOf(copy));
    const reader = readerIn(mail);
    await decryptIn(reader);
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await clickInReader(reader, '[data-test=reply-list]', composer.locator('[data-test=composer][data-test-state=ready][data-test-reply=list]'), T);
    expect(await reader.locator('[data-test=reply]').getAttribute('data-test-state')).toBe('ready');
    expect(await composer.locator('[data-test=composer-subject]').inputValue()).toBe('Re: Picnic plans');
    const quoted = await composer.locator('[data-test=composer-text]').inputValue();
    expect(quoted).toMatch(/^On .+, Alice <alice@example\.org> wrote:\n> Bring bread\.\n> And cheese\.\n\n$/);

    // Bounds, in words: eleven files, then one too large; neither is taken.
    const files = composer.locator('[data-test=composer-files]');
    await files.setInputFiles(Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from('x') })));
    await composer.locator('.error', { hasText: 'at most 10 files' }).waitFor({ timeout: T });
    await files.setInputFiles({ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(11 * 1024 * 1024) });
    await composer.locator('.error', { hasText: 'too large' }).waitFor({ timeout: T });
    expect(await composer.locator('[data-test=attachment-item]').count()).toBe(0);
    // Dropped on the composer: the same bounds, and a file within them is taken.
    const drop = (names: string[]) => composer.locator('[data-test=composer-text]').evaluate((target, ns) => {
      const dt = new DataTransfer();
      for (const n of ns) dt.items.add(new File(['dropped'], n, { type: 'text/plain' }));
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      const ev = new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
      target.dispatchEvent(ev);
      return ev.defaultPrevented;
    }, names);
    expect(await drop(Array.from({ length: 11 }, (_, i) => `d${i}.txt`))).toBe(true);
    await composer.locator('.error', { hasText: 'at most 10 files' }).waitFor({ timeout: T });
    expect(await composer.locator('[data-test=attachment-item]').count()).toBe(0);
    await drop(['dropped.txt']);
    await composer.locator('[data-test=attachment-item]', { hasText: 'dropped.txt' }).waitFor({ timeout: T });
    await composer.getByRole('button', { name: 'Remove dropped.txt' }).click();
    await expect.poll(() => composer.locator('[data-test=attachment-item]').count()).toBe(0);
    await files.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(fileBytes) });
    await composer.locator('[data-test=attachment-item]', { hasText: 'notes.txt' }).waitFor({ timeout: T });

    await composer.locator('[data-test=composer-text]').fill(`${quoted}Yes, and fruit. ${marker}`);
    await composer.locator('[data-test=draft-state][data-test-state=saved]').waitFor({ timeout: T });
    await shootChromium(mail, 'composer-reply');

    // At rest: one record, ciphertext only (no marker, no subject, no quote, no Message-ID).
    const records = await draftRecords();
    expect(records).toHaveLength(1);
    const stored = JSON.stringify(records);
    for (const plain of [marker, 'Picnic', 'Bring bread', 'fruit', root.messageId.slice(1, -1)]) expect(stored).not.toContain(plain);
    expect(records[0]!.armored.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
    await mail.close();

    // Opened again for the same message: the draft comes back.
    const again = await showMail(await armoredOf(copy));
    const reader2 = readerIn(again);
    await decryptIn(reader2);
    const composer2 = again.frameLocator('iframe[data-letterlock="composer"]');
    await clickInReader(reader2, '[data-test=reply-list]', composer2.locator('[data-test=composer][data-test-state=ready]'), T);
    await composer2.locator('[data-test=draft-state][data-test-state=restored]').waitFor({ timeout: T });
    expect(await composer2.locator('[data-test=composer-text]').inputValue()).toContain(marker);
    await composer2.locator('[data-test=composer-files]').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(fileBytes) });
    await composer2.locator('[data-test=attachment-item]').waitFor({ timeout: T });

    // Sent: armored into the compose box, the draft deleted.
    await composer2.locator('[data-test=composer-send]').click();
    await again.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), undefined, { timeout: T });
    const armored = await again.inputValue('#composebody');
    expect(armored).not.toContain(marker);
    expect(await draftRecords()).toHaveLength(0);
    await again.close();

    // What the webmail sends: its own Message-ID and no threading headers outside.
    const aliceHad = list.sink.to(alice.address).length;
    await list.postFromWebmail(BOB, armored, { messageId: '<wm-reply@127.0.0.1>' });
    const { raw, read, innerHead } = await list.readByAlice(aliceHad + 1);
    const delivered = raw.toString('utf8');
    expect(innerHead).toContain(`In-Reply-To: ${root.messageId}`);
    expect(innerHead).toContain(`References: ${root.messageId}`);
    expect(innerHead).toMatch(/^Content-Type: multipart\/mixed;/m);
    expect(read.message.subject).toBe('Re: Picnic plans');
    expect(read.message.text).toContain(marker);
    expect(read.message.text).toContain('> Bring bread.');
    expect(read.message.attachments).toHaveLength(1);
    expect(read.message.attachments[0]!.filename).toBe('notes.txt');
    expect(Buffer.from(read.message.attachments[0]!.content).equals(Buffer.from(fileBytes))).toBe(true);
    // The delivered copy's outer headers carry the same threading.
    expect(delivered).toMatch(new RegExp(`^In-Reply-To: ${root.messageId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r$`, 'm'));

    // The archive threads the reply under its root.
    const api = async <R>(path: string, body?: unknown, token?: string): Promise<R> => (await (await fetch(`${list.base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })).json()) as R;
    const c = await api<{ challengeId: string; statement: string }>(`/v1/lists/${LIST}/auth/challenge`, { address: alice.address });
    const l = await api<{ token: string }>(`/v1/lists/${LIST}/auth/login`, { challengeId: c.challengeId, signature: await signStatement(c.statement, alice.privateKey) });
    const threads = await api<ThreadPage>(`/v1/lists/${LIST}/archive/threads`, undefined, l.token);
    const thread = threads.threads.find((t) => t.messages.some((m) => m.messageId === root.messageId))!;
    expect(thread.messages).toHaveLength(2);
    expect(thread.messages[1]!.inReplyTo).toBe(root.messageId);
  }, 300_000);

  it('"Reply" to the author goes to the author alone, encrypted to their key', async () => {
    const alice = list.alice;
    const mail = await showMail(await armoredOf(await list.mailTo(BOB, 2)));
    const reader = readerIn(mail);
    await decryptIn(reader);
    const composer = mail.frameLocator('iframe[data-letterlock="composer"]');
    await clickInReader(reader, '[data-test=reply-author]', composer.locator('[data-test=composer][data-test-state=ready][data-test-reply=author]'), T);
    expect(await composer.locator('[data-test=reply-banner]').textContent()).toContain(alice.address);
    await composer.locator('[data-test=composer-text]').fill('Just between us.');
    await composer.locator('[data-test=composer-send]').click();
    await mail.waitForFunction(() => (document.getElementById('composebody') as HTMLTextAreaElement).value.includes('-----END PGP MESSAGE-----'), undefined, { timeout: T });
    const armored = await mail.inputValue('#composebody');
    const read = await readMessage(armored, { privateKey: alice.privateKey, senderKeys: [] });
    expect(read.message.to.map((m) => m.address)).toEqual([alice.address]);
    expect(read.message.inReplyTo).toBe(root.messageId);
    // Not to the list: the list key is no recipient.
    const listKeyId = (await readPublicKey((await (await fetch(`${list.base}/v1/lists/${LIST}`)).json() as { listKey: { armored: string } }).listKey.armored)).key.getSubkeys()[0]!.getKeyID().toHex();
    const openpgp = await import('openpgp');
    const ids = (await openpgp.readMessage({ armoredMessage: armored })).getEncryptionKeyIDs().map((k) => k.toHex());
    expect(ids).not.toContain(listKeyId);
    expect(ids).toContain(alice.publicKey.getSubkeys()[0]!.getKeyID().toHex());
    await mail.close();
  }, 180_000);
});
