import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildExtension, launchFirefoxWithExtension, ListServerUnderTest, LIST, openFirefoxExtensionPage } from './extension-kit.ts';

const list = new ListServerUnderTest();
const [extDir] = await Promise.all([buildExtension('firefox', process.env.HOSTS ? [process.env.HOSTS] : []), list.start()]);
const profile = mkdtempSync(join(tmpdir(), 'scratchff-'));
const UUID = randomUUID();
const browser = await launchFirefoxWithExtension(extDir!, profile, UUID, { 'extensions.openPopupWithoutUserGesture.enabled': true });
try {
  const ext = await browser.newPage();
  await openFirefoxExtensionPage(ext, `moz-extension://${UUID}/extension/pages/options/index.html`, '[data-test=options]');
  console.log('typeof browser', await ext.evaluate(() => typeof (globalThis as any).browser));
  console.log('typeof browser.tabs', await ext.evaluate(() => typeof (globalThis as any).browser?.tabs));
  const join = await browser.newPage();
  await join.goto(`${list.base}/join/${LIST}`);
  await join.bringToFront();
  console.log('title', await join.title());
  const conn = (browser as any).connection;
  const tree = await conn.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
  console.log('tree', JSON.stringify(tree.result.contexts.map((c: any) => [c.context, c.url])).slice(0, 300));
  const chromeCtx = tree.result.contexts.find((c: any) => c.url === 'chrome://browser/content/browser.xhtml').context;
  const ev = await conn.send('script.evaluate', { expression: `(async () => {
    const { ExtensionParent } = ChromeUtils.importESModule("resource://gre/modules/ExtensionParent.sys.mjs");
    const ext = WebExtensionPolicy.getByID('letterlock@letterlock.org').extension;
    const ba = ExtensionParent.apiManager.global.browserActionFor(ext);
    const keys = Object.getOwnPropertyNames(Object.getPrototypeOf(ba)).join(',');
    await ba.triggerAction(window);
    return keys;
  })()`, target: { context: chromeCtx }, awaitPromise: true, resultOwnership: 'none' });
  console.log('eval', JSON.stringify(ev.result).slice(0, 500));
  await new Promise((r) => setTimeout(r, 2000));
  const r = await ext.evaluate(async () => {
    const b = (globalThis as any).browser;
    const views = b.extension.getViews({ type: 'popup' });
    return JSON.stringify({ views: views.length, text: views[0]?.document.body.innerText });
  });
  console.log('result', r);
} catch (e) { console.log('failed', e); }
await browser.close();
await list.stop();
process.exit(0);
