// The toolbar popup: lock state at a glance, unlock and lock, and the way to the
// options, the archive and the held posts (for moderators). A new user starts the first run from here;
// on a list's join page it offers to join that list.

import browser from 'webextension-polyfill';
import { LockControls } from '../ui/lock.tsx';
import { ErrorLine, Panel, formatFingerprint, mount, useExtensionState } from '../ui/ui.tsx';
import { JoinOfferCard, useJoinOffer } from './join-offer.tsx';

function Popup() {
  const [state, setState, , error] = useExtensionState();
  // The browser closes the popup itself when the new tab takes the focus.
  const open = (path: string) => void browser.tabs.create({ url: browser.runtime.getURL(path) });
  const options = 'extension/pages/options/index.html';
  // On a list's join page: "Join <list>" first (join-offer.tsx).
  const { offer, checked } = useJoinOffer();
  return (
    <Panel title="Letterlock" state={state} narrow>
      <ErrorLine error={error} />
      {state && offer && <JoinOfferCard offer={offer} hasKey={state.hasKey} open={open} />}
      {state && !state.hasKey && !offer && (
        <div data-test="popup-start" class="card">
          <p><strong>Welcome.</strong> Letterlock reads and writes encrypted list mail in your webmail. Setting up takes a few minutes: a key, a security word, your webmail and a list.</p>
          <button type="button" class="primary" data-test="start-first-run" onClick={() => open(`${options}#first-run`)}>Set up Letterlock</button>
        </div>
      )}
      {state && state.hasKey && state.indicator.word === '' && (
        <p class="warning" role="note" data-test="word-prompt">
          Choose your security word, so you can tell Letterlock's panels from a fake.{' '}
          <button type="button" class="link" data-test="choose-word" onClick={() => open(`${options}#indicator-title`)}>Choose it now</button>
        </p>
      )}
      {state && state.keys.length > 0 && (
        <ul class="plain" aria-label="Your keys">
          {state.keys.map((k) => (
            <li data-test="popup-key" data-fingerprint={k.fingerprint}>
              <span>{k.address}</span> <span class="fingerprint muted">{formatFingerprint(k.fingerprint.slice(-16))}</span>
            </li>
          ))}
        </ul>
      )}
      {state && <LockControls state={state} onState={setState} />}
      <div class="actions" data-test="popup-actions" data-test-join={checked ? (offer ? 'offer' : 'none') : 'pending'}>
        <button type="button" data-test="open-options" onClick={() => open(options)}>Options</button>
        {state?.hasKey && <button type="button" data-test="open-archive" onClick={() => open('extension/pages/archive/index.html')}>Archive</button>}
        {state?.hasKey && <button type="button" data-test="open-moderation" onClick={() => open('extension/pages/moderation/index.html')}>Held posts</button>}
      </div>
    </Panel>
  );
}

mount(<Popup />);
