// The two builds from one source: manifests as each browser needs them, the CSP
// Argon2 needs, no crypto in the content script, and web-ext lint on Firefox's.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTENSION_CSP } from '../../extension/manifest.ts';
import { buildExtension, removeDir, ROOT } from '../browser/extension-kit.ts';

let chrome: string, firefox: string;
beforeAll(async () => {
  chrome = await buildExtension('chrome');
  firefox = await buildExtension('firefox');
}, 120_000);
afterAll(() => {
  removeDir(chrome);
  removeDir(firefox);
});

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, any>;

describe('extension builds', () => {
  it('Chrome: MV3 service worker, no host access at install, the CSP (default-src self, images self and data:)', () => {
    const m = manifestOf(chrome);
    expect(m.manifest_version).toBe(3);
    expect(m.background).toMatchObject({ service_worker: expect.any(String), type: 'module' });
    expect(m.host_permissions).toBeUndefined();
    expect(m.content_scripts).toBeUndefined(); // registered at run time, only for allowed sites
    expect(m.optional_host_permissions).toEqual(['https://*/*', 'http://*/*']);
    // activeTab (the popup reads the join page it was opened on); no "tabs", no host access.
    expect(m.permissions).toEqual(['storage', 'scripting', 'alarms', 'activeTab']);
    // Web pages may load only the two frames (the background checks the site for each
    // request), and only under the per-session URL, so no fixed URL betrays the extension.
    expect(m.web_accessible_resources).toEqual([{ resources: ['extension/pages/reader/index.html', 'extension/pages/composer/index.html'], matches: ['http://*/*', 'https://*/*'], use_dynamic_url: true }]);
    expect(m.content_security_policy.extension_pages).toBe(EXTENSION_CSP);
    expect(EXTENSION_CSP).toContain("default-src 'self'");
    expect(EXTENSION_CSP).toContain("img-src 'self' data:");
    expect(EXTENSION_CSP).toContain("script-src 'self' 'wasm-unsafe-eval'");
  });

  it('Firefox: event page scripts and gecko settings', () => {
    const m = manifestOf(firefox);
    expect(m.background.scripts).toHaveLength(1);
    expect(m.background.service_worker).toBeUndefined();
    expect(m.permissions).toEqual(['storage', 'scripting', 'alarms', 'activeTab']);
    expect(m.host_permissions).toBeUndefined();
    expect(m.content_security_policy.extension_pages).toBe(EXTENSION_CSP);
    // Firefox has no use_dynamic_url; its moz-extension host is a random UUID per install.
    expect(m.web_accessible_resources).toEqual([{ resources: ['extension/pages/reader/index.html', 'extension/pages/composer/index.html'], matches: ['http://*/*', 'https://*/*'] }]);
    expect(m.browser_specific_settings.gecko).toMatchObject({ id: expect.any(String), strict_min_version: '142.0', data_collection_permissions: { required: ['none'] } });
  });

  it('the content script bundle holds no OpenPGP code and imports nothing', () => {
    const content = readFileSync(join(chrome, 'extension', 'content', 'content.js'), 'utf8');
    expect(content).toContain('BEGIN PGP MESSAGE'); // it is the finder
    for (const sign of ['OpenPGP.js', 'argon2', 'decryptSessionKeys', 'curve25519', 'readPrivateKey', 'unlockPrivateKey']) expect(content).not.toContain(sign);
    expect(content).not.toMatch(/\bimport\s*[({"']/);
    // The crypto lives in the background bundle.
    const assets = readdirSync(join(chrome, 'assets')).map((f) => readFileSync(join(chrome, 'assets', f), 'utf8'));
    expect(assets.some((a) => a.includes('decryptSessionKeys'))).toBe(true);
  });

  it('web-ext lint reports no errors on the Firefox build', () => {
    const out = execFileSync(join(ROOT, 'node_modules', '.bin', 'web-ext'), ['lint', '-s', firefox, '-o', 'json', '--no-input'], { encoding: 'utf8' });
    const report = JSON.parse(out) as { summary: { errors: number }; errors: unknown[] };
    expect(report.errors).toEqual([]);
    expect(report.summary.errors).toBe(0);
  });
});
