// The background entry (Chrome: service worker; Firefox: event page). It wires
// the Service to the browser: messaging, session storage, the lock alarm, and the
// content script registered only for the sites the user allowed.

import browser from 'webextension-polyfill';
import contentScript from '../content/content.ts?iife';
import { toHex, randomBytes } from '../../shared/bytes.ts';
import { ListServer } from './server.ts';
import { Service } from './service.ts';
import { RateLimiter, UnlockedSession, type SessionArea } from './session.ts';
import { KeyStore } from './store.ts';

const LOCK_ALARM = 'letterlock-lock';
const CONTENT_ID = 'letterlock-webmail';

// Session storage is for trusted extension contexts only (Chrome's default; said
// explicitly so a later change cannot open it to content scripts).
const sessionStorage = browser.storage.session as typeof browser.storage.session & { setAccessLevel?(o: { accessLevel: string }): Promise<void> };
void sessionStorage.setAccessLevel?.({ accessLevel: 'TRUSTED_CONTEXTS' }).catch(() => {});

const area: SessionArea = {
  get: (k) => sessionStorage.get(k),
  set: (items) => sessionStorage.set(items),
  remove: (k) => sessionStorage.remove(k),
};

/** Registers the content script for exactly the allowed sites (nothing when there are none). */
async function registerContent(sites: string[]): Promise<void> {
  const matches = sites.map((s) => `${s}/*`).sort();
  const existing = await browser.scripting.getRegisteredContentScripts({ ids: [CONTENT_ID] });
  // The worker starts often; leave a registration that is already right alone.
  if (existing.length === 1 && JSON.stringify([...(existing[0]!.matches ?? [])].sort()) === JSON.stringify(matches)) return;
  if (existing.length) await browser.scripting.unregisterContentScripts({ ids: [CONTENT_ID] });
  if (sites.length === 0) return;
  await browser.scripting.registerContentScripts([{
    id: CONTENT_ID,
    js: [contentScript],
    matches,
    allFrames: true,
    runAt: 'document_idle',
    persistAcrossSessions: true,
  }]);
}

const session = new UnlockedSession(area);
const ready: Promise<Service> = (async () => {
  const store = await KeyStore.open();
  const settings = await store.getSettings();
  await session.restore();
  const service = new Service({
    store,
    session,
    rate: new RateLimiter(settings.opsPerMinute),
    server: new ListServer((url, init) => fetch(url, init)),
    extensionId: browser.runtime.id,
    extensionBase: browser.runtime.getURL('/'),
    hasHostAccess: (site) => browser.permissions.contains({ origins: [`${site}/*`] }),
    pushToFrame: (tabId, frameId, message) => browser.tabs.sendMessage(tabId, message, { frameId }),
    openTab: async (url) => {
      await browser.tabs.create({ url });
    },
    fetch: (url, init) => fetch(url, init),
    testMarks: __LETTERLOCK_TEST_MARKS__,
    sitesChanged: registerContent,
    lockChanged: (lockAt) => {
      if (lockAt === null) void browser.alarms.clear(LOCK_ALARM);
      else void browser.alarms.create(LOCK_ALARM, { when: lockAt });
    },
    randomId: () => toHex(randomBytes(16)),
  });
  // Sites whose access the user withdrew in the browser's own UI are dropped, and
  // the content script registration is brought in line with the list.
  await service.recheckSites().catch(() => {});
  return service;
})();

// Listeners are added synchronously at start, as service workers require.
browser.runtime.onMessage.addListener((message: unknown, sender: browser.Runtime.MessageSender) =>
  ready.then((s) => s.handle(message, sender)),
);

// A new install opens the options page, which is the guided first run while there is no key.
browser.runtime.onInstalled.addListener((details) => {
  if (details.reason === 'install') void browser.runtime.openOptionsPage().catch(() => {});
});

browser.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === LOCK_ALARM) void session.lock();
});

// Access withdrawn in the browser's own UI: stop acting on that site at once.
browser.permissions.onRemoved.addListener(() => {
  void ready.then((s) => s.recheckSites());
});
