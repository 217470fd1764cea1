// The reader frame, placed by the content script where an armored block was.
// It runs in the extension's origin: the page cannot read it. It gets only a
// block id in its URL; the background decrypts the block the content script of
// this same tab handed over, and answers with the message to show.

import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ReadView, StateView } from '../../messages.ts';
import { Message } from '../ui/message.tsx';
import { ErrorLine, Panel, messageOf, mount, reportState } from '../ui/ui.tsx';

type ViewState = 'loading' | 'decrypted' | 'error';

function Reader() {
  const blockId = location.hash.slice(1);
  const [state, setState] = useState<StateView | null>(null);
  const [view, setView] = useState<ViewState>('loading');
  const [read, setRead] = useState<ReadView | null>(null);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const [confirm, setConfirm] = useState<{ state: string; text: string } | null>(null);

  const open = async () => {
    setView('loading');
    try {
      setState(await ask('state.get', {}));
      setRead(await ask('reader.open', { blockId }));
      setView('decrypted');
    } catch (e) {
      setError({ code: (e as { code?: string }).code ?? 'INTERNAL', message: messageOf(e) });
      setView('error');
    }
  };
  useEffect(() => {
    void open();
  }, []);
  // The placing content script learns the state word only (to size and mark the
  // frame): never text, sender or fingerprint. The page may see these words.
  useEffect(() => {
    reportState(view, view === 'decrypted' && read ? read.signature.status : '', confirm?.state ?? '');
  }, [view, read, confirm]);

  const doConfirm = async () => {
    setConfirm({ state: 'busy', text: 'Confirming…' });
    try {
      const r = await ask('reader.confirm', { blockId });
      setConfirm({ state: 'confirmed', text: r.status === 'member' ? `You are now a member of ${r.list}.` : `Confirmed; the owner of ${r.list} still has to approve you.` });
    } catch (e) {
      setConfirm({ state: 'error', text: messageOf(e) });
    }
  };

  return (
    <Panel title="Letterlock" state={state}>
      <div data-test="reader" data-test-state={view} data-test-error={error?.code ?? ''}>
        {view === 'loading' && <p>Decrypting…</p>}
        {view === 'error' && (
          <>
            <ErrorLine error={error?.message ?? null} />
            {error?.code === 'LOCKED' && <button type="button" data-test="retry" onClick={() => void open()}>I unlocked it: try again</button>}
          </>
        )}
        {view === 'decrypted' && read && (
          <>
            <Message read={read} />
            {read.confirmable && (
              <div data-test="confirm" data-test-state={confirm?.state ?? 'ready'}>
                {confirm?.state !== 'confirmed' && (
                  <button type="button" data-test="confirm-subscription" disabled={confirm?.state === 'busy'} onClick={() => void doConfirm()}>
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
