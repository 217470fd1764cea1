// The one manifest, in two flavours: Chrome/Chromium (service worker) and
// Firefox (event page with background.scripts, gecko settings). Host access is
// never asked at install: the user grants each webmail site (and list server)
// at run time, and the content script is registered only for those sites.

import type { ManifestV3Export } from '@crxjs/vite-plugin';

export type Target = 'chrome' | 'firefox';

export const GECKO_ID = 'letterlock@letterlock.org';

const BACKGROUND = 'extension/background/worker.ts';
export const FRAME_PAGES = ['extension/pages/reader/index.html', 'extension/pages/composer/index.html'];

/**
 * `testHosts`: host access granted at install, for browser tests only. Chromium
 * has no way to accept its permission prompt under automation, and a host the
 * extension already holds is granted by permissions.request() without a prompt;
 * whether Letterlock acts on a site is still the user's list in the options.
 */
/**
 * Extension pages may load only their own files; images also as data: URLs (the
 * remote images a user chose to load come in that way, fetched by the
 * background); connections go to https list servers, or plain http on this
 * computer only (as normalizeServer allows). The sanitizer is a second guard,
 * not the only one.
 */
export const EXTENSION_CSP = [
  "default-src 'self'",
  // Argon2 (key protection) runs as WebAssembly.
  "script-src 'self' 'wasm-unsafe-eval'",
  "object-src 'none'",
  "img-src 'self' data:",
  "connect-src 'self' https: http://127.0.0.1:* http://localhost:*",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export function manifest(target: Target, testHosts: string[] = []): ManifestV3Export {
  const base = {
    ...(testHosts.length ? { host_permissions: testHosts } : {}),
    manifest_version: 3 as const,
    name: 'Letterlock',
    version: '0.1.0',
    description: 'Encrypted mailing lists in your webmail: read, write and browse the archive with OpenPGP, end to end.',
    // activeTab: the popup reads the URL and title of the tab it was opened on (a list's join page), nothing more.
    permissions: ['storage', 'scripting', 'alarms', 'activeTab'],
    optional_host_permissions: ['https://*/*', 'http://*/*'],
    action: { default_popup: 'extension/pages/popup/index.html', default_title: 'Letterlock' },
    options_ui: { page: 'extension/pages/options/index.html', open_in_tab: true },
    // Only the reader and composer frames may be placed in web pages; whether the
    // page's site is allowed is checked by the background for every request.
    // Chromium: only under a per-session URL, so a page cannot probe a fixed URL
    // to learn the extension is installed (Firefox's moz-extension host is a
    // random per-install UUID already, and it has no use_dynamic_url).
    web_accessible_resources: [{ resources: FRAME_PAGES, matches: ['https://*/*', 'http://*/*'], ...(target === 'chrome' ? { use_dynamic_url: true } : {}) }],
    content_security_policy: { extension_pages: EXTENSION_CSP },
  };
  if (target === 'chrome') {
    return { ...base, minimum_chrome_version: '120', background: { service_worker: BACKGROUND, type: 'module' as const } };
  }
  return {
    ...base,
    background: { scripts: [BACKGROUND], type: 'module' },
    browser_specific_settings: {
      gecko: { id: GECKO_ID, strict_min_version: '142.0', data_collection_permissions: { required: ['none'] } },
    },
  } as unknown as ManifestV3Export;
}
