// The reader frame, placed by the content script where an armored block was.
// It runs in the extension's origin: the page cannot read it. Its URL holds only
// a block id; the frame key that unlocks the block for this frame comes from the
// content script by postMessage to this window. The message is decrypted on a
// click in plain sight (or at once for a list the user set to decrypt
// automatically). The only thing posted to the page is the frame's height.

import browser from 'webextension-polyfill';
import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import { EXTENSION_ERRORS } from '../../errors.ts';
import type { ReadView, StateView } from '../../messages.ts';
import { Message } from '../ui/message.tsx';
import { ErrorLine, Panel, messageOf, mount, reportHeight, reportState } from '../ui/ui.tsx';
import { guardClick, watchControl } from './visibility.ts';

type ViewState = 'waiting' | 'encrypted' | 'loading' | 'decrypted' | 'error';

const blockId = location.hash.slice(1);
/** Keys tried at most: a page can post look-alike keys to this window too (they are refused). */
const MAX_KEYS = 5;

// Listened for at once (before the load event the content script waits for).
const keys: string[] = [];
let onKey: (() => void) | null = null;
const takeKey = (ev: MessageEvent) => {
  if (ev.source !== window.parent) return;
  const d = ev.data as { letterlock?: unknown; key?: unknown };
  if (d?.letterlock !== 'frame-key' || typeof d.key !== 'string' || d.key.length > 64) return;
  keys.push(d.key);
  if (keys.length >= MAX_KEYS) window.removeEventListener('message', takeKey);
  onKey?.();
};
window.addEventListener('message', takeKey);

/** The next key posted to this window; a frame the content script did not place waits here for good. */
async function nextKey(): Promise<string> {
  while (keys.length === 0) await new Promise<void>((r) => (onKey = r));
  return keys.shift()!;
}

