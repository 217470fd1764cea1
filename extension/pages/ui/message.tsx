// How a decrypted message is drawn, in the reader frame and the archive viewer:
// text as text; HTML only sanitized, inside a sandboxed frame without scripts;
// the signature status always in words, never claiming more than was checked.
// Links open only after a confirmation that shows where they really go; remote
// images stay blocked until the user loads them for this message; attachments
// open in the extension's own page.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { ReadView } from '../../messages.ts';
import { remoteImages, sanitizeHtml } from './sanitize.ts';
import { ErrorLine, formatFingerprint, messageOf } from './ui.tsx';
import { dateLine, shownDate } from './dates.ts';

export function Signature({ read }: { read: ReadView }) {
  const s = read.signature;
  if (s.status === 'verified') {
    return (
      <div class="signature" data-test="signature" data-test-state="verified">
        Signature verified: written by {s.address ?? 'the sender'} (key <span class="fingerprint" data-test="signer-fingerprint">{formatFingerprint(s.fingerprint)}</span>)
      </div>
    );
  }
  return (
    <div class="signature" data-test="signature" data-test-state={s.status}>
      {s.status === 'unchecked' ? s.reason : `Signature not valid: ${s.reason}`}
    </div>
  );
}

/**
 * What the hosting page lets a message do. `guard` runs before a click counts
 * (the reader checks the frame was in plain sight); without actions, images and
 * attachments are only listed.
 */
export interface MessageActions {
  guard?(ev: Event): Promise<void>;
  /** Called synchronously inside the click, before the guard (browsers ask for permissions only then). */
  permitImages?(urls: string[]): Promise<unknown>;
  loadImages?(urls: string[]): Promise<Map<string, string>>;
  openAttachment?(index: number): Promise<void>;
  /** The last action's word, for the test driver. */
  onStep?(step: string): void;
}

/** The sanitized HTML in a sandboxed frame; link clicks inside it are caught here (same origin, no scripts there). */
function HtmlBody({ html, images, onLink }: { html: string; images: Map<string, string> | undefined; onLink(url: string): void }) {
  const ref = useRef<HTMLIFrameElement>(null);
  useEffect(() => {
    const f = ref.current!;
    // Sized to its content, and again whenever that changes (images loaded, a new
    // srcdoc): the root's own box height, not scrollHeight, which is never less
    // than the frame's current height and so left blank space after a shorter load.
    const fit = () => {
      const root = f.contentDocument?.documentElement;
      if (root) f.style.height = `${Math.min(Math.max(Math.ceil(root.getBoundingClientRect().height) + 4, 60), 2000)}px`;
    };
    const watch = new ResizeObserver(fit);
    const attach = () => {
      const doc = f.contentDocument;
      if (!doc) return;
      watch.disconnect();
      if (doc.documentElement) watch.observe(doc.documentElement);
      const follow = (ev: Event) => {
        const a = (ev.target as Element | null)?.closest?.('a[data-ll-href]');
        if (!a) return;
        if (ev.type === 'keydown' && (ev as KeyboardEvent).key !== 'Enter') return;
        ev.preventDefault();
        onLink(a.getAttribute('data-ll-href')!);
      };
      doc.addEventListener('click', follow);
      doc.addEventListener('keydown', follow);
      fit();
    };
    f.addEventListener('load', attach);
    attach();
    return () => {
      f.removeEventListener('load', attach);
      watch.disconnect();
    };
  }, [html, images]);
  // allow-same-origin without allow-scripts: nothing in it runs, and the reader can catch its link clicks.
  return <iframe ref={ref} data-test="html-body" sandbox="allow-same-origin" srcdoc={sanitizeHtml(html, images)} style={{ width: '100%', height: '300px', border: '1px solid #ddd' }} />;
}

/** `archivedAt`: the archive's date for this message, shown when the signed date cannot be vouched for. */
export function Message({ read, actions = {}, archivedAt = null }: { read: ReadView; actions?: MessageActions; archivedAt?: string | null }) {
  const date = shownDate(read, archivedAt);
  const [link, setLink] = useState<string | null>(null);
  const [images, setImages] = useState<Map<string, string> | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const remote = read.html !== null ? remoteImages(read.html) : [];

  const act = async (ev: Event, what: () => Promise<void>) => {
    setError(null);
    try {
      // The click check first: a disabled button is drawn faded, and a faded
      // control is one IntersectionObserver v2 does not count as seen.
      await actions.guard?.(ev);
      setBusy(true);
      await what();
    } catch (e) {
      setError(messageOf(e));
      actions.onStep?.('refused');
    } finally {
      setBusy(false);
    }
  };

  return (
    <article>
      <div><strong>From:</strong> <span data-test="from">{read.from ? `${read.from.name} <${read.from.address}>`.trim() : 'unknown'}</span></div>
      <div><strong>Subject:</strong> <span data-test="subject">{read.subject ?? '(no subject)'}</span></div>
      {date && <div><strong>Date:</strong> <span data-test="message-date" data-test-state={date.kind}>{dateLine(date)}</span></div>}
      <Signature read={read} />
      {remote.length > 0 && !images && (
        <p class="warning" data-test="images-blocked">
          {remote.length === 1 ? 'One remote image is' : `${remote.length} remote images are`} blocked: loading them tells their sites you read this message.{' '}
          {actions.loadImages && (
            <button type="button" data-test="load-images" disabled={busy} onClick={(ev) => {
              const permitted = actions.permitImages?.(remote);
              void act(ev, async () => {
              // Firefox leaves the request from a frame in a web page unanswered: go on after a while
              // (images from sites the extension may not reach then stay out).
              await Promise.race([permitted, new Promise((r) => setTimeout(r, 2000))]);
              const loaded = await actions.loadImages!(remote);
              setImages(loaded);
              actions.onStep?.(`images-${loaded.size}`.slice(0, 24));
              });
            }}>Load images</button>
          )}
        </p>
      )}
      {link && (
        <div class="warning" role="dialog" aria-label="Open link" data-test="link-confirm">
          <p>This link goes to:</p>
          <p class="fingerprint" data-test="link-target">{link}</p>
          <button type="button" data-test="link-open" disabled={busy} onClick={(ev) => void act(ev, async () => {
            // A new tab, with no way back to this frame and no referrer.
            window.open(link, '_blank', 'noopener,noreferrer');
            setLink(null);
            actions.onStep?.('link-opened');
          })}>Open in a new tab</button>
          <button type="button" data-test="link-cancel" onClick={() => setLink(null)}>Cancel</button>
        </div>
      )}
      <ErrorLine error={error} />
      {read.html !== null ? (
        <HtmlBody html={read.html} images={images} onLink={(url) => {
          setLink(url);
          actions.onStep?.('link-confirm');
        }} />
      ) : read.text !== null ? (
        <pre class="plaintext" data-test="plaintext">{read.text}</pre>
      ) : (
        <p>(empty message)</p>
      )}
      {read.attachments.length > 0 && (
        <ul data-test="attachments">
          {read.attachments.map((a, i) => (
            <li data-test="attachment">
              {a.filename ?? 'attachment'} ({a.size} bytes){' '}
              {actions.openAttachment && (
                <button type="button" data-test="attachment-open" disabled={busy} onClick={(ev) => void act(ev, async () => {
                  await actions.openAttachment!(i);
                  actions.onStep?.('attachment-opened');
                })}>Open or download</button>
              )}
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}
