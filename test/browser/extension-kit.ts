// Shared parts of the extension's browser tests: building the extension, a
// loopback page shaped like a webmail (a message view in a same-origin frame, a
// compose box, and a hostile script), and the real list server in-process.

import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser as PuppeteerBrowser, type ElementHandle, type Frame as PuppeteerFrame, type Page as PuppeteerPage } from 'puppeteer-core';
import { chromium, type BrowserContext, type FrameLocator, type Locator, type Page as PlaywrightPage } from 'playwright-core';
import { expect } from 'vitest';
import { build } from 'vite';
import { armorMessage, findPayload, readMail } from '../../shared/index.ts';
import { startServer, type RunningServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config/config.ts';
import { createEventLog } from '../../server/log/log.ts';
import { addList, initData, person, SECRET, send, Sink, tempDir, type Person } from '../integration/server/harness.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'extension');
export const PASSPHRASE = 'correct horse battery staple 42';
export const GECKO_ID = 'letterlock@letterlock.org';

/**
 * Real Chromium with the built extension loaded: a persistent profile (MV3
 * extensions need one), headless "new" mode, and the extension's base URL read
 * from its service worker.
 */
export async function launchChromiumWithExtension(extDir: string, profile: string, viewport?: { width: number; height: number }, extraArgs: string[] = []): Promise<{ ctx: BrowserContext; extId: string; extBase: string }> {
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: false,
    ...(viewport ? { viewport } : {}),
    args: ['--headless=new', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', ...extraArgs],
  });
  const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
  const extId = new URL(sw.url()).host;
  return { ctx, extId, extBase: `chrome-extension://${extId}/` };
}

/**
 * Chromium: clicks a control in a reader frame until the click counts, and waits for
 * `outcome`. The reader's click check may refuse a real click on a loaded machine while
 * the page still lays out (IntersectionObserver v2 reports late); the reader then says so
 * in words and counts the refusal in `data-test-refusals`. A person clicks again, and so
 * does this, at most thrice; a fourth refusal fails with the reader's words.
 */
export async function clickInReader(reader: FrameLocator, control: string, outcome: Locator, timeout = 60_000): Promise<void> {
  const box = reader.locator('[data-test=reader]');
  for (let attempt = 1; ; attempt++) {
    const before = Number((await box.getAttribute('data-test-refusals', { timeout })) ?? '0');
    await reader.locator(control).click({ timeout });
    const refused = reader.locator(`[data-test=reader][data-test-refusals="${before + 1}"]`);
    // Whichever comes first; the other wait is let go without an unhandled rejection.
    const seen = await Promise.race([
      outcome.waitFor({ timeout }).then(() => 'done' as const, () => 'timeout' as const),
      refused.waitFor({ timeout }).then(() => 'refused' as const, () => 'timeout' as const),
    ]);
    if (seen === 'done') return;
    const words = await box.innerText().catch(() => '');
    if (seen === 'timeout') throw new Error(`no outcome within ${timeout} ms after a click on ${control}: ${words}`);
    if (attempt >= 3) throw new Error(`the reader refused three clicks on ${control}: ${words}`);
  }
}

/** Chromium: decrypts the message in a reader frame with a click (the default). */
export async function decryptInReader(reader: FrameLocator, timeout = 60_000): Promise<void> {
  await reader.locator('[data-test=reader][data-test-state=encrypted]').waitFor({ timeout });
  await clickInReader(reader, '[data-test=decrypt]', reader.locator('[data-test=reader][data-test-state=decrypted]'), timeout);
}

/**
 * Chromium: shows a list's confirmation mail (`armored`) in the test webmail,
 * decrypts it on a click and confirms with one click. Returns the page, which
 * the caller closes (after a screenshot, if it wants one).
 */
