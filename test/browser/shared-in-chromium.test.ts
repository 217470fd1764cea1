// shared/ runs unchanged in the browser: vite bundles it for the web (browser
// export conditions, no Node polyfills) and real headless Chromium runs the whole
// protocol path — keys, compose, open, seal, wrap, read, archive re-wrap.

import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
let dir: string, server: Server, browser: Browser, origin: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'letterlock-browser-'));
  await build({
    configFile: false,
    logLevel: 'error',
    root: dir,
    build: {
      outDir: dir,
      emptyOutDir: false,
      target: 'es2022',
      minify: false,
      lib: { entry: join(import.meta.dirname, 'shared-entry.ts'), formats: ['es'], fileName: () => 'shared.js' },
    },
  });
  const bundle = readFileSync(join(dir, 'shared.js'), 'utf8');
  // A bundle that reached for Node built-ins would name them here.
  expect(bundle).not.toMatch(/from\s+["']node:|require\(["'](fs|crypto|buffer|stream)["']\)/);
  server = createServer((req, res) => {
    if (req.url === '/shared.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>shared</title>');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('shared/ in real Chromium', () => {
  it('runs the protocol path end to end in a page', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${origin}/`);
    // A string, not a function: vitest would rewrite a dynamic import() inside a callback.
    const result = (await page.evaluate(`import('/shared.js').then((m) => m.roundTrip('Grüße aus dem Browser ✓', 'Hello from Chromium.\\r\\nSecond line\\n'))`)) as Record<string, unknown>;
    expect(errors).toEqual([]);
    expect(result).toMatchObject({
      subject: 'Grüße aus dem Browser ✓',
      text: 'Hello from Chromium.\r\nSecond line\n',
      signatureValid: true,
      archiveSubject: 'Grüße aus dem Browser ✓',
      hasNodeGlobals: false,
    });
    expect(result.signer).toBe(result.aliceFingerprint);
  });
});