function Reader() {
  const [state, setState] = useState<StateView | null>(null);
  const [view, setView] = useState<ViewState>('waiting');
  const [read, setRead] = useState<ReadView | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [confirm, setConfirm] = useState<{ state: string; text: string } | null>(null);
  const [step, setStep] = useState('');
  const [refusals, setRefusals] = useState(0);
  const [replying, setReplying] = useState<{ state: string; text: string } | null>(null);

  const fail = (e: unknown) => {
    setError({ code: (e as { code?: string }).code ?? 'INTERNAL', message: messageOf(e) });
    setView('error');
  };

  // The first request carries the frame key and binds the block to this frame.
  useEffect(() => {
    void (async () => {
      for (let tries = 0; tries < MAX_KEYS; tries++) {
        const key = await nextKey();
        try {
          if (!state) setState(await ask('state.get', {}));
          setRead(await ask('reader.open', { blockId, frameKey: key, click: false }));
          setView('decrypted');
          break;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === 'CLICK_TO_DECRYPT') {
            setView('encrypted');
            break;
          }
          if (code === 'FORBIDDEN' && tries < MAX_KEYS - 1) continue; // a look-alike key from the page: wait for ours
          fail(e);
          break;
        }
      }
      window.removeEventListener('message', takeKey);
    })();
  }, []);
  useEffect(() => reportHeight(), []);
  useEffect(() => {
    reportState(blockId, view, view === 'decrypted' && read ? read.signature.status : '', confirm?.state ?? (replying ? `reply-${replying.state}` : step));
  }, [view, read, confirm, step, replying]);

  /** The click check; a refused click is said in words by the caller and counted (the tests read the count). */
  const counted = async (ev: Event): Promise<boolean> => {
    try {
      await guardClick(blockId, ev);
      return true;
    } catch {
      setRefusals((n) => n + 1);
      return false;
    }
  };

  const decrypt = async (ev: Event) => {
    setError(null);
    if (!(await counted(ev))) {
      setError({ code: 'COVERED', message: EXTENSION_ERRORS.COVERED });
      setStep('refused');
      return;
    }
    setView('loading');
    try {
      setRead(await ask('reader.open', { blockId, click: true }));
      setView('decrypted');
    } catch (e) {
      fail(e);
    }
  };

  const doConfirm = async (ev: Event) => {
    // The click check before the button is disabled: a disabled button is drawn
    // faded, which IntersectionObserver v2 does not count as seen.
    if (!(await counted(ev))) {
      setConfirm({ state: 'error', text: EXTENSION_ERRORS.COVERED });
      return;
    }
    try {
      setConfirm({ state: 'busy', text: 'Confirming…' });
      const r = await ask('reader.confirm', { blockId });
      setConfirm({ state: 'confirmed', text: r.status === 'member' ? `You are now a member of ${r.list}.` : `Confirmed; the owner of ${r.list} still has to approve you.` });
    } catch (e) {
      setConfirm({ state: 'error', text: messageOf(e) });
    }
  };

  // A reply: the background decrypts again and hands quoted text and threading ids to the composer.
  const doReply = async (ev: Event, to: 'list' | 'author') => {
    if (!(await counted(ev))) {
      setReplying({ state: 'error', text: EXTENSION_ERRORS.COVERED });
      return;
    }
    try {
      setReplying({ state: 'busy', text: 'Preparing the reply…' });
      const r = await ask('reader.reply', { blockId, to });
      setReplying({
        state: 'ready',
        text: r.opened
          ? 'The reply is open in the Letterlock composer at your compose box.'
          : 'Reply prepared: press “Write encrypted with Letterlock” at your reply\'s compose box to continue it.',
      });
    } catch (e) {
      setReplying({ state: 'error', text: messageOf(e) });
    }
  };

  // Asked inside the click (browsers want a user action for it): access to the image sites.
  const permitImages = (urls: string[]): Promise<unknown> => {
    try {
      const origins = [...new Set(urls.map((u) => `${new URL(u).origin}/*`))];
      return browser.permissions.request({ origins }).catch(() => false);
    } catch {
      return Promise.resolve(false); // refused at once (Firefox, in a frame): the fetch decides
    }
  };
  const loadImages = async (urls: string[]): Promise<Map<string, string>> => {
    const { images } = await ask('reader.images', { blockId, urls });
    const out = new Map<string, string>();
    for (const i of images) if (i.dataUrl) out.set(i.url, i.dataUrl);
    return out;
  };

  return (
    <Panel title="Letterlock" state={state}>
      <div data-test="reader" data-test-state={view} data-test-error={error?.code ?? ''} data-test-step={confirm?.state ?? step} data-test-refusals={refusals}>
        {view === 'waiting' && <p>Encrypted message.</p>}
        {view === 'encrypted' && (
          <p>
            Encrypted message.{' '}
            <button type="button" class="primary" data-test="decrypt" ref={watchControl} onClick={(ev) => void decrypt(ev)}>Decrypt</button>
          </p>
        )}
        {view === 'encrypted' && <ErrorLine error={error?.message ?? null} />}
        {view === 'loading' && <p>Decrypting…</p>}
        {view === 'error' && (
          <>
            <ErrorLine error={error?.message ?? null} />
            {error?.code === 'LOCKED' && <button type="button" data-test="retry" ref={watchControl} onClick={(ev) => void decrypt(ev)}>I unlocked it: try again</button>}
          </>
        )}
        {view === 'decrypted' && read && (
          <>
            <Message read={read} actions={{
              guard: (ev) => guardClick(blockId, ev),
              permitImages,
              loadImages,
              openAttachment: async (index) => {
                await ask('reader.attachment', { blockId, index });
              },
              onStep: setStep,
            }} />
            {read.list && !read.confirmable && (
              <div class="actions" data-test="reply" data-test-state={replying?.state ?? 'ready'}>
                <button type="button" data-test="reply-list" ref={watchControl} disabled={replying?.state === 'busy'} onClick={(ev) => void doReply(ev, 'list')}>Reply to list</button>
                {read.signature.status === 'verified' && read.from && read.from.address !== read.list && (
                  <button type="button" data-test="reply-author" ref={watchControl} disabled={replying?.state === 'busy'} onClick={(ev) => void doReply(ev, 'author')}>Reply to {read.from.name || read.from.address}</button>
                )}
                {replying && (replying.state === 'error' ? <ErrorLine error={replying.text} /> : <p data-test="reply-result">{replying.text}</p>)}
              </div>
            )}
            {read.confirmable && (
              <div data-test="confirm" data-test-state={confirm?.state ?? 'ready'}>
                {confirm?.state !== 'confirmed' && (
                  <button type="button" class="primary" data-test="confirm-subscription" ref={watchControl} disabled={confirm?.state === 'busy'} onClick={(ev) => void doConfirm(ev)}>
                    Confirm subscription
                  </button>
                )}
                {confirm && <p data-test="confirm-result">{confirm.text}</p>}
              </div>
            )}
          </>
        )}
      </div>
    </Panel>
  );
}

mount(<Reader />);
