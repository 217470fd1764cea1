// Driving the toolbar popup on a list's join page, in both browsers, the way a
// user's click on the Letterlock button does it (so the popup gets the activeTab
// grant for that tab, and only that):
// - Chromium: CDP Extensions.triggerAction on the tab's target (needs
//   --enable-unsafe-extension-debugging); the popup is a CDP target of its own,
//   reached by a non-flattened session (Playwright lists no popup pages).
// - Firefox: the browser action's own triggerAction(window), run in the browser's
//   chrome window over WebDriver BiDi (the kit starts Firefox with
//   --remote-allow-system-access); the popup's DOM is reached from an extension
//   page in another tab by extension.getViews({ type: 'popup' }).
// openPopup() (no click) is also offered, to show that without the click the
// popup sees nothing of the tab.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, CDPSession, Page as PlaywrightPage } from 'playwright-core';
import type { Browser as PuppeteerBrowser, Page as PuppeteerPage } from 'puppeteer-core';
import { openData } from '../../server/app.ts';
import { setListSettings } from '../../server/store/settings.ts';
import { getList } from '../../server/store/lists.ts';
import { SECRET } from '../integration/server/harness.ts';
import { GECKO_ID, LIST, type ListServerUnderTest } from './extension-kit.ts';
import { SCREENSHOTS } from './screenshots.ts';

export const CLUB_NAME = 'The <Club> & friends';
export const CLUB_DESCRIPTION = 'Encrypted talk for the club.\nPosts are signed; the archive is for members.';

/** Names the test list (with markup characters, which the page and popup must show as text). */
export async function nameTheList(list: ListServerUnderTest): Promise<void> {
  const sql = await openData(list.dataDir, SECRET);
  try {
    await setListSettings(sql, (await getList(sql, LIST))!.id, { name: CLUB_NAME, description: CLUB_DESCRIPTION });
  } finally {
    await sql.close();
  }
}

export const joinPageOf = (list: ListServerUnderTest) => `${list.base}/join/${LIST}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it returns a value other than undefined, or fails with `what` after `ms`. */
export async function until<T>(f: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

// ---- Chromium ---------------------------------------------------------------------------------

export const CHROMIUM_ACTION_ARGS = ['--enable-unsafe-extension-debugging'];

interface TargetInfo { targetId: string; type: string; url: string }

/** The open popup, over a CDP session of its own. */
export class ChromiumPopup {
  private next = 0;
  private readonly pending = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>();

  private constructor(private readonly browser: CDPSession, private readonly sessionId: string) {
    browser.on('Target.receivedMessageFromTarget' as never, ((e: { sessionId: string; message: string }) => {
      if (e.sessionId !== this.sessionId) return;
      const m = JSON.parse(e.message) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id !== undefined) this.pending.get(m.id)?.(m);
      if (m.id !== undefined) this.pending.delete(m.id);
    }) as never);
  }

  static async attach(browser: CDPSession, popupUrl: string): Promise<ChromiumPopup> {
    const target = await until(async () => {
      const { targetInfos } = await browser.send('Target.getTargets') as { targetInfos: TargetInfo[] };
      return targetInfos.find((t) => t.type === 'page' && t.url.startsWith(popupUrl));
    }, 30_000, 'the popup to open');
    const { sessionId } = await browser.send('Target.attachToTarget', { targetId: target.targetId, flatten: false }) as { sessionId: string };
    return new ChromiumPopup(browser, sessionId);
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.next;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`popup ${method}: no answer`));
      }, 30_000);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) reject(new Error(`popup ${method}: ${m.error.message}`));
        else resolve(m.result as T);
      });
      void this.browser.send('Target.sendMessageToTarget', { sessionId: this.sessionId, message: JSON.stringify({ id, method, params }) }).catch(reject);
    });
  }

  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`popup evaluate: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** The popup's text once `selector` is in it. */
  async waitFor(selector: string, ms = 30_000): Promise<string> {
    return until(() => this.evaluate<string | undefined>(`document.querySelector(${JSON.stringify(selector)})?.innerText ?? undefined`), ms, `${selector} in the popup`);
  }

  /** A real mouse click in the middle of the element. */
  async click(selector: string): Promise<void> {
    const box = await this.evaluate<{ x: number; y: number }>(`(() => { const r = document.querySelector(${JSON.stringify(selector)}).getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`);
    for (const type of ['mouseMoved', 'mousePressed', 'mouseReleased']) {
      await this.send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 });
    }
  }

  /** chromium-<name>-light.png and -dark.png in the screenshots folder. */
  async shoot(name: string): Promise<void> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    for (const scheme of ['light', 'dark']) {
      await this.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: scheme }] });
      const { data } = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
      writeFileSync(join(SCREENSHOTS, `chromium-${name}-${scheme}.png`), Buffer.from(data, 'base64'));
    }
    await this.send('Emulation.setEmulatedMedia', { features: [] });
  }
}

