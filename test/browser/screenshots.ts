// Screenshots of every extension page in light and dark, written by the browser
// tests as artifacts (test-artifacts/screenshots/, not committed) so people can
// look at what users see. The colour scheme is emulated per page.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page as PlaywrightPage } from 'playwright-core';
import type { Frame as PuppeteerFrame, Page as PuppeteerPage } from 'puppeteer-core';
import { ROOT } from './extension-kit.ts';

export const SCREENSHOTS = join(ROOT, 'test-artifacts', 'screenshots');

/** Chromium (playwright): `<browser>-<name>-light.png` and `-dark.png`, then back to light. */
export async function shootChromium(page: PlaywrightPage, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(SCREENSHOTS, `chromium-${name}-${scheme}.png`), fullPage });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/**
 * Firefox (puppeteer over WebDriver BiDi): the same two files, named firefox-….
 * BiDi has no media emulation, so for the dark shot each document's own
 * `prefers-color-scheme: dark` rules are applied unconditionally for the moment
 * of the screenshot (the same CSS the browser would apply), then removed: the
 * page's, and those of every extension frame placed in it (reader, composer),
 * which BiDi reaches as browsing contexts of their own (see extensionFrameIn).
 * (Firefox also lets a frame follow its embedder's color-scheme, but a web page
 * between them may set its own; each frame is darkened itself.) Returns how many
 * extension frames in the page look different in the dark shot, so a test can tell.
 */
export async function shootFirefox(page: PuppeteerPage, name: string, fullPage = true): Promise<{ darkFrames: number }> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `firefox-${name}-light.png`) as `${string}.png`, fullPage });
  const main = page.mainFrame();
  const frames: PuppeteerFrame[] = [main];
  for (const f of page.frames()) {
    if (f === main) continue;
    // Only our own frames: the web page's other frames are the page's business.
    const ours = await f.evaluate(() => location.protocol === 'moz-extension:').catch(() => false);
    if (ours) frames.push(f);
  }
  // Each frame's background in the light shot and in the dark one.
  const background = (f: PuppeteerFrame) => f.evaluate(() => getComputedStyle(document.body ?? document.documentElement).backgroundColor).catch(() => '');
  const light = await Promise.all(frames.map(background));
  for (const f of frames) await f.evaluate(darken).catch(() => {});
  const dark = await Promise.all(frames.map(background));
  const darkFrames = frames.filter((f, i) => f !== main && dark[i] !== light[i]).length;
  await page.screenshot({ path: join(SCREENSHOTS, `firefox-${name}-dark.png`) as `${string}.png`, fullPage });
  for (const f of frames) await f.evaluate(lighten).catch(() => {});
  return { darkFrames };
}

/** In the document: adds its dark-scheme rules unconditionally. */
function darken(): void {
  const added: [CSSStyleSheet, number][] = [];
  for (const sheet of Array.from(document.styleSheets)) {
    let rules: CSSRuleList;
    try {
      rules = sheet.cssRules;
    } catch {
      continue;
    }
    for (const rule of Array.from(rules)) {
      // Not `instanceof CSSMediaRule`: in a frame placed in a web page the driver may
      // run this in another realm, whose CSSMediaRule is not the document's.
      const media = rule as CSSMediaRule;
      if (typeof media.conditionText === 'string' && /prefers-color-scheme:\s*dark/.test(media.conditionText)) {
        for (const inner of Array.from(media.cssRules)) added.push([sheet, sheet.insertRule(inner.cssText, sheet.cssRules.length)]);
      }
    }
  }
  document.documentElement.style.colorScheme = 'dark';
  (window as unknown as { __darkRules: [CSSStyleSheet, number][] }).__darkRules = added;
}

/** In the document: takes the added rules out again. */
function lighten(): void {
  const added = (window as unknown as { __darkRules?: [CSSStyleSheet, number][] }).__darkRules ?? [];
  for (const [sheet, i] of added.reverse()) sheet.deleteRule(i);
  document.documentElement.style.colorScheme = '';
}
