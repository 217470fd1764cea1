// Unlock and lock controls, used by the popup and the options page. One
// passphrase unlocks every key of this profile that it opens.

import { useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { StateView } from '../../messages.ts';
import { ErrorLine, useAction } from './ui.tsx';

export function LockControls({ state, onState }: { state: StateView; onState: (s: StateView) => void }) {
  const [passphrase, setPassphrase] = useState('');
  const [error, busy, run] = useAction();
  if (!state.hasKey) return null;
  const locked = state.keys.filter((k) => !k.unlocked);
  return (
    <div data-test="lock" data-test-state={state.unlocked ? 'unlocked' : 'locked'}>
      {state.unlocked && (
        <p role="status">
          <span class="badge good">Unlocked</span> until {state.lockAt ? new Date(state.lockAt).toLocaleTimeString() : '?'}.{' '}
          <button type="button" data-test="lock-now" disabled={busy} onClick={() => void run(async () => onState(await ask('key.lock', {})))}>Lock now</button>
        </p>
      )}
      {(!state.unlocked || locked.length > 0) && (
        <form aria-label="Unlock" onSubmit={(e) => { e.preventDefault(); void run(async () => {
          onState(await ask('key.unlock', { passphrase }));
          setPassphrase('');
        }); }}>
          {state.unlocked && <p class="muted">Still locked: {locked.map((k) => k.address).join(', ')}. Their passphrase unlocks them.</p>}
          <label>Passphrase <input type="password" id="unlock-passphrase" data-test="unlock-passphrase" autocomplete="current-password" value={passphrase} onInput={(e) => setPassphrase((e.target as HTMLInputElement).value)} /></label>
          <div class="actions"><button type="submit" class="primary" data-test="unlock" disabled={busy}>{busy ? 'Unlocking…' : 'Unlock'}</button></div>
          <ErrorLine error={error} />
        </form>
      )}
    </div>
  );
}