export async function confirmInChromiumWebmail(ctx: BrowserContext, site: Webmail, armored: string): Promise<PlaywrightPage> {
  site.messages = [`Confirmation from the list:\n\n${armored}`];
  const mail = await ctx.newPage();
  await mail.goto(site.allowedUrl);
  const reader = mail.frameLocator('#messagecontframe').frameLocator('iframe[data-letterlock="reader"]');
  // Mail is decrypted on a click by default.
  await decryptInReader(reader);
  // A refusal other than a covered frame fails by time, with the reader's words.
  await clickInReader(reader, '[data-test=confirm-subscription]', reader.locator('[data-test=confirm][data-test-state=confirmed]'));
  return mail;
}

/** Builds the extension for one browser into a temporary folder. */
export async function buildExtension(target: 'chrome' | 'firefox', testHosts: string[] = []): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), `letterlock-ext-${target}-`));
  const before = process.env.LETTERLOCK_TEST_HOSTS;
  const marksBefore = process.env.LETTERLOCK_TEST_MARKS;
  process.env.LETTERLOCK_TEST_HOSTS = testHosts.join(',');
  // Frames report their state words to the content script (through the background) for the driver.
  process.env.LETTERLOCK_TEST_MARKS = '1';
  try {
    await build({ configFile: join(ROOT, 'vite.config.ts'), root: ROOT, mode: target, logLevel: 'error', build: { outDir, emptyOutDir: true } });
  } finally {
    if (before === undefined) delete process.env.LETTERLOCK_TEST_HOSTS;
    else process.env.LETTERLOCK_TEST_HOSTS = before;
    if (marksBefore === undefined) delete process.env.LETTERLOCK_TEST_MARKS;
    else process.env.LETTERLOCK_TEST_MARKS = marksBefore;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  return outDir;
}

/**
 * Firefox: load an extension page and wait for its ready selector. `goto` on a
 * moz-extension URL never reports its load (TOOLCHAIN.md), and under load
 * WebDriver BiDi can fail evaluations in a page that is still loading
 * ("Protocol error (script.evaluate)"), sometimes until the page is loaded
 * again: that is the driver, so the page is reloaded and waited for again until
 * the deadline; any other error is the page's and is thrown at once.
 */
export async function openFirefoxExtensionPage(page: { goto(url: string): Promise<unknown>; waitForSelector(s: string, o: { timeout: number }): Promise<unknown> }, url: string, ready: string, timeoutMs = 90_000): Promise<void> {
  void page.goto(url).catch(() => {});
  const end = Date.now() + timeoutMs;
  let loadedAt = Date.now();
  for (;;) {
    try {
      // Short waits, so a page the driver has lost is noticed and loaded again below.
      await page.waitForSelector(ready, { timeout: Math.max(1000, Math.min(8000, end - Date.now())) });
      return;
    } catch (e) {
      if (!lostByDriver(e) || Date.now() > end) throw e;
      // The driver failed evaluations in this page for a while (seen in CI: "right-hand
      // side of 'in' should be an object"): load the page again rather than wait on it.
      if (Date.now() - loadedAt > 5000) {
        loadedAt = Date.now();
        void page.goto(url).catch(() => {});
      }
    }
  }
}

/** The driver lost the page (a protocol error or a wait that never saw the page), as opposed to the page failing. */
function lostByDriver(e: unknown): boolean {
  return causedByProtocolError(e) || /Waiting for selector .* failed|Timeout/i.test(String((e as Error)?.message ?? ''));
}

/**
 * Firefox: a new tab showing an extension page, waited for as openFirefoxExtensionPage
 * does. Seen in CI: the driver failed every evaluation in one tab for over a minute
 * ("right-hand side of 'in' should be an object") however often it was loaded again;
 * so a tab lost for `perTabMs` is closed and the page opened in a new one, until `timeoutMs`.
 */
