// Page helpers for Roundcube 1.6 (elastic skin) in a real browser, driven with
// playwright-core. The selectors are the page structure recorded in the team
// handbook's REAL-STACK.md; each helper waits for the state it leads to, so a
// test reads as the steps a person takes. They work with or without the
// Letterlock extension loaded (the extension only adds its own frames).

import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Frame, Locator, Page } from 'playwright-core';

export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts', 'stack');

export const SELECTORS = {
  loginUser: '#rcmloginuser',
  loginPassword: '#rcmloginpwd',
  loginSubmit: '#rcmloginsubmit',
  messageList: '#messagelist',
  messageRows: '#messagelist tbody tr',
  previewFrame: '#messagecontframe',
  messageBody: '#messagebody',
  plainText: '#messagebody .message-part .pre',
  htmlText: '#messagebody .message-htmlpart .rcmBody',
  attachments: '#attachment-list li',
  recipientInput: 'ul.recipient-input li.input > input',
  toField: 'textarea#_to',
  subject: '#compose-subject',
  body: 'textarea#composebody',
  send: '.formbuttons button.btn.btn-primary.send',
  reply: '#toolbar-menu a.reply',
  notice: '#messagestack',
  logout: '#taskmenu a.logout',
  /** Roundcube's own notice on a PGP/MIME mail it cannot show (no enigma plugin). */
  encryptedNotice: '#messagebody .boxwarning',
} as const;

/**
 * How long a page transition may take. Roundcube runs as PHP CGI; in CI it shares
 * 2 cores with the PostgreSQL pass, where a compose page once took over 20 s.
 */
const PAGE_MS = 60_000;

/** Saves a full-page screenshot under test-artifacts/stack/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Logs in from the login form and waits for the mail view. */
export async function login(page: Page, baseUrl: string, user: { address: string; password: string }): Promise<void> {
  await page.goto(baseUrl);
  await page.locator(SELECTORS.loginUser).fill(user.address);
  await page.locator(SELECTORS.loginPassword).fill(user.password);
  await Promise.all([page.waitForURL(/_task=mail/, { timeout: PAGE_MS }), page.locator(SELECTORS.loginSubmit).click()]);
  await page.locator(SELECTORS.messageList).waitFor({ state: 'attached', timeout: PAGE_MS });
  const refused = page.locator(`${SELECTORS.notice} .error`);
  if (await refused.count()) throw new Error(`Roundcube refused the login of ${user.address}: ${await refused.first().innerText()}`);
}

function baseOf(page: Page): string {
  const u = new URL(page.url());
  return `${u.origin}${u.pathname}`;
}

/** Opens the inbox (a fresh load, so newly delivered mail is listed) and waits for its list. */
export async function openInbox(page: Page): Promise<void> {
  await page.goto(`${baseOf(page)}?_task=mail&_mbox=INBOX`);
  await page.locator(SELECTORS.messageList).waitFor({ state: 'attached', timeout: PAGE_MS });
  // The list is filled by an XHR after the page loads; it is done when the busy marker goes.
  await page.waitForFunction(() => {
    const rc = (window as unknown as { rcmail?: { busy?: boolean; message_list?: unknown } }).rcmail;
    return !!rc && !rc.busy && !!rc.message_list;
  }, undefined, { timeout: PAGE_MS });
}

/** The inbox row whose text holds `subject`; reloads the inbox until it shows up. */
export async function waitForRow(page: Page, subject: string | RegExp, timeoutMs = 30_000): Promise<Locator> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    await openInbox(page);
    const row = page.locator(SELECTORS.messageRows).filter({ hasText: subject });
    if (await row.count()) return row.first();
    if (Date.now() > end) {
      const rows = await page.locator(SELECTORS.messageRows).allInnerTexts();
      throw new Error(`no message ${String(subject)} in the inbox after ${timeoutMs} ms; rows:\n${rows.join('\n') || '(none)'}`);
    }
    await page.waitForTimeout(500);
  }
}

/** A message by its IMAP uid (list copies all share the subject "..."). */
export interface ByUid {
  uid: number;
}

/** The inbox row of the message with this IMAP uid; reloads the inbox until it shows up. */
export async function waitForUidRow(page: Page, uid: number, timeoutMs = 30_000): Promise<Locator> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    await openInbox(page);
    // Roundcube keeps each row's element by uid; its id is an encoded form of the uid.
    const id = await page.evaluate((u) => (window as unknown as { rcmail: { message_list: { rows: Record<string, { obj?: HTMLElement }> } } }).rcmail.message_list.rows[u]?.obj?.id ?? null, uid);
    if (id) return page.locator(`[id="${id}"]`);
    if (Date.now() > end) throw new Error(`no message with uid ${uid} in the inbox after ${timeoutMs} ms`);
    await page.waitForTimeout(500);
  }
}

function rowOf(page: Page, which: string | RegExp | ByUid): Promise<Locator> {
  return typeof which === 'object' && 'uid' in which ? waitForUidRow(page, which.uid) : waitForRow(page, which);
}

