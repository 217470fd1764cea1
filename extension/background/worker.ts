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

async function registerContent(sites: string[]): Promise<void> {
  const existing = await browser.scripting.getRegisteredContentScripts({ ids: [CONTENT_ID] });
  if (existing.length) await browser.scripting.unregisterContentScripts({ ids: [CONTENT_ID] });
  if (sites.length === 0) return;
  await browser.scripting.registerContentScripts([{
    id: CONTENT_ID,
    js: [contentScript],
    matches: sites.map((s) => `${s}/*`),
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
    hasHostAccess: (origin) => browser.permissions.contains({ origins: [`${origin}/*`] }),
    pushToFrame: async (tabId, frameId, message) => {
      await browser.tabs.sendMessage(tabId, message, { frameId });
    },
    sitesChanged: registerContent,
    lockChanged: (lockAt) => {
      if (lockAt === null) void browser.alarms.clear(LOCK_ALARM);
      else void browser.alarms.create(LOCK_ALARM, { when: lockAt });
    },
    randomId: () => toHex(randomBytes(16)),
  });
  // Sites whose permission the user withdrew in the browser's own UI are dropped.
  const allowed: string[] = [];
  for (const s of settings.sites) if (await browser.permissions.contains({ origins: [`${s}/*`] })) allowed.push(s);
  if (allowed.length !== settings.sites.length) await store.putSettings({ ...settings, sites: allowed });
  await registerContent(allowed).catch(() => {});
  return service;
})();

// Listeners are added synchronously at start, as service workers require.
browser.runtime.onMessage.addListener((message: unknown, sender: browser.Runtime.MessageSender) =>
  ready.then((s) => s.handle(message, sender)),
);

browser.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === LOCK_ALARM) void session.lock();
});

// Access withdrawn in the browser's own UI: stop acting on that site at once.
browser.permissions.onRemoved.addListener(() => {
  void ready.then((s) => s.recheckSites());
});
