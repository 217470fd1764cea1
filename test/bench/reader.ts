// Benchmark (not a test): time from the click on "Decrypt" in the extension's
// reader frame to the plaintext of an armored 100 KB post shown there, after
// unlock, in real headless Chromium (the click's checks included: visibility by
// IntersectionObserver v2 and by the content script, then decryption and
// drawing); prints the median of several runs and the size of both built
// extension packages. Target: 200 ms or less.
//   npm run bench:reader

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { composePost, generateKey, readPublicKey } from '../../shared/index.ts';
import { buildExtension, removeDir, ROOT, Webmail } from '../browser/extension-kit.ts';
import { makeKey } from '../support/keys.ts';

const RUNS = 9;
const SIZE = 100 * 1024;

function dirSize(dir: string): number {
  return readdirSync(dir).reduce((n, f) => {
    const p = join(dir, f);
    return n + (statSync(p).isDirectory() ? dirSize(p) : statSync(p).size);
  }, 0);
}

const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;

async function main(): Promise<void> {
  // The release packages, as `npm run build:extension` makes them.
  execFileSync(process.execPath, [join(ROOT, 'extension', 'scripts', 'pack.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const t of ['chrome', 'firefox']) {
    console.log(`size ${t}: ${kb(statSync(join(ROOT, 'dist', `letterlock-${t}.zip`)).size)} zipped, ${kb(dirSize(join(ROOT, 'dist', t)))} unpacked`);
  }

  const extDir = await buildExtension('chrome', ['http://127.0.0.1/*']);
  const site = new Webmail();
  await site.start();
  const profile = mkdtempSync(join(tmpdir(), 'letterlock-bench-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: false,
    args: ['--headless=new', `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`, '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const sw = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
    const base = `chrome-extension://${new URL(sw.url()).host}/`;
    const options = await ctx.newPage();
    await options.goto(`${base}extension/pages/options/index.html`);
    const g = await generateKey({ kind: 'subscriber', address: 'bench@example.org', passphrase: 'bench passphrase', protection: 'argon2' });
    const ask = (type: string, payload: unknown) => options.evaluate(([t, p]) => (globalThis as unknown as { chrome: { runtime: { sendMessage(m: unknown): Promise<{ ok: boolean }> } } }).chrome.runtime.sendMessage({ letterlock: 1, type: t, payload: p }), [type, payload] as const);
    if (!(await ask('key.import', { armored: g.privateKeyArmored, passphrase: 'bench passphrase' })).ok) throw new Error('import failed');
    await options.fill('[data-test=site-input]', 'http://127.0.0.1');
    await options.click('[data-test=site-add]');
    await options.locator('[data-test=site][data-site="http://127.0.0.1"]').waitFor();

    const sender = await makeKey('alice@example.org');
    const { key: reader } = await readPublicKey(g.publicKeyArmored);
    const words = 'Letterlock keeps list mail encrypted end to end. ';
    const text = words.repeat(Math.ceil(SIZE / words.length)).slice(0, SIZE);
    const armored = (await composePost({ message: { subject: 'Bench', from: { address: sender.address }, to: [{ address: 'list@example.org' }], text }, senderKey: sender.privateKey, listKey: reader })).armored;

    const page = await ctx.newPage();
    await page.goto(site.allowedUrl);
    const frame = page.frames()[1]!;
    await frame.waitForSelector('#messagebody', { state: 'attached' });
    const times: number[] = [];
    const used = new Set<unknown>(); // reader frames of earlier runs (the driver may list them a moment longer)
    for (let i = 0; i < RUNS + 1; i++) {
      await frame.evaluate((a) => {
        const body = document.getElementById('messagebody')!;
        body.replaceChildren();
        const pre = document.createElement('div');
        pre.className = 'pre';
        pre.textContent = a;
        body.append(pre);
      }, armored);
      const reader = await (async () => {
        for (const end = Date.now() + 30_000; Date.now() < end;) {
          const f = page.frames().find((x) => x.url().includes('/extension/pages/reader/index.html') && !x.isDetached() && !used.has(x));
          if (f) {
            used.add(f);
            return f;
          }
          await new Promise((r) => setTimeout(r, 20)); // polling the driver's frame list, not timing anything
        }
        throw new Error('no reader frame');
      })();
      await reader.waitForSelector('[data-test=reader][data-test-state=encrypted]', { timeout: 30_000 });
      // Measured inside the reader frame: from the click to the plaintext drawn.
      await reader.evaluate(() => {
        (window as unknown as { bench: Promise<number> }).bench = new Promise<number>((resolve) => {
          let t0 = 0;
          document.addEventListener('click', () => (t0 = performance.now()), { capture: true, once: true });
          new MutationObserver((_m, obs) => {
            if (t0 && document.querySelector('[data-test=reader][data-test-state=decrypted] [data-test=plaintext]')) {
              obs.disconnect();
              resolve(performance.now() - t0);
            }
          }).observe(document.body, { subtree: true, childList: true, attributes: true });
        });
      });
      await reader.click('[data-test=decrypt]');
      const ms = await reader.evaluate(() => (window as unknown as { bench: Promise<number> }).bench);
      if (i > 0) times.push(ms); // the first run warms up the worker and the frame
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    console.log(`reader, ${kb(armored.length)} armored (${kb(SIZE)} text), ${RUNS} runs: median ${median.toFixed(0)} ms, min ${times[0]!.toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms (target <= 200 ms after the click: ${median <= 200 ? 'met' : 'NOT met'})`);
  } finally {
    await ctx.close();
    await site.stop();
    removeDir(extDir);
    removeDir(profile);
  }
}

await main();
