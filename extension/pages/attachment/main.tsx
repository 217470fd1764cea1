// The attachment page: a top-level extension tab the background opens when the
// user asks for an attachment in the reader frame. The bytes come from the
// background once (single-use token in the URL's fragment) and never touch the
// web page. Pictures and plain text are shown here; everything can be saved.
// Nothing is run: HTML, SVG and the like are offered as files only.

import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { StateView } from '../../messages.ts';
import { fromBase64 } from '../../../shared/bytes.ts';
import { ErrorLine, Panel, messageOf, mount } from '../ui/ui.tsx';

const SHOWN_IMAGES = /^image\/(png|jpeg|gif|webp)$/i;
const MAX_SHOWN_TEXT = 1024 * 1024;

function Attachment() {
  const [state, setState] = useState<StateView | null>(null);
  const [file, setFile] = useState<{ filename: string; contentType: string; base64: string; url: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      try {
        setState(await ask('state.get', {}));
        const a = await ask('attachment.get', { token: location.hash.slice(1) });
        // Saved as bytes with a neutral type: a browser never renders it as a page of ours.
        const url = URL.createObjectURL(new Blob([fromBase64(a.base64) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
        setFile({ ...a, url });
        history.replaceState(null, '', location.pathname); // the token is spent
      } catch (e) {
        setError(messageOf(e));
      }
    })();
  }, []);

  const text = file && /^text\/plain\b/i.test(file.contentType) && file.base64.length < (MAX_SHOWN_TEXT * 4) / 3
    ? new TextDecoder().decode(fromBase64(file.base64)) : null;
  return (
    <Panel title="Attachment" state={state}>
      <div data-test="attachment-page" data-test-state={file ? 'ready' : error ? 'error' : 'loading'}>
        <ErrorLine error={error} />
        {file && (
          <>
            <p><strong data-test="attachment-name">{file.filename}</strong> ({file.contentType}, {Math.ceil((file.base64.length * 3) / 4)} bytes)</p>
            <p><a data-test="attachment-download" href={file.url} download={file.filename}>Save to your computer</a></p>
            {SHOWN_IMAGES.test(file.contentType) && <img data-test="attachment-image" alt={file.filename} src={`data:${file.contentType.toLowerCase()};base64,${file.base64}`} style={{ maxWidth: '100%' }} />}
            {text !== null && <pre class="plaintext" data-test="attachment-text">{text}</pre>}
          </>
        )}
      </div>
    </Panel>
  );
}

mount(<Attachment />);