export async function newFirefoxExtensionPage(browser: PuppeteerBrowser, url: string, ready: string, o: { timeoutMs?: number; perTabMs?: number; viewport?: { width: number; height: number } } = {}): Promise<PuppeteerPage> {
  const end = Date.now() + (o.timeoutMs ?? 90_000);
  for (;;) {
    const page = await browser.newPage();
    try {
      if (o.viewport) await page.setViewport(o.viewport);
      await openFirefoxExtensionPage(page, url, ready, Math.max(1000, Math.min(o.perTabMs ?? 30_000, end - Date.now())));
      return page;
    } catch (e) {
      await page.close().catch(() => {});
      if (!lostByDriver(e) || Date.now() >= end) throw e;
    }
  }
}

/**
 * Firefox ESR (Debian's) over WebDriver BiDi with the built extension installed,
 * its moz-extension UUID fixed so tests can open its pages, and the
 * optional-permission prompt answered "allow" (there is no prompt UI under
 * automation). Closes the browser again if the install fails.
 */
export async function launchFirefoxWithExtension(extDir: string, profile: string, uuid: string, extraPrefs: Record<string, unknown> = {}): Promise<PuppeteerBrowser> {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: profile,
    args: ['--remote-allow-system-access'],
    extraPrefsFirefox: {
      'extensions.webextensions.uuids': JSON.stringify({ [GECKO_ID]: uuid }),
      'extensions.webextOptionalPermissionPrompts': false,
      ...extraPrefs,
    },
  });
  try {
    await browser.installExtension(extDir);
  } catch (e) {
    await browser.close();
    throw e;
  }
  return browser;
}

/** True when `e` or an error in its cause chain is the driver's "Protocol error". */
function causedByProtocolError(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    if (/Protocol error/.test(String(x))) return true;
  }
  return false;
}

/** Firefox: waits for an extension frame placed in a page to report `state`. */
export async function frameState(where: PuppeteerPage | PuppeteerFrame, kind: string, state: string): Promise<ElementHandle<Element>> {
  return (await where.waitForSelector(`iframe[data-letterlock="${kind}"][data-test-state="${state}"]`, { timeout: 30_000 }))!;
}

/**
 * Firefox: the frame of an extension page placed in a web page (`kind`: composer
 * or reader), the newest one. puppeteer lists such frames with the URL
 * "about:blank" (WebDriver BiDi reports no navigation for them), yet they are
 * browsing contexts of their own: scripts run in them, and ElementHandle.uploadFile
 * (BiDi input.setFiles) sets files on their file inputs. Found by the address
 * their own script sees.
 */
