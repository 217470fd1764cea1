// Screenshots of every extension page in light and dark, written by the browser
// tests as artifacts (test-artifacts/screenshots/, not committed) so people can
// look at what users see. The colour scheme is emulated per page.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page as PlaywrightPage } from 'playwright-core';
import type { Page as PuppeteerPage } from 'puppeteer-core';
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
 * BiDi has no media emulation, so for the dark shot the page's own
 * `prefers-color-scheme: dark` rules are applied unconditionally for the moment
 * of the screenshot (the same CSS the browser would apply), then removed. Frames
 * of the extension inside a web page are out of the driver's reach and stay light.
 */
export async function shootFirefox(page: PuppeteerPage, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `firefox-${name}-light.png`) as `${string}.png`, fullPage });
  await page.evaluate(() => {
    const added: [CSSStyleSheet, number][] = [];
    for (const sheet of Array.from(document.styleSheets)) {
      let rules: CSSRuleList;
      try {
        rules = sheet.cssRules;
      } catch {
        continue;
      }
      for (const rule of Array.from(rules)) {
        if (rule instanceof CSSMediaRule && /prefers-color-scheme:\s*dark/.test(rule.conditionText)) {
          for (const inner of Array.from(rule.cssRules)) added.push([sheet, sheet.insertRule(inner.cssText, sheet.cssRules.length)]);
        }
      }
    }
    document.documentElement.style.colorScheme = 'dark';
    (window as unknown as { __darkRules: [CSSStyleSheet, number][] }).__darkRules = added;
  });
  await page.screenshot({ path: join(SCREENSHOTS, `firefox-${name}-dark.png`) as `${string}.png`, fullPage });
  await page.evaluate(() => {
    const added = (window as unknown as { __darkRules?: [CSSStyleSheet, number][] }).__darkRules ?? [];
    for (const [sheet, i] of added.reverse()) sheet.deleteRule(i);
    document.documentElement.style.colorScheme = '';
  });
}
