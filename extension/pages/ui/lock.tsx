// Unlock and lock controls, used by the popup and the options page.

import { useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { StateView } from '../../messages.ts';
import { ErrorLine, messageOf } from './ui.tsx';

export function LockControls({ state, onState }: { state: StateView; onState: (s: StateView) => void }) {
  const [passphrase, setPassphrase] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!state.hasKey) return null;
  const unlock = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onState(await ask('key.unlock', { passphrase }));
      setPassphrase('');
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div data-test="lock" data-test-state={state.unlocked ? 'unlocked' : 'locked'}>
      {state.unlocked ? (
        <p>
          Unlocked until {state.lockAt ? new Date(state.lockAt).toLocaleTimeString() : '?'}.{' '}
          <button type="button" data-test="lock-now" onClick={async () => onState(await ask('key.lock', {}))}>Lock now</button>
        </p>
      ) : (
        <form onSubmit={(e) => void unlock(e)}>
          <label>Passphrase <input type="password" data-test="unlock-passphrase" autocomplete="current-password" value={passphrase} onInput={(e) => setPassphrase((e.target as HTMLInputElement).value)} /></label>
          <button type="submit" data-test="unlock" disabled={busy}>Unlock</button>
          <ErrorLine error={error} />
        </form>
      )}
    </div>
  );
}