export async function extensionFrameIn(page: PuppeteerPage, kind: 'composer' | 'reader', timeoutMs = 60_000): Promise<PuppeteerFrame> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const f of [...page.frames()].reverse()) {
      const path = await f.evaluate(() => location.pathname).catch(() => '');
      if (path.endsWith(`/extension/pages/${kind}/index.html`)) return f;
    }
    if (Date.now() > end) throw new Error(`no ${kind} frame in the page after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Firefox: focuses an extension frame placed in a page by clicking its top-left
 * corner (before every control) and tabs to its n-th control, as a keyboard user
 * would (extensionFrameIn reaches the frame's document directly).
 */
export async function focusInFrame(page: PuppeteerPage, frame: ElementHandle<Element>, tabs: number): Promise<void> {
  await frame.scrollIntoView();
  const box = (await frame.boundingBox())!;
  await page.mouse.click(box.x + 4, box.y + 4);
  for (let i = 0; i < tabs; i++) await page.keyboard.press('Tab');
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** How Roundcube shows a text/plain body: escaped lines joined with <br>. */
function messageHtml(text: string): string {
  return `<div class="message-part"><div class="pre">${text.split('\n').map(escapeHtml).join('<br>\n')}</div></div>`;
}

// The hostile page script: everything a page could try against the extension.
// The test calls window.hostile.probe() and checks every attempt failed.
const HOSTILE = String.raw`
window.hostile = {
  async probe(extensionId, marker) {
    const docs = [document];
    for (const f of document.querySelectorAll('iframe:not([data-letterlock])')) {
      try { if (f.contentDocument) docs.push(f.contentDocument); } catch (e) {}
    }
    const ours = docs.flatMap((d) => [...d.querySelectorAll('iframe[data-letterlock]')]);
    const out = { frames: ours.length, frameReads: [], runtime: null, browserGlobal: typeof browser, fakeInsert: null, reachable: '' };
    for (const f of ours) {
      let r;
      try {
        const d = f.contentDocument || f.contentWindow.document;
        r = d ? 'read:' + d.documentElement.outerHTML.length : 'null';
      } catch (e) { r = 'blocked'; }
      out.frameReads.push(r);
      try { f.contentWindow.postMessage({ letterlock: 1, type: 'reader.open', payload: {} }, '*'); } catch (e) {}
    }
    try {
      if (typeof chrome === 'undefined' || !chrome.runtime || !chrome.runtime.sendMessage) out.runtime = 'no-api';
      else {
        const answer = await chrome.runtime.sendMessage(extensionId, { letterlock: 1, type: 'key.export', payload: {} });
        out.runtime = 'answered:' + JSON.stringify(answer);
      }
    } catch (e) { out.runtime = 'refused'; }
    const box = document.getElementById('composebody');
    const before = box.value;
    window.postMessage({ letterlock: 1, type: 'insert-armored', composeId: 'x', armored: 'FAKE' }, '*');
    await new Promise((r) => setTimeout(r, 50));
    out.fakeInsert = box.value === before ? 'ignored' : 'inserted';
    let all = '';
    for (const d of docs) all += d.documentElement.outerHTML + '\n';
    for (const d of docs) for (const t of d.querySelectorAll('textarea, input')) all += t.value + '\n';
    for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) all += s.getItem(s.key(i));
    all += document.cookie + window.name;
    out.reachable = all.includes(marker) ? 'MARKER FOUND' : 'clean';
    return out;
  },
};`;

/** A 1x1 PNG the test site serves as a remote image. */
export const PNG_1PX = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

/** The webmail-shaped test site; reachable as 127.0.0.1 (allowed) and as localhost (not allowed). */
export class Webmail {
  /** Plain-text bodies shown in the message view, one message part each. */
  messages: string[] = [];
  /** Requests for /img.png and /landing, with the headers that came along (cookie, referer). */
  hits: { path: string; cookie: string | null; referer: string | null }[] = [];
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const html = (body: string) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
      switch (url.pathname) {
        case '/':
          return html(`<!doctype html><html><head><title>Webmail</title></head><body>
<div id="messagelist">Inbox</div>
<script>document.cookie = 'webmail_session=s3cret; path=/';</script>
<iframe id="messagecontframe" src="/message" style="width:100%;height:700px;border:0"></iframe>
<div id="compose"><textarea id="composebody" name="_message" rows="12" cols="80"></textarea></div>
<script src="/hostile.js"></script></body></html>`);
        case '/message':
          // The page records every window message its frames post to it (they may post only their height).
          return html(`<!doctype html><html><body><div id="messagebody">${this.messages.map(messageHtml).join('\n')}</div>
<script>window.received = []; addEventListener('message', (e) => window.received.push(e.data));</script></body></html>`);
        case '/img.png':
          this.hits.push({ path: url.pathname + url.search, cookie: req.headers.cookie ?? null, referer: req.headers.referer ?? null });
          return res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' }).end(PNG_1PX);
        case '/landing':
          this.hits.push({ path: url.pathname + url.search, cookie: req.headers.cookie ?? null, referer: req.headers.referer ?? null });
          return html('<!doctype html><html><body><p id="landing">Landed.</p></body></html>');
        case '/hostile.js':
          return res.writeHead(200, { 'content-type': 'text/javascript' }).end(HOSTILE);
        case '/attack': {
          // A site the user never allowed frames extension pages directly.
          const base = url.searchParams.get('base') ?? '';
          const block = url.searchParams.get('block') ?? '';
          return html(`<!doctype html><html><body><p>attack</p>