/** Opens a message in the preview frame (one click on its row); returns the frame once its body is shown. */
export async function openInPreview(page: Page, which: string | RegExp | ByUid): Promise<Frame> {
  const row = await rowOf(page, which);
  await row.click();
  const frameEl = page.locator(SELECTORS.previewFrame);
  await frameEl.waitFor({ state: 'visible', timeout: PAGE_MS });
  const handle = await frameEl.elementHandle();
  const frame = await handle?.contentFrame();
  if (!frame) throw new Error('the preview frame #messagecontframe has no content frame');
  await frame.waitForURL(/_action=(show|preview)/, { timeout: PAGE_MS });
  await frame.locator(SELECTORS.messageBody).waitFor({ state: 'attached', timeout: PAGE_MS });
  return frame;
}

/** Opens a message in the full view (double click on its row); waits for its body. */
export async function openFullView(page: Page, which: string | RegExp | ByUid): Promise<void> {
  const row = await rowOf(page, which);
  await Promise.all([page.waitForURL(/_action=show/, { timeout: PAGE_MS }), row.dblclick()]);
  await page.locator(SELECTORS.messageBody).waitFor({ state: 'attached', timeout: PAGE_MS });
}

/** The visible text of a shown message (preview frame or full view). */
export async function messageText(where: Page | Frame): Promise<string> {
  return where.locator(SELECTORS.messageBody).innerText();
}

export interface Draft {
  to?: string[];
  subject?: string;
  body?: string;
}

/** Waits for the compose page to be ready for typing. */
export async function waitForCompose(page: Page): Promise<void> {
  await page.waitForURL(/_action=compose/, { timeout: PAGE_MS });
  try {
    await page.locator(SELECTORS.body).waitFor({ state: 'visible', timeout: PAGE_MS });
  } catch (e) {
    // Say what Roundcube showed instead (an error page, a notice, the login form).
    const shown = await page.locator('body').innerText({ timeout: 5_000 }).catch(() => '(unreadable)');
    throw new Error(`the compose form did not show at ${page.url()}; the page says: ${shown.replace(/\s+/g, ' ').slice(0, 500)}`, { cause: e });
  }
}

/** Opens an empty compose page. */
export async function openCompose(page: Page): Promise<void> {
  await page.goto(`${baseOf(page)}?_task=mail&_action=compose`);
  await waitForCompose(page);
}

/**
 * Fills the compose form. Recipients are typed into the recipient widget (which
 * keeps them in textarea#_to); the body replaces the textarea's text, or with
 * `prepend` goes before what is there (a reply's quoted text).
 */
export async function fillCompose(page: Page, draft: Draft, options: { prepend?: boolean } = {}): Promise<void> {
  for (const address of draft.to ?? []) {
    const input = page.locator(SELECTORS.recipientInput).first();
    await input.click();
    await input.fill(address);
    await input.press('Enter');
  }
  if (draft.to?.length) {
    const to = await page.locator(SELECTORS.toField).inputValue();
    for (const a of draft.to) if (!to.includes(a)) throw new Error(`recipient ${a} did not reach ${SELECTORS.toField} (it holds ${JSON.stringify(to)})`);
  }
  if (draft.subject !== undefined) await page.locator(SELECTORS.subject).fill(draft.subject);
  if (draft.body !== undefined) {
    const body = page.locator(SELECTORS.body);
    if (options.prepend) {
      const old = await body.inputValue();
      await body.fill(`${draft.body}\n${old}`);
    } else {
      await body.fill(draft.body);
    }
  }
}

/** Sends the open compose page and waits until Roundcube reports it sent (it then leaves compose). */
export async function sendCompose(page: Page): Promise<void> {
  await Promise.all([
    page.waitForURL((u) => !/_action=compose/.test(u.toString()), { timeout: PAGE_MS }),
    page.locator(SELECTORS.send).first().click(),
  ]);
  const error = page.locator(`${SELECTORS.notice} .error`);
  if (await error.count()) throw new Error(`Roundcube could not send: ${await error.first().innerText()}`);
}

/** Compose → fill → send in one step. */
export async function composeAndSend(page: Page, draft: Draft): Promise<void> {
  await openCompose(page);
  await fillCompose(page, draft);
  await sendCompose(page);
}

/**
 * Replies to the message shown (full view, or selected with the preview open):
 * the toolbar's Reply button, then the compose page with To and "Re:" subject filled in.
 */
export async function reply(page: Page, text?: string): Promise<void> {
  await page.locator(SELECTORS.reply).first().click();
  await waitForCompose(page);
  if (text !== undefined) await fillCompose(page, { body: text }, { prepend: true });
}

/** Logs out with the task menu's Logout (a bare ?_task=logout is refused: it needs the request token). */
export async function logout(page: Page): Promise<void> {
  await page.locator(SELECTORS.logout).first().click();
  await page.locator(SELECTORS.loginUser).waitFor({ timeout: PAGE_MS });
}
