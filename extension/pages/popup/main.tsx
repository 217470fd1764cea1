// The toolbar popup: lock state at a glance, unlock and lock, and the way to the
// options and the archive.

import browser from 'webextension-polyfill';
import { LockControls } from '../ui/lock.tsx';
import { ErrorLine, Panel, formatFingerprint, mount, useExtensionState } from '../ui/ui.tsx';

function Popup() {
  const [state, setState, , error] = useExtensionState();
  const open = (path: string) => void browser.tabs.create({ url: browser.runtime.getURL(path) });
  return (
    <Panel title="Letterlock" state={state}>
      <ErrorLine error={error} />
      {state && !state.hasKey && <p>No key yet.</p>}
      {state?.key && <p>Your key: <span class="fingerprint">{formatFingerprint(state.key.fingerprint)}</span></p>}
      {state && <LockControls state={state} onState={setState} />}
      <p>
        <button type="button" data-test="open-options" onClick={() => open('extension/pages/options/index.html')}>Options</button>
        <button type="button" data-test="open-archive" onClick={() => open('extension/pages/archive/index.html')}>Archive</button>
      </p>
    </Panel>
  );
}

mount(<Popup />);