<iframe id="steal-reader" src="${escapeHtml(base)}extension/pages/reader/index.html#${escapeHtml(block)}" style="width:600px;height:300px"></iframe>
<iframe id="steal-options" src="${escapeHtml(base)}extension/pages/options/index.html" style="width:600px;height:300px"></iframe>
<textarea id="composebody"></textarea>
<script>window.received = []; addEventListener('message', (e) => window.received.push(e.data));</script>
<script src="/hostile.js"></script></body></html>`);
        }
        default:
          return res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
  }

  get allowedUrl(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  attackUrl(extensionBase: string, block: string): string {
    return `http://localhost:${this.port}/attack?base=${encodeURIComponent(extensionBase)}&block=${encodeURIComponent(block)}`;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise((r) => s.close(r));
  }
}

/** The armored OpenPGP block of a delivered mail, as a webmail would show it. */
export async function armoredOf(raw: Buffer | string): Promise<string> {
  const found = await findPayload(raw, 30 * 1024 * 1024);
  return found.armored ?? armorMessage(found.binary!);
}

export function artifact(name: string): string {
  return join(ARTIFACTS, name);
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

export const LIST = 'club@lists.test';

/** The real list server, in-process, delivering to a loopback SMTP sink. */
export class ListServerUnderTest {
  sink = new Sink();
  dataDir = '';
  server: RunningServer | null = null;
  alice!: Person; // an existing member who posts

  async start(): Promise<void> {
    await this.sink.start();
    this.dataDir = tempDir('ext');
    await initData(this.dataDir, this.sink.port);
    this.alice = await person('alice@example.org');
    await addList(this.dataDir, LIST, { owner: 'owner@example.org' }, [this.alice]);
    const { config } = loadConfig(this.dataDir);
    this.server = await startServer(this.dataDir, config, SECRET, { log: createEventLog({ file: join(this.dataDir, 'logs', 'server.log'), stdout: false }) });
  }

  get base(): string {
    return `http://127.0.0.1:${this.server!.httpPort}`;
  }

  /**
   * What a webmail sends once Letterlock has put the armored post into its compose box:
   * a text/plain mail with the block as its body (CRLF lines), under the webmail's own
   * Message-ID when given. Returns the server's SMTP answer.
   */
  async postFromWebmail(from: string, armored: string, o: { to?: string; messageId?: string } = {}): Promise<string> {
    const to = o.to ?? LIST;
    const id = o.messageId ? `Message-ID: ${o.messageId}\r\n` : '';
    return send(this.server!.smtpPort, from, to, `From: <${from}>\r\nTo: <${to}>\r\nSubject: ...\r\n${id}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${armored.replace(/\r?\n/g, '\r\n')}`);
  }

  /** Alice's n-th copy, read with her key: the mail, what she reads, and the header block of the post inside the encryption. */
  async readByAlice(n: number): Promise<{ raw: Buffer; read: Awaited<ReturnType<typeof readMail>>; innerHead: string }> {
    const raw = await this.mailTo(this.alice.address, n);
    const read = await readMail(raw, { privateKey: this.alice.privateKey, senderKeys: [] });
    const inner = Buffer.from(read.content).toString('utf8');
    return { raw, read, innerHead: inner.slice(0, inner.indexOf('\r\n\r\n')) };
  }

  /** The n-th mail (1-based) the server delivered to an address. */
  async mailTo(address: string, n: number): Promise<Buffer> {
    await this.sink.waitFor(() => this.sink.to(address).length >= n, 60_000, `mail ${n} to ${address}`);
    return this.sink.to(address)[n - 1]!.raw;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    await this.sink.stop();
    removeDir(this.dataDir);
  }
}
