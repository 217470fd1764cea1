// The composer frame, opened by the button next to a webmail compose box. The
// text is typed here, in the extension's origin, never in the page's editor. The
// background signs and encrypts it and hands only the armored result to the
// content script, which puts it into the compose box.

import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ListView, StateView } from '../../messages.ts';
import { ErrorLine, Panel, messageOf, mount, reportHeight, reportState } from '../ui/ui.tsx';

function Composer() {
  const composeId = location.hash.slice(1);
  const [state, setState] = useState<StateView | null>(null);
  const [lists, setLists] = useState<ListView[] | null>(null);
  const [list, setList] = useState('');
  const [subject, setSubject] = useState('');
  const [text, setText] = useState('');
  const [phase, setPhase] = useState<'loading' | 'ready' | 'busy' | 'inserted' | 'error'>('loading');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void (async () => {
      try {
        setState(await ask('state.get', {}));
        const ls = await ask('composer.lists', {});
        setLists(ls);
        setList(ls[0]?.address ?? '');
        setPhase('ready');
      } catch (e) {
        setError(messageOf(e));
        setPhase('error');
      }
    })();
  }, []);

  useEffect(() => reportState(composeId, phase), [phase]);
  useEffect(() => reportHeight(), []);

  const send = async (ev: Event) => {
    ev.preventDefault();
    setPhase('busy');
    setError(null);
    try {
      await ask('composer.send', { composeId, list, subject, text });
      setPhase('inserted');
    } catch (e) {
      setError(messageOf(e));
      setPhase('ready');
    }
  };

  return (
    <Panel title="Write encrypted" state={state}>
      <form data-test="composer" data-test-state={phase} onSubmit={(e) => void send(e)}>
        {lists && lists.length === 0 && <p data-test="no-lists">You are not a member of any list yet. Subscribe in the Letterlock options.</p>}
        <label>To list
          <select data-test="composer-list" value={list} onChange={(e) => setList((e.target as HTMLSelectElement).value)}>
            {(lists ?? []).map((l) => <option value={l.address}>{l.name ? `${l.name} <${l.address}>` : l.address}</option>)}
          </select>
        </label>
        <label>Subject (encrypted: the mail's visible subject becomes "...") <input type="text" data-test="composer-subject" maxLength={998} value={subject} onInput={(e) => setSubject((e.target as HTMLInputElement).value)} /></label>
        <label>Message <textarea data-test="composer-text" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} /></label>
        <button type="submit" data-test="composer-send" disabled={phase !== 'ready' || !list}>Sign, encrypt and put into the mail</button>
        {state && !state.unlocked && <p>Letterlock is locked: unlock it from the toolbar button first.</p>}
        <ErrorLine error={error} />
        {phase === 'inserted' && <p class="ok">The encrypted text is in your mail. Send it to the list.</p>}
      </form>
    </Panel>
  );
}

mount(<Composer />);
