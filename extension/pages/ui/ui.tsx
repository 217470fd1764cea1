// Pieces every extension-drawn panel shares: the security indicator (a word and
// colour only the user and the extension know, so a web page cannot draw a
// convincing fake), an error line, and a hook that runs one bus call.

import { render, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ask, BusError } from '../../ask.ts';
import type { Indicator, StateView } from '../../messages.ts';
import './ui.css';

export function SecurityIndicator({ indicator }: { indicator: Indicator | null }) {
  if (!indicator) return <div class="indicator" data-test="security-indicator" data-test-state="loading" />;
  const chosen = indicator.word !== '';
  return (
    <div class="indicator" data-test="security-indicator" data-test-state={chosen ? 'chosen' : 'unset'} style={{ background: indicator.colour }}>
      <span data-test="security-word">{chosen ? indicator.word : 'Choose your security word in the Letterlock options'}</span>
    </div>
  );
}

export function ErrorLine({ error }: { error: string | null }) {
  if (!error) return null;
  return <p class="error" role="alert" data-test="error">{error}</p>;
}

export function messageOf(e: unknown): string {
  if (e instanceof BusError) return e.message;
  // Plain errors are thrown only by our own pages, with sentences written for people.
  if (e instanceof Error && e.name === 'Error') return e.message;
  return 'Something went wrong inside Letterlock. Try again.';
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

export function Panel({ title, state, children }: { title: string; state: StateView | null; children: ComponentChildren }) {
  return (
    <div class="panel">
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
