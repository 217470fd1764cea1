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

/** Firefox (puppeteer over WebDriver BiDi): the same two files, named firefox-…. */
export async function shootFirefox(page: PuppeteerPage, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    await page.screenshot({ path: join(SCREENSHOTS, `firefox-${name}-${scheme}.png`) as `${string}.png`, fullPage });
  }
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
}
