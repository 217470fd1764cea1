// Settings room: the state every panel shows, the user's settings (lock timeout,
// rate limit, security word) and the sites Letterlock may act on.

import { refuse } from '../../errors.ts';
import type { Requests, StateView } from '../../messages.ts';
import type { Settings } from '../store.ts';
import { str, type Common, type Room } from './room.ts';

/**
 * The site a URL belongs to, as the user allows it: scheme and host, no port
 * (browser match patterns have no ports, so access is granted per host).
 */
export function siteOf(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.protocol}//${u.hostname}` : null;
  } catch {
    return null;
  }
}

/** A site as the user may allow it: http(s) and a host. */
export function normalizeSite(input: string): string {
  const site = siteOf(input.trim());
  if (!site) refuse('BAD_INPUT', 'a site is an address like https://mail.example.org');
  return site;
}

export type SettingsRequests = 'state.get' | 'settings.set' | 'sites.set';

export class SettingsRoom {
  constructor(private readonly c: Common) {}

  readonly room: Room<SettingsRequests> = {
    // Frames show the security word too.
    'state.get': { callers: ['page', 'reader', 'composer'], run: () => this.c.state() },
    'settings.set': { callers: ['page'], run: (q) => this.setSettings(q) },
    'sites.set': { callers: ['page'], run: (q) => this.setSites(q.sites) },
  };

  /** True when the user allowed this site and the browser still grants access to it. */
  async siteAllowed(site: string | null): Promise<boolean> {
    if (!site) return false;
    const { sites } = await this.c.d.store.getSettings();
    return sites.includes(site) && (await this.c.d.hasHostAccess(site));
  }

  /** Keeps only the sites the browser still grants access to. */
  async recheckSites(): Promise<void> {
    await this.setSites((await this.c.d.store.getSettings()).sites);
  }

  private async setSettings(q: Requests['settings.set']['req']): Promise<StateView> {
    const d = this.c.d;
    const s = await d.store.getSettings();
    const next: Settings = { ...s };
    if (q.timeoutMinutes !== undefined) {
      if (!Number.isInteger(q.timeoutMinutes) || q.timeoutMinutes < 1 || q.timeoutMinutes > 24 * 60) refuse('BAD_INPUT', 'the timeout is 1 to 1440 minutes');
      next.timeoutMinutes = q.timeoutMinutes;
    }
    if (q.opsPerMinute !== undefined) {
      if (!Number.isInteger(q.opsPerMinute) || q.opsPerMinute < 10 || q.opsPerMinute > 1000) refuse('BAD_INPUT', 'the limit is 10 to 1000 operations a minute');
      next.opsPerMinute = q.opsPerMinute;
      d.rate.limit = q.opsPerMinute;
    }
    if (q.indicator !== undefined) {
      const word = str(q.indicator.word, 24, 'the word').trim();
      const colour = str(q.indicator.colour, 7, 'the colour');
      if (!/^#[0-9a-fA-F]{6}$/.test(colour)) refuse('BAD_INPUT', 'the colour is #rrggbb');
      next.indicator = { word, colour };
    }
    await d.store.putSettings(next);
    return this.c.state();
  }

  private async setSites(input: unknown): Promise<StateView> {
    const d = this.c.d;
    if (!Array.isArray(input) || input.length > 50) refuse('BAD_INPUT', 'at most 50 sites');
    const sites = [...new Set(input.map((s) => normalizeSite(str(s, 300, 'a site'))))];
    // The page asked the browser for access first; a site without it is not kept.
    const granted: string[] = [];
    for (const site of sites) if (await d.hasHostAccess(site)) granted.push(site);
    const s = await d.store.getSettings();
    await d.store.putSettings({ ...s, sites: granted });
    await d.sitesChanged(granted);
    return this.c.state();
  }
}