/** The user's click on the Letterlock toolbar button while `page` is the active tab. */
export async function chromiumToolbarClick(ctx: BrowserContext, extId: string, page: PlaywrightPage): Promise<ChromiumPopup> {
  await page.bringToFront();
  const browser = await ctx.browser()!.newBrowserCDPSession();
  const tab = await until(async () => {
    const { targetInfos } = await browser.send('Target.getTargets', { filter: [{ type: 'tab' }] } as never) as { targetInfos: TargetInfo[] };
    return targetInfos.find((t) => t.type === 'tab' && t.url === page.url());
  }, 30_000, 'the tab target');
  await browser.send('Extensions.triggerAction' as never, { id: extId, targetId: tab.targetId } as never);
  return ChromiumPopup.attach(browser, `chrome-extension://${extId}/extension/pages/popup/`);
}

// ---- Firefox ----------------------------------------------------------------------------------

interface BidiConnection { send(method: string, params: Record<string, unknown>): Promise<{ result: unknown }> }

async function inBrowserChrome<T>(browser: PuppeteerBrowser, expression: string): Promise<T> {
  const conn = (browser as unknown as { connection: BidiConnection }).connection;
  const tree = (await conn.send('browsingContext.getTree', { 'moz:scope': 'chrome' })).result as { contexts: { context: string; url: string }[] };
  const win = tree.contexts.find((c) => c.url === 'chrome://browser/content/browser.xhtml');
  if (!win) throw new Error('no browser window in the chrome contexts');
  const r = (await conn.send('script.evaluate', { expression, target: { context: win.context }, awaitPromise: true, resultOwnership: 'none' })).result as {
    type: string; result?: { value: T }; exceptionDetails?: { text: string };
  };
  if (r.type !== 'success') throw new Error(`browser chrome: ${r.exceptionDetails?.text ?? r.type}`);
  return r.result?.value as T;
}

/** The user's click on the Letterlock toolbar button: the browser action's own click handling, on the window's selected tab. */
export async function firefoxToolbarClick(browser: PuppeteerBrowser, page: PuppeteerPage): Promise<void> {
  await page.bringToFront();
  await inBrowserChrome(browser, `(async () => {
    const { ExtensionParent } = ChromeUtils.importESModule('resource://gre/modules/ExtensionParent.sys.mjs');
    const extension = WebExtensionPolicy.getByID(${JSON.stringify(GECKO_ID)}).extension;
    await ExtensionParent.apiManager.global.browserActionFor(extension).triggerAction(window);
    return 'clicked';
  })()`);
}

/** The open popup's text under `selector` (read from the extension page `ext`), or undefined. */
export async function firefoxPopupText(ext: PuppeteerPage, selector: string): Promise<string | undefined> {
  return ext.evaluate((sel) => {
    const views = (globalThis as unknown as { browser: { extension: { getViews(o: { type: string }): Window[] } } }).browser.extension.getViews({ type: 'popup' });
    const el = views[0]?.document.querySelector(sel) as HTMLElement | null | undefined;
    return el ? el.innerText : undefined;
  }, selector);
}

/** Clicks in the open popup (a DOM click, from the extension page `ext`). */
export async function firefoxPopupClick(ext: PuppeteerPage, selector: string): Promise<void> {
  await ext.evaluate((sel) => {
    const views = (globalThis as unknown as { browser: { extension: { getViews(o: { type: string }): Window[] } } }).browser.extension.getViews({ type: 'popup' });
    (views[0]!.document.querySelector(sel) as HTMLElement).click();
  }, selector);
}
