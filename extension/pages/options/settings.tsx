// The security word and colour, locking, and the webmail sites Letterlock may act on.

import { useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { ask } from '../../ask.ts';
import type { StateView } from '../../messages.ts';
import { withScheme } from '../../loopback.ts';
import { ErrorLine, PermissionWait, useAction } from '../ui/ui.tsx';

type SetState = (s: StateView) => void;
const value = (e: Event) => (e.target as HTMLInputElement).value;

/** Host access pattern of a site or server URL (match patterns carry no port). */
export function patternOf(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
  return `${u.protocol}//${u.hostname}/*`;
}

/**
 * Asks the browser for access to one site. `onWaiting` shows the "your browser is
 * asking" line for as long as the browser's prompt is open (it may be behind the page).
 */
export async function requestAccess(pattern: string, what: string, onWaiting: (w: string | null) => void): Promise<boolean> {
  // Called with no await before it: browsers grant optional access only inside the
  // user's click (Firefox refuses it after any await). A site already held resolves
  // at once, so the line below only flashes.
  onWaiting(what);
  try {
    return await browser.permissions.request({ origins: [pattern] });
  } finally {
    onWaiting(null);
  }
}

export function IndicatorForm({ state, onState, onSaved }: { state: StateView; onState: SetState; onSaved?: () => void }) {
  const [word, setWord] = useState(state.indicator.word);
  const [colour, setColour] = useState(state.indicator.colour);
  const [error, busy, run] = useAction();
  return (
    <form data-test="indicator-form" aria-labelledby="indicator-title" onSubmit={(e) => { e.preventDefault(); void run(async () => {
      if (word.trim() === '') throw new Error('Type a word only you would pick, for example the name of a childhood pet.');
      onState(await ask('settings.set', { indicator: { word, colour } }));
      onSaved?.();
    }); }}>
      <h2 id="indicator-title">Your security word</h2>
      <p>Letterlock shows this word and colour on every panel it draws, in your webmail too. A web page cannot know them, so a panel without your word is not Letterlock's: do not type your passphrase there.</p>
      {state.indicator.word === '' && <p class="warning" role="note" data-test="word-prompt">You have not chosen a security word yet. Until you do, you cannot tell Letterlock's panels from a fake.</p>}
      <label>Word <input type="text" data-test="indicator-word" maxLength={24} value={word} onInput={(e) => setWord(value(e))} /></label>
      <label class="inline">Colour <input type="color" data-test="indicator-colour" value={colour} onInput={(e) => setColour(value(e))} /></label>
      <div class="actions"><button type="submit" class="primary" data-test="indicator-save" disabled={busy}>Save the word and colour</button></div>
      <ErrorLine error={error} />
    </form>
  );
}

export function Locking({ state, onState }: { state: StateView; onState: SetState }) {
  const [minutes, setMinutes] = useState(String(state.timeoutMinutes));
  const [error, busy, run] = useAction();
  return (
    <section data-test="settings" aria-labelledby="locking-title">
      <h2 id="locking-title">Locking</h2>
      <form onSubmit={(e) => { e.preventDefault(); void run(async () => onState(await ask('settings.set', { timeoutMinutes: Number(minutes) }))); }}>
        <label>Lock again after (minutes) <input type="number" min={1} max={1440} data-test="timeout-minutes" value={minutes} onInput={(e) => setMinutes(value(e))} /></label>
        <div class="actions"><button type="submit" data-test="timeout-save" disabled={busy}>Save</button></div>
        <ErrorLine error={error} />
      </form>
      {state.hasKey && <p class="muted" data-test="lock-where">Unlock and "Lock now" are at the top of <a href="#keys-title">Your keys</a>.</p>}
    </section>
  );
}

export function SitesForm({ state, onState, onAdded }: { state: StateView; onState: SetState; onAdded?: () => void }) {
  const [site, setSite] = useState('');
  const [waiting, setWaiting] = useState<string | null>(null);
  const [error, busy, run] = useAction();
  const add = () => run(async () => {
    // "mail.example.org" is taken as https://mail.example.org (people type what they see).
    const url = withScheme(site);
    let pattern: string;
    try {
      pattern = patternOf(url);
    } catch {
      throw new Error('Type the address of your webmail as it appears in the address bar, like https://mail.example.org');
    }
    // Asked in the click itself: browsers grant optional access only on a user gesture.
    const granted = await requestAccess(pattern, new URL(url).hostname, setWaiting);
    if (!granted) throw new Error('The browser did not grant access to that site. Click "Allow this site" again and answer "Allow" in the browser\'s prompt.');
    onState(await ask('sites.set', { sites: [...state.sites, url] }));
    setSite('');
    onAdded?.();
  });
  const remove = (s: string) => run(async () => {
    onState(await ask('sites.set', { sites: state.sites.filter((x) => x !== s) }));
    await browser.permissions.remove({ origins: [patternOf(s)] });
  });
  return (
    <div data-test="sites" aria-labelledby="sites-title">
      <h2 id="sites-title">Your webmail</h2>
      <p>Letterlock reads and writes only on the sites you allow here; it does nothing anywhere else.</p>
      {state.sites.length > 0 && (
        <ul class="plain" aria-label="Allowed sites">{state.sites.map((s) => (
          <li data-test="site" data-site={s}><span>{s}</span> <button type="button" aria-label={`Stop allowing ${s}`} onClick={() => void remove(s)}>Remove</button></li>
        ))}</ul>
      )}
      <form noValidate onSubmit={(e) => { e.preventDefault(); void add(); }}>
        <label>Webmail address <input type="url" data-test="site-input" placeholder="https://mail.example.org" value={site} onInput={(e) => setSite(value(e))} /></label>
        <div class="actions"><button type="submit" class="primary" data-test="site-add" disabled={busy}>Allow this site</button></div>
        <PermissionWait what={waiting} />
        <ErrorLine error={error} />
      </form>
    </div>
  );
}
