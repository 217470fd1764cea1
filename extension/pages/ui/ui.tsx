// Pieces every extension-drawn panel shares: the security indicator (a word and
// colour only the user and the extension know, so a web page cannot draw a
// convincing fake), an error line, and a hook that runs one bus call.

import { render, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { Indicator, StateView } from '../../messages.ts';
import { explain } from './words.ts';
import './ui.css';

export function SecurityIndicator({ indicator }: { indicator: Indicator | null }) {
  if (!indicator) return <div class="indicator" data-test="security-indicator" data-test-state="loading" aria-hidden="true" />;
  if (indicator.word === '') {
    // Unset: no colour badge at all, so nothing looks vouched for; the user is asked to choose.
    return (
      <div class="indicator" data-test="security-indicator" data-test-state="unset" role="note">
        <span data-test="security-word">No security word yet</span>
      </div>
    );
  }
  return (
    <div class="indicator" data-test="security-indicator" data-test-state="chosen" style={{ background: indicator.colour, color: readableOn(indicator.colour) }}
      aria-label={`Your Letterlock security word: ${indicator.word}`}>
      <span data-test="security-word">{indicator.word}</span>
    </div>
  );
}

/** Black or white text, whichever reads better on the user's colour. */
function readableOn(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  const lum = 0.2126 * ((n >> 16) & 255) + 0.7152 * ((n >> 8) & 255) + 0.0722 * (n & 255);
  return lum > 150 ? '#111' : '#fff';
}

/** The one error slot of a form: a later attempt replaces (or clears) what it says. */
export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return <p class="error" role="alert" data-test="error">{error}</p>;
}

export function messageOf(e: unknown): string {
  return explain(e);
}

/**
 * Runs one form's action: busy while it runs, its error slot cleared when it
 * starts and set only by this attempt, so an old error never outlives a retry.
 */
export function useAction(): [string | null, boolean, (f: () => Promise<void>) => Promise<void>, (e: string | null) => void] {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
    }
  };
  return [error, busy, run, setError];
}

/** Saves text as a file the user downloads (the backup and the revocation certificate). */
export function download(filename: string, text: string, type = 'application/pgp-keys'): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoked later: the browser reads the blob after the click returns.
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

/** Shown while the browser's own permission prompt is open, so the greyed-out form makes sense. */
export function PermissionWait({ what }: { what: string | null }) {
  if (!what) return null;
  return (
    <p class="waiting" role="status" aria-live="polite" data-test="permission-wait">
      Your browser is asking for permission to let Letterlock reach {what}. Answer its prompt (near the address bar) to go on.
    </p>
  );
}

/** The background's state, refreshed on demand. */
export function useExtensionState(): [StateView | null, (s: StateView) => void, () => Promise<void>, string | null] {
  const [state, setState] = useState<StateView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const refresh = async () => {
    try {
      setState(await ask('state.get', {}));
    } catch (e) {
      setError(messageOf(e));
    }
  };
  useEffect(() => {
    void refresh();
  }, []);
  return [state, setState, refresh, error];
}

export function Panel({ title, state, children, narrow = false }: { title: string; state: StateView | null; children: ComponentChildren; narrow?: boolean }) {
  return (
    <div class={narrow ? 'panel narrow' : 'panel'}>
      <header>
        <SecurityIndicator indicator={state?.indicator ?? null} />
        <h1>{title}</h1>
      </header>
      {children}
    </div>
  );
}

export function mount(node: ComponentChildren): void {
  render(node, document.getElementById('app')!);
}

/** Groups a fingerprint in fours, as people read them aloud. */
export function formatFingerprint(fp: string): string {
  return fp.replace(/(.{4})/g, '$1 ').trim();
}

/** A rough strength hint: length and variety, in words. */
export function passphraseHint(p: string): { level: 'weak' | 'fair' | 'strong'; text: string } {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(p)).length;
  const words = p.trim().split(/\s+/).filter(Boolean).length;
  const score = p.length + classes * 3 + (words >= 4 ? 10 : 0);
  if (p.length < 8 || score < 18) return { level: 'weak', text: 'Weak: use at least 12 characters, or four or more words.' };
  if (score < 28) return { level: 'fair', text: 'Fair: longer is stronger; four random words work well.' };
  return { level: 'strong', text: 'Strong.' };
}

/**
 * Test builds only: the frame's state words (`step`: the last action, e.g. a
 * confirmed subscription) go to the background, which has the content script
 * mark them on the iframe for the test driver. Nothing is posted to the page.
 */
export function reportState(id: string, state: string, signature = '', step = ''): void {
  if (__LETTERLOCK_TEST_MARKS__) void ask('frame.state', { id, state, signature, step }).catch(() => {});
}

/**
 * The one thing a frame placed in a web page posts to it: its height, so the
 * content script can size the iframe. No state, no words: the page learns no
 * more than the frame's size, which it could measure anyway.
 */
export function reportHeight(): void {
  if (window.parent === window) return;
  let last = -1;
  const post = () => {
    const h = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (h === last) return;
    last = h;
    window.parent.postMessage({ letterlock: 'frame-height', height: h }, '*');
  };
  new ResizeObserver(post).observe(document.documentElement);
  post();
}
