// How a decrypted message is drawn, in the reader frame and the archive viewer:
// text as text; HTML only sanitized, inside a sandboxed frame; the signature
// status always in words, never claiming more than was checked.

import type { ReadView } from '../../messages.ts';
import { sanitizeHtml } from './sanitize.ts';
import { formatFingerprint } from './ui.tsx';

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

export function Message({ read }: { read: ReadView }) {
  return (
    <article>
      <div><strong>From:</strong> <span data-test="from">{read.from ? `${read.from.name} <${read.from.address}>`.trim() : 'unknown'}</span></div>
      <div><strong>Subject:</strong> <span data-test="subject">{read.subject ?? '(no subject)'}</span></div>
      {read.date && <div><strong>Date:</strong> {new Date(read.date).toLocaleString()}</div>}
      <Signature read={read} />
      {read.text !== null ? (
        <pre class="plaintext" data-test="plaintext">{read.text}</pre>
      ) : read.html !== null ? (
        // Sanitized, then shown in a frame with no scripts, forms or same-origin rights.
        <iframe data-test="html-body" sandbox="" srcdoc={sanitizeHtml(read.html)} style={{ width: '100%', height: '300px', border: '1px solid #ddd' }} />
      ) : (
        <p>(empty message)</p>
      )}
      {read.attachments.length > 0 && (
        <ul>{read.attachments.map((a) => <li>{a.filename ?? 'attachment'} ({a.size} bytes)</li>)}</ul>
      )}
    </article>
  );
}

