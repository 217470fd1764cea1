// The options page. With no key yet (or opened as #first-run) it is the guided
// first run; otherwise the user's keys, security word, webmail sites, lists and
// locking. A join link in the address (#join=<link>) pre-fills "Join a list".

import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ListView } from '../../messages.ts';
import { ErrorLine, Panel, mount, useExtensionState } from '../ui/ui.tsx';
import { explain } from '../ui/words.ts';
import { FirstRun } from './first-run.tsx';
import { joinFromHash } from './join.ts';
import { KeySection } from './keys.tsx';
import { AddList, ListTable } from './lists.tsx';
import { IndicatorForm, Locking, SitesForm } from './settings.tsx';

function Options() {
  const [state, setState, , error] = useExtensionState();
  const [lists, setLists] = useState<ListView[]>([]);
  const [listsError, setListsError] = useState<string | null>(null);
  const [guide, setGuide] = useState<boolean | null>(null);
  const [join] = useState(() => joinFromHash(location.hash));
  useEffect(() => {
    void ask('lists.get', {}).then(setLists, (e) => setListsError(explain(e)));
  }, []);
  // Decided once, when the state first arrives: the guide stays until the user finishes it.
  useEffect(() => {
    if (state && guide === null) setGuide(!state.hasKey || location.hash === '#first-run');
  }, [state, guide]);
  const mode = guide === null ? 'loading' : guide ? 'first-run' : 'manage';
  return (
    <Panel title={guide ? 'Set up Letterlock' : 'Letterlock options'} state={state}>
      <ErrorLine error={error} />
      {state && guide !== null && (
        <main data-test="options" data-test-state="ready" data-test-mode={mode}>
          {guide ? (
            <FirstRun state={state} onState={setState} lists={lists} onLists={setLists} join={join} onFinish={() => {
              history.replaceState(null, '', location.pathname);
              setGuide(false);
            }} />
          ) : (
            <>
              {state.indicator.word === '' && (
                <p class="warning" role="note" data-test="word-prompt">
                  You have not chosen a security word yet: <a href="#indicator-title">choose it below</a>, so you can tell Letterlock's panels from a fake.
                </p>
              )}
              <KeySection state={state} onState={setState} />
              <section><IndicatorForm state={state} onState={setState} /></section>
              <section><SitesForm state={state} onState={setState} /></section>
              <section data-test="lists" aria-labelledby="lists-title">
                <h2 id="lists-title">Your lists</h2>
                <ErrorLine error={listsError} />
                <ListTable lists={lists} state={state} onLists={setLists} />
                <AddList onLists={setLists} initial={join} />
              </section>
              <Locking state={state} onState={setState} />
            </>
          )}
        </main>
      )}
    </Panel>
  );
}

mount(<Options />);
