// The options page: the user's key, lock settings, the security indicator, the
// webmail sites Letterlock may act on, and the lists (add, confirm the key's
// fingerprint, subscribe, state).

import { useEffect, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { ask } from '../../ask.ts';
import type { ListCandidate, ListView, StateView } from '../../messages.ts';
import { LockControls } from '../ui/lock.tsx';
import { AutoDecrypt } from './auto-decrypt.tsx';
import { EXTENSION_ERRORS } from '../../errors.ts';
import { insecureServer } from '../../loopback.ts';
import { ErrorLine, Panel, formatFingerprint, messageOf, mount, passphraseHint, useExtensionState } from '../ui/ui.tsx';

type SetState = (s: StateView) => void;

/** Host access pattern of a site or server URL (match patterns carry no port). */
function patternOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}/*`;
}

function useAction(): [string | null, boolean, (f: () => Promise<void>) => Promise<void>] {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return [error, busy, run];
}

const value = (e: Event) => (e.target as HTMLInputElement).value;

function CreateKey({ onState }: { onState: SetState }) {
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const [pass, setPass] = useState('');
  const [again, setAgain] = useState('');
  const [error, busy, run] = useAction();
  const hint = passphraseHint(pass);
  return (
    <form data-test="create-key" onSubmit={(e) => { e.preventDefault(); void run(async () => {
      if (pass !== again) throw new Error('The two passphrases differ.');
      onState(await ask('key.create', { name, address, passphrase: pass }));
    }); }}>
      <h2>Create a key</h2>
      <label>Your name <input type="text" data-test="key-name" value={name} onInput={(e) => setName(value(e))} /></label>
      <label>Your email address <input type="email" data-test="key-address" value={address} onInput={(e) => setAddress(value(e))} /></label>
      <label>Passphrase <input type="password" data-test="key-passphrase" autocomplete="new-password" value={pass} onInput={(e) => setPass(value(e))} /></label>
      {pass && <p class={`hint-${hint.level}`} data-test="passphrase-hint" data-test-state={hint.level}>{hint.text}</p>}
      <label>Passphrase again <input type="password" data-test="key-passphrase-again" autocomplete="new-password" value={again} onInput={(e) => setAgain(value(e))} /></label>
      <button type="submit" data-test="create-key-submit" disabled={busy}>{busy ? 'Creating…' : 'Create key'}</button>
      <ErrorLine error={error} />
    </form>
  );
}

function ImportKey({ onState }: { onState: SetState }) {
  const [armored, setArmored] = useState('');
  const [pass, setPass] = useState('');
  const [error, busy, run] = useAction();
  return (
    <form data-test="import-key" onSubmit={(e) => { e.preventDefault(); void run(async () => onState(await ask('key.import', { armored, passphrase: pass }))); }}>
      <h2>Or import your key</h2>
      <label>Private key (ASCII-armored, passphrase-protected) <textarea data-test="import-armored" value={armored} onInput={(e) => setArmored(value(e))} /></label>
      <label>Its passphrase <input type="password" data-test="import-passphrase" value={pass} onInput={(e) => setPass(value(e))} /></label>
      <button type="submit" data-test="import-submit" disabled={busy}>Import</button>
      <ErrorLine error={error} />
    </form>
  );
}

function KeySection({ state, onState }: { state: StateView; onState: SetState }) {
  const [error, , run] = useAction();
  const [sure, setSure] = useState(false);
  if (!state.key) {
    return (
      <section data-test="key" data-test-state="none">
        <CreateKey onState={onState} />
        <ImportKey onState={onState} />
      </section>
    );
  }
  const k = state.key;
  const backup = () => run(async () => {
    const { armored } = await ask('key.export', {});
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([armored], { type: 'application/pgp-keys' }));
    a.download = `letterlock-${k.address}-private-protected.asc`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
  return (
    <section data-test="key" data-test-state="present">
      <h2>Your key</h2>
      <p>{k.name} &lt;<span data-test="key-address-shown">{k.address}</span>&gt;</p>
      <p>Fingerprint: <span class="fingerprint" data-test="key-fingerprint">{formatFingerprint(k.fingerprint)}</span></p>
      <details><summary>Public key</summary><textarea readOnly data-test="public-key" value={k.publicKey} /></details>
      <button type="button" data-test="backup-key" onClick={() => void backup()}>Back up the key (protected by your passphrase)</button>
      <p>
        <label><input type="checkbox" checked={sure} onChange={(e) => setSure((e.target as HTMLInputElement).checked)} /> I have a backup; remove this key from the browser</label>
        <button type="button" data-test="remove-key" disabled={!sure} onClick={() => void run(async () => onState(await ask('key.remove', { fingerprint: k.fingerprint })))}>Remove key</button>
      </p>
      <ErrorLine error={error} />
    </section>
  );
}

function Settings({ state, onState }: { state: StateView; onState: SetState }) {
  const [minutes, setMinutes] = useState(String(state.timeoutMinutes));
  const [word, setWord] = useState(state.indicator.word);
  const [colour, setColour] = useState(state.indicator.colour);
  const [error, , run] = useAction();
  return (
    <section data-test="settings">
      <h2>Security indicator</h2>
      <p>Choose a word and colour. Letterlock shows them in every panel it draws; a web page cannot know them, so a panel without them is not Letterlock's.</p>
      <form onSubmit={(e) => { e.preventDefault(); void run(async () => onState(await ask('settings.set', { indicator: { word, colour } }))); }}>
        <label>Word <input type="text" data-test="indicator-word" maxLength={24} value={word} onInput={(e) => setWord(value(e))} /></label>
        <label>Colour <input type="color" data-test="indicator-colour" value={colour} onInput={(e) => setColour(value(e))} /></label>
        <button type="submit" data-test="indicator-save">Save indicator</button>
      </form>
      <h2>Locking</h2>
      <form onSubmit={(e) => { e.preventDefault(); void run(async () => onState(await ask('settings.set', { timeoutMinutes: Number(minutes) }))); }}>
        <label>Lock again after (minutes) <input type="number" min={1} max={1440} data-test="timeout-minutes" value={minutes} onInput={(e) => setMinutes(value(e))} /></label>
        <button type="submit" data-test="timeout-save">Save</button>
      </form>
      <LockControls state={state} onState={onState} />
      <ErrorLine error={error} />
    </section>
  );
}

function Sites({ state, onState }: { state: StateView; onState: SetState }) {
  const [site, setSite] = useState('');
  const [error, , run] = useAction();
  const add = () => run(async () => {
    let pattern: string;
    try {
      pattern = patternOf(site.trim());
    } catch {
      throw new Error('A site is an address like https://mail.example.org');
    }
    // Asked in the click itself: browsers grant optional access only on a user gesture.
    const granted = await browser.permissions.request({ origins: [pattern] });
    if (!granted) throw new Error('The browser did not grant access to that site.');
    onState(await ask('sites.set', { sites: [...state.sites, site.trim()] }));
    setSite('');
  });
  const remove = (s: string) => run(async () => {
    onState(await ask('sites.set', { sites: state.sites.filter((x) => x !== s) }));
    await browser.permissions.remove({ origins: [patternOf(s)] });
  });
  return (
    <section data-test="sites">
      <h2>Webmail sites</h2>
      <p>Letterlock reads and writes only on these sites; it does nothing anywhere else.</p>
      <ul>{state.sites.map((s) => <li data-test="site" data-site={s}>{s} <button type="button" onClick={() => void remove(s)}>Remove</button></li>)}</ul>
      <form onSubmit={(e) => { e.preventDefault(); void add(); }}>
        <label>Site address <input type="url" data-test="site-input" placeholder="https://mail.example.org" value={site} onInput={(e) => setSite(value(e))} /></label>
        <button type="submit" data-test="site-add">Allow this site</button>
      </form>
      <ErrorLine error={error} />
    </section>
  );
}

function Lists({ state }: { state: StateView }) {
  const [lists, setLists] = useState<ListView[] | null>(null);
  const [address, setAddress] = useState('');
  const [server, setServer] = useState('');
  const [candidate, setCandidate] = useState<ListCandidate | null>(null);
  // Webmail shows PGP/MIME only as an attachment, so someone who allowed a webmail
  // site gets the inline form unless they choose otherwise (mail programs: PGP/MIME).
  const [chosenDelivery, setDelivery] = useState<'pgp-mime' | 'inline' | null>(null);
  const delivery = chosenDelivery ?? (state.sites.length > 0 ? 'inline' : 'pgp-mime');
  const [error, busy, run] = useAction();
  useEffect(() => {
    void ask('lists.get', {}).then(setLists, () => setLists([]));
  }, []);
  const lookup = () => run(async () => {
    setCandidate(null);
    let pattern: string;
    try {
      pattern = patternOf(server.trim());
    } catch {
      throw new Error('The server address is a URL like https://lists.example.org');
    }
    // Said before the browser is asked for access (the background refuses it too).
    if (insecureServer(server)) throw new Error(EXTENSION_ERRORS.INSECURE_SERVER);
    if (!(await browser.permissions.request({ origins: [pattern] }))) throw new Error('The browser did not grant access to the list server.');
    setCandidate(await ask('list.lookup', { address, server }));
    setLists(await ask('lists.get', {}));
  });
  return (
    <section data-test="lists">
      <h2>Lists</h2>
      <table data-test="list-table">
        <thead><tr><th>List</th><th>State</th><th>Key fingerprint</th><th /></tr></thead>
        <tbody>
          {(lists ?? []).map((l) => (
            <tr data-test="list-row" data-list={l.address} data-test-state={l.state}>
              <td>{l.name} &lt;{l.address}&gt;</td>
              <td data-test="list-state">{l.state}</td>
              <td class="fingerprint">{formatFingerprint(l.fingerprint)}
                {l.changedFingerprint && <div class="warning" data-test="list-key-changed">Warning: the server now offers a different list key ({formatFingerprint(l.changedFingerprint)}). It is not used. Ask the list owner, then look the list up again and confirm the new fingerprint only if they confirm it.</div>}
              </td>
              <td>
                {l.state === 'pinned' && !l.changedFingerprint && state.hasKey && (
                  <>
                    <label>How list mail reaches you
                      <select data-test="delivery" data-test-default={state.sites.length > 0 ? 'inline' : 'pgp-mime'} value={delivery} onChange={(e) => setDelivery((e.target as HTMLSelectElement).value as 'pgp-mime' | 'inline')}>
                        <option value="inline">I read mail in webmail (recommended with the extension)</option>
                        <option value="pgp-mime">I read mail in a mail program (PGP/MIME: Thunderbird, GnuPG)</option>
                      </select>
                    </label>
                    <button type="button" data-test="subscribe" onClick={() => void run(async () => setLists(await ask('list.subscribe', { address: l.address, delivery })))}>Subscribe</button>
                  </>
                )}
                {l.state === 'confirmation-sent' && <span>Open the confirmation mail in your webmail and click "Confirm subscription".</span>}
                <AutoDecrypt list={l} onLists={setLists} run={run} />
                <button type="button" onClick={() => void run(async () => setLists(await ask('list.remove', { address: l.address })))}>Remove</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form data-test="add-list" onSubmit={(e) => { e.preventDefault(); void lookup(); }}>
        <h2>Add a list</h2>
        <label>List address <input type="email" data-test="list-address" value={address} onInput={(e) => setAddress(value(e))} /></label>
        <label>List server <input type="url" data-test="list-server" placeholder="https://lists.example.org" value={server} onInput={(e) => setServer(value(e))} /></label>
        <button type="submit" data-test="list-lookup" disabled={busy}>Look up</button>
      </form>
      {candidate && (
        <div data-test="list-candidate" data-test-state={candidate.pinnedFingerprint ? 'changed' : 'new'}>
          <p>{candidate.name} &lt;{candidate.address}&gt; at {candidate.server}</p>
          {candidate.pinnedFingerprint && <p class="warning" data-test="candidate-warning">Warning: this is NOT the key you confirmed before ({formatFingerprint(candidate.pinnedFingerprint)}). Accept it only if the list owner told you the key changed.</p>}
          <p>List key fingerprint: <strong class="fingerprint" data-test="candidate-fingerprint">{formatFingerprint(candidate.fingerprint)}</strong></p>
          <p>Compare it with the fingerprint the list owner published. Confirm only if they match.</p>
          <button type="button" data-test="list-pin" onClick={() => void run(async () => {
            setLists(await ask('list.pin', { address: candidate.address, fingerprint: candidate.fingerprint }));
            setCandidate(null);
          })}>The fingerprints match: use this list key</button>
        </div>
      )}
      <ErrorLine error={error} />
    </section>
  );
}

function Options() {
  const [state, setState, , error] = useExtensionState();
  return (
    <Panel title="Letterlock options" state={state}>
      <ErrorLine error={error} />
      {state && (
        <div data-test="options" data-test-state="ready">
          <KeySection state={state} onState={setState} />
          <Settings state={state} onState={setState} />
          <Sites state={state} onState={setState} />
          <Lists state={state} />
        </div>
      )}
    </Panel>
  );
}

mount(<Options />);
