// The Roundcube page helpers in real headless Chromium against the real stack,
// without the extension: Bob sees the list's copy of Alice's post in his inbox
// (ciphertext, since nothing decrypts it here), in the preview frame and the full
// view; Bob mails Carol from Roundcube and it arrives in her IMAP box; Carol
// replies from Roundcube and the reply reaches Bob. Screenshots: test-artifacts/stack/.

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, readPublicKey } from '../../shared/index.ts';
import { send } from '../integration/server/harness.ts';
import { listFiles, scan } from '../integration/server/scan.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { waitForMail } from './imap.ts';
import { startMailStack, type MailStack } from './mailstack.ts';
import {
  composeAndSend, login, logout, messageText, openFullView, openInbox, openInPreview, reply, screenshot, SELECTORS, sendCompose, waitForRow,
} from './roundcube.ts';

const CHROMIUM = '/usr/bin/chromium';
const MARKER = `LLRC-${randomUUID()}`;

let stack: MailStack;
let browser: Browser;
let alice: TestKey, bob: TestKey;
const contexts: BrowserContext[] = [];
const started = Date.now();

async function newPage(): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  contexts.push(ctx);
  return ctx.newPage();
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeKey('alice@example.test'), makeKey('bob@example.test')]);
  const t = Date.now();
  stack = await startMailStack({ members: [alice, bob].map((k) => ({ address: k.address, publicKey: k.publicArmored })) });
  console.log(`[stack] started in ${Date.now() - t} ms`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 300_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await stack?.stop();
  console.log(`[stack] roundcube test total ${Date.now() - started} ms`);
});

describe('Roundcube on the real stack, driven by the page helpers (no extension)', () => {
  it("Bob logs in and sees the list's copy of Alice's post: ciphertext in the preview frame and the full view", async () => {
    const info = await (await fetch(`${stack.urls.api}/v1/lists/${stack.listAddress}`)).json() as { listKey: { armored: string } };
    const { key: listKey } = await readPublicKey(info.listKey.armored);
    const post = await composePost({
      message: { subject: `Für alle ${MARKER}`, from: { address: alice.address }, to: [{ address: stack.listAddress }], text: `Hallo ${MARKER}` },
      senderKey: alice.privateKey, listKey,
    });
    await send(stack.ports.smtp, alice.address, stack.listAddress, post.pgpMime);
    await waitForMail(stack, stack.users.bob!, (m) => m.raw.includes('List-Id'), "Bob's list copy", 30_000);

    const page = await newPage();
    await login(page, stack.urls.roundcube!, stack.users.bob!);
    await screenshot(page, '01-bob-logged-in');
    // The list copy shows the placeholder subject '...' from the list address.
    const row = await waitForRow(page, 'demo@lists.example.test');
    expect(await row.innerText()).not.toContain(MARKER);
    await screenshot(page, '02-bob-inbox-list-copy');

    const frame = await openInPreview(page, 'demo@lists.example.test');
    const preview = await messageText(frame);
    await screenshot(page, '03-bob-preview-ciphertext');
    expect(preview).not.toContain(MARKER);
    // PGP/MIME without a decrypting plugin: the encrypted part is an attachment.
    const attachments = await frame.locator(SELECTORS.attachments).allInnerTexts();
    expect(attachments.join(' ')).toMatch(/encrypted\.asc/);
    expect(await frame.locator(SELECTORS.encryptedNotice).innerText()).toMatch(/encrypted message/i);

    await openFullView(page, 'demo@lists.example.test');
    await screenshot(page, '04-bob-full-view-ciphertext');
    expect(await messageText(page)).not.toContain(MARKER);
    expect((await page.locator(SELECTORS.attachments).allInnerTexts()).join(' ')).toMatch(/encrypted\.asc/);
    await logout(page);
    await screenshot(page, '04b-bob-logged-out');
  }, 240_000);

  it('Bob sends a plain mail to Carol from Roundcube; it arrives in her IMAP box; Carol replies from Roundcube and Bob gets it', async () => {
    const subject = `Lunch? ${randomUUID().slice(0, 8)}`;
    const text = 'Hi Carol,\nlunch at noon? Grüße, Bob';
    const page = await newPage();
    await login(page, stack.urls.roundcube!, stack.users.bob!);
    await composeAndSend(page, { to: [stack.users.carol!.address], subject, body: text });
    await screenshot(page, '05-bob-sent-to-carol');

    const got = await waitForMail(stack, stack.users.carol!, (m) => m.subject === subject, "Bob's mail from Roundcube", 60_000);
    const parsed = await PostalMime.parse(got.raw);
    expect(parsed.from?.address).toBe(stack.users.bob!.address);
    expect(parsed.to?.map((a) => a.address)).toEqual([stack.users.carol!.address]);
    expect(parsed.text?.replace(/\r\n/g, '\n')).toContain(text);
    expect(got.raw.toString('latin1')).toMatch(/by mx\.example\.test \(Postfix\)/); // through Postfix, not a shortcut
    // Roundcube keeps the sent copy in Bob's Sent folder over IMAP.
    await waitForMail(stack, stack.users.bob!, (m) => m.subject === subject, 'sent copy', 30_000, 'Sent');

    const carol = await newPage();
    await login(carol, stack.urls.roundcube!, stack.users.carol!);
    const frame = await openInPreview(carol, subject);
    expect(await messageText(frame)).toContain('lunch at noon?');
    await screenshot(carol, '06-carol-preview');
    await openFullView(carol, subject);
    await reply(carol, 'Noon works. Carol');
    await screenshot(carol, '07-carol-reply-compose');
    await sendCompose(carol);

    const answer = await waitForMail(stack, stack.users.bob!, (m) => m.subject === `Re: ${subject}`, "Carol's reply", 60_000);
    const a = await PostalMime.parse(answer.raw);
    expect(a.from?.address).toBe(stack.users.carol!.address);
    expect(a.inReplyTo).toBe(parsed.messageId);
    expect(a.text).toContain('Noon works. Carol');
    await openInbox(page);
    await waitForRow(page, `Re: ${subject}`);
    await screenshot(page, '08-bob-inbox-reply');
  }, 300_000);

  it("after all that, no file of the stack (Roundcube's database and temp, Dovecot, Postfix, the list server) holds the post's marker", async () => {
    for (const c of contexts.splice(0)) await c.close();
    await stack.stop({ remove: false });
    const roots = stack.scanRoots();
    expect(scan(roots, MARKER)).toEqual([]);
    // Control: the plain mail Bob wrote in Roundcube is found, in Carol's mailbox and Bob's Sent folder.
    const plain = scan(roots, 'lunch at noon?').map((h) => h.file);
    expect(plain.some((f) => f.startsWith(join(stack.folders.mail, 'carol')))).toBe(true);
    expect(plain.some((f) => f.startsWith(join(stack.folders.mail, 'bob', 'Maildir', '.Sent')))).toBe(true);
    expect(listFiles(stack.folders.roundcube).some((f) => f === stack.folders.roundcubeDb)).toBe(true);
  }, 60_000);
});
