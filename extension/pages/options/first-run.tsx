// The guided first run: a key (created or imported), its revocation certificate
// and encrypted backup, the security word, the webmail site, and a first list.
// Every step after the key can be skipped and done later on the options page.

import { useState } from 'preact/hooks';
import type { ListView, StateView } from '../../messages.ts';
import { listStateWords } from '../ui/words.ts';
import { AddList, ListTable } from './lists.tsx';
import type { JoinTarget } from './join.ts';
import { CreateKey, ImportKey, SafetyCopies, type Created } from './keys.tsx';
import { IndicatorForm, SitesForm } from './settings.tsx';

export const STEPS = ['key', 'safety', 'word', 'site', 'list', 'done'] as const;
export type Step = (typeof STEPS)[number];

const TITLES: Record<Step, string> = {
  key: 'Your key',
  safety: 'Safety copies',
  word: 'Security word',
  site: 'Your webmail',
  list: 'Join a list',
  done: 'Done',
};

export function FirstRun({ state, onState, lists, onLists, join, onFinish }: {
  state: StateView; onState: (s: StateView) => void; lists: ListView[]; onLists: (l: ListView[]) => void; join: JoinTarget | null; onFinish: () => void;
}) {
  const [step, setStep] = useState<Step>(state.hasKey ? 'word' : 'key');
  const [created, setCreated] = useState<Created | null>(null);
  const [importing, setImporting] = useState(false);
  const [saved, setSaved] = useState<{ revocation: boolean; backup: boolean }>({ revocation: false, backup: false });
  const at = STEPS.indexOf(step);
  const next = () => setStep(STEPS[Math.min(at + 1, STEPS.length - 1)]!);
  // The revocation certificate is shown only on this step: until both copies are saved,
  // the way on says that it leaves them behind (people click a blue "Next" unread).
  const missing = [
    ...(created && !saved.revocation ? ['the revocation certificate (it is not shown again)'] : []),
    ...(!saved.backup ? ['a backup of your key'] : []),
  ];
  const unsaved = step === 'safety' && missing.length > 0;
  const key = created ? state.keys.find((k) => k.fingerprint === created.fingerprint) ?? null : state.keys[0] ?? null;

  return (
    <div data-test="guide" data-test-state={step}>
      <p class="welcome">Welcome to Letterlock</p>
      <p class="muted">A few steps and you can read and write encrypted list mail in your webmail. Everything stays on this computer.</p>
      <nav aria-label="First run steps">
        <ol class="steps">
          {STEPS.map((s, i) => (
            <li data-test="guide-step" data-step={s} data-test-state={i < at ? 'done' : i === at ? 'current' : 'todo'} aria-current={i === at ? 'step' : undefined}>{TITLES[s]}</li>
          ))}
        </ol>
      </nav>
      <section aria-labelledby="guide-title">
        <h2 id="guide-title" class="sr-only">{`Step ${at + 1} of ${STEPS.length}: ${TITLES[step]}`}</h2>
        {step === 'key' && (
          <>
            {!importing ? (
              <>
                <CreateKey onState={onState} onCreated={(c) => { setCreated(c); setStep('safety'); }} />
                <p><button type="button" class="link" data-test="guide-import" onClick={() => setImporting(true)}>I already have an OpenPGP key: import it</button></p>
              </>
            ) : (
              <>
                <ImportKey onState={onState} onImported={() => setStep('safety')} />
                <p><button type="button" class="link" data-test="guide-create" onClick={() => setImporting(false)}>Create a new key instead</button></p>
              </>
            )}
          </>
        )}
        {step === 'safety' && key && (
          <>
            <h2>Keep your key safe</h2>
            <p>Your key <span class="fingerprint">{key.fingerprint.slice(-16)}</span> for {key.address} is ready and unlocked.</p>
            <SafetyCopies address={key.address} fingerprint={key.fingerprint} revocation={created?.revocationCertificate ?? null}
              onSaved={(what) => setSaved((s) => ({ ...s, [what]: true }))} />
            {missing.length > 0 && (
              <p class="muted" data-test="safety-unsaved">
                Not saved yet: {missing.join(' and ')}. Without them a lost or stolen key cannot be revoked or brought back.
              </p>
            )}
          </>
        )}
        {step === 'word' && <IndicatorForm state={state} onState={onState} onSaved={next} />}
        {step === 'site' && <SitesForm state={state} onState={onState} onAdded={next} />}
        {step === 'list' && (
          <>
            <AddList onLists={onLists} initial={join} />
            <ListTable lists={lists} state={state} onLists={onLists} />
          </>
        )}
        {step === 'done' && (
          <div data-test="guide-done">
            <h2>You are set</h2>
            <ul>
              <li>{state.keys.length === 1 ? 'Your key is' : `Your ${state.keys.length} keys are`} kept here, protected by your passphrase.</li>
              <li>{state.indicator.word ? <>Your security word is <strong>{state.indicator.word}</strong>: look for it before you type your passphrase.</> : <span class="warning" data-test="word-prompt">You have not chosen a security word yet. Choose one on the options page.</span>}</li>
              <li>{state.sites.length ? `Letterlock works on ${state.sites.join(', ')}.` : 'No webmail site is allowed yet; add yours on the options page.'}</li>
              {lists.length ? lists.map((l) => (
                // Each list with its state and next step: "joined" is not "subscribed" until the mail is confirmed.
                <li data-test="guide-done-list" data-list={l.address} data-test-state={l.state}>{l.address}: {listStateWords(l.state).label}. {l.state === 'member' ? '' : listStateWords(l.state).next}</li>
              )) : <li>No list yet; join one on the options page when you have its address.</li>}
            </ul>
          </div>
        )}
        <div class="actions">
          {step !== 'key' && step !== 'done' && (
            <button type="button" class={(step === 'safety' && !unsaved) || step === 'list' ? 'primary' : ''} data-test="guide-next" data-test-state={unsaved ? 'unsaved' : 'ready'} onClick={next}>
              {unsaved ? 'Go on without saving them' : step === 'safety' || step === 'list' ? 'Next' : 'Skip for now'}
            </button>
          )}
          {step === 'done' && <button type="button" class="primary" data-test="guide-finish" onClick={onFinish}>Go to the options</button>}
        </div>
      </section>
    </div>
  );
}
