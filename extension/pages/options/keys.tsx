// The user's keys on the options page: create or import one, save its revocation
// certificate and an encrypted backup, and for each key: expiry (renewal), the
// default for new lists, and removal.

import { useId, useRef, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { KeyView, StateView } from '../../messages.ts';
import { LockControls } from '../ui/lock.tsx';
import { download, ErrorLine, formatFingerprint, passphraseHint, useAction } from '../ui/ui.tsx';
import { expiryWords } from '../ui/words.ts';
import { keyFormErrors, type KeyField } from './key-form.ts';

type SetState = (s: StateView) => void;
const value = (e: Event) => (e.target as HTMLInputElement).value;

/** What a freshly created key hands the page once: its revocation certificate. */
export interface Created {
  fingerprint: string;
  address: string;
  revocationCertificate: string;
}

function fileBase(address: string, fingerprint: string): string {
  return `letterlock-${address.replace(/[^A-Za-z0-9@._-]/g, '_')}-${fingerprint.slice(-16)}`;
}

export function CreateKey({ onCreated, onState }: { onCreated: (c: Created) => void; onState: SetState }) {
  const [name, setName] = useState('');
  const [address, setAddress] = useState('');
  const [pass, setPass] = useState('');
  const [again, setAgain] = useState('');
  const [days, setDays] = useState('730');
  const [error, busy, run] = useAction();
  const [fields, setFields] = useState<Partial<Record<KeyField, string>>>({});
  const inputs = { address: useRef<HTMLInputElement>(null), passphrase: useRef<HTMLInputElement>(null), again: useRef<HTMLInputElement>(null) };
  const hint = passphraseHint(pass);
  // Each field's error sits under it and is tied to it (read out when the field gets focus).
  const field = (f: KeyField, describedBy?: string) => ({
    'aria-invalid': fields[f] ? 'true' as const : undefined,
    'aria-describedby': [describedBy, fields[f] ? `create-key-${f}-error` : null].filter(Boolean).join(' ') || undefined,
  });
  const fieldError = (f: KeyField) => fields[f]
    ? <p id={`create-key-${f}-error`} class="error" data-test="field-error" data-field={f}>{fields[f]}</p>
    : null;
  const edited = (f: KeyField) => { if (fields[f]) setFields({ ...fields, [f]: undefined }); };
  return (
    <form data-test="create-key" aria-labelledby="create-key-title" noValidate onSubmit={(e) => { e.preventDefault();
      const found = keyFormErrors({ address, passphrase: pass, again });
      setFields(found);
      const first = (['address', 'passphrase', 'again'] as const).find((f) => found[f]);
      if (first) {
        // After the render that ties the error to the field, so it is read out with it.
        setTimeout(() => inputs[first].current?.focus(), 0);
        return;
      }
      void run(async () => {
        const r = await ask('key.create', { name, address, passphrase: pass, expiresInDays: Number(days) });
        onState(r.state);
        onCreated({ fingerprint: r.fingerprint, address: address.trim().toLowerCase(), revocationCertificate: r.revocationCertificate });
      });
    }}>
      <h2 id="create-key-title">Create a key</h2>
      <label>Your name <input type="text" data-test="key-name" autocomplete="name" value={name} onInput={(e) => setName(value(e))} /></label>
      <label>Your email address <input type="email" data-test="key-address" autocomplete="email" ref={inputs.address} {...field('address')} value={address} onInput={(e) => { setAddress(value(e)); edited('address'); }} /></label>
      {fieldError('address')}
      <label>Passphrase <input type="password" data-test="key-passphrase" autocomplete="new-password" ref={inputs.passphrase} {...field('passphrase', 'passphrase-hint')} value={pass} onInput={(e) => { setPass(value(e)); edited('passphrase'); }} /></label>
      {fieldError('passphrase')}
      <p id="passphrase-hint" class={pass ? `hint-${hint.level}` : 'muted'} data-test="passphrase-hint" data-test-state={pass ? hint.level : 'empty'} aria-live="polite">
        {pass ? hint.text : 'It protects your key on this computer. Four or more random words work well.'}
      </p>
      <label>Passphrase again <input type="password" data-test="key-passphrase-again" autocomplete="new-password" ref={inputs.again} {...field('again')} value={again} onInput={(e) => { setAgain(value(e)); edited('again'); }} /></label>
      {fieldError('again')}
      <label>The key expires after
        <select data-test="key-expiry" value={days} onChange={(e) => setDays((e.target as HTMLSelectElement).value)}>
          <option value="365">1 year</option>
          <option value="730">2 years (you can renew it)</option>
          <option value="1825">5 years</option>
          <option value="0">Never</option>
        </select>
      </label>
      <div class="actions">
        <button type="submit" class="primary" data-test="create-key-submit" disabled={busy}>{busy ? 'Creating the key…' : 'Create key'}</button>
      </div>
      <ErrorLine error={error} />
    </form>
  );
}

export function ImportKey({ onImported, onState }: { onImported: (k: KeyView) => void; onState: SetState }) {
  const [armored, setArmored] = useState('');
  const [pass, setPass] = useState('');
  const [error, busy, run] = useAction();
  return (
    <form data-test="import-key" aria-labelledby="import-key-title" onSubmit={(e) => { e.preventDefault(); void run(async () => {
      const before = new Set((await ask('state.get', {})).keys.map((k) => k.fingerprint));
      const s = await ask('key.import', { armored, passphrase: pass });
      onState(s);
      const added = s.keys.find((k) => !before.has(k.fingerprint));
      if (added) onImported(added);
    }); }}>
      <h2 id="import-key-title">Import a key you already have</h2>
      <label>Private key (ASCII-armored, protected by its passphrase) <textarea data-test="import-armored" value={armored} onInput={(e) => setArmored(value(e))} /></label>
      <label>Its passphrase <input type="password" data-test="import-passphrase" autocomplete="current-password" value={pass} onInput={(e) => setPass(value(e))} /></label>
      <div class="actions"><button type="submit" data-test="import-submit" disabled={busy}>{busy ? 'Importing…' : 'Import key'}</button></div>
      <ErrorLine error={error} />
    </form>
  );
}

/**
 * The same key for GnuPG 2.2 and Thunderbird: they skip Letterlock's own backup
 * (Argon2/AEAD protection, RFC 9580), so the background re-protects the key with
 * the same passphrase in the older RFC 4880 form they read. The passphrase is
 * typed here (an extension page) and goes only to the background.
 */
export function GnupgExport({ address, fingerprint }: { address: string; fingerprint: string }) {
  const [pass, setPass] = useState('');
  const [saved, setSaved] = useState<string | null>(null);
  const [error, busy, run] = useAction();
  const base = fileBase(address, fingerprint);
  // The same key can show this twice (its card and its safety copies): ids per instance.
  const hintId = `gnupg-hint-${useId()}`;
  return (
    <details data-test="gnupg-export" data-test-state={saved ? 'saved' : 'idle'}>
      <summary>Export for GnuPG / Thunderbird</summary>
      <p id={hintId} class="muted" data-test="gnupg-export-words">Choose this only to use the key in Thunderbird, GnuPG or another OpenPGP program: they cannot read the encrypted backup above.
        The file is protected by the same passphrase, in the older form those programs read, which a thief can try passphrases against faster: keep it as safe as the key itself.
        For Letterlock itself, the encrypted backup is the better copy.</p>
      <form onSubmit={(e) => { e.preventDefault(); setSaved(null); void run(async () => {
        const { armored } = await ask('key.exportGnupg', { fingerprint, passphrase: pass });
        setPass('');
        const name = `${base}-private-gnupg.asc`;
        download(name, armored);
        setSaved(name);
      }); }}>
        <label>Passphrase of this key <input type="password" data-test="gnupg-passphrase" autocomplete="current-password" aria-describedby={hintId} value={pass} onInput={(e) => setPass(value(e))} /></label>
        <div class="actions"><button type="submit" data-test="gnupg-export-submit" disabled={busy}>{busy ? 'Exporting…' : 'Save for GnuPG / Thunderbird'}</button></div>
        {saved && <p class="ok" role="status" data-test="gnupg-saved">Saved as {saved}. In Thunderbird: Account Settings, End-To-End Encryption, Add Key, Import; or run gpg --import {saved}</p>}
        <ErrorLine error={error} />
      </form>
    </details>
  );
}

/**
 * Right after a key is made: save its revocation certificate (only this page has
 * it; it is not kept) and an encrypted backup of the key.
 */
export function SafetyCopies({ address, fingerprint, revocation, onSaved }: {
  address: string; fingerprint: string; revocation: string | null; onSaved?: (what: 'revocation' | 'backup') => void;
}) {
  const [savedRevocation, setSavedRevocation] = useState(false);
  const [savedBackup, setSavedBackup] = useState(false);
  const [error, busy, run] = useAction();
  const base = fileBase(address, fingerprint);
  return (
    <div data-test="safety" data-test-state={(revocation === null || savedRevocation) && savedBackup ? 'saved' : 'pending'}>
      {revocation !== null ? (
        <div class="card">
          <h3>1. Save the revocation certificate</h3>
          <p>If you lose this key or someone else gets it, this file tells the list and everyone else to stop using it. Keep it somewhere safe, apart from the key. It is shown only now; Letterlock does not keep it.</p>
          <button type="button" class={savedRevocation ? '' : 'primary'} data-test="save-revocation" onClick={() => {
            download(`${base}-revocation.asc`, revocation);
            setSavedRevocation(true);
            onSaved?.('revocation');
          }}>{savedRevocation ? 'Saved. Save again' : 'Save the revocation certificate'}</button>
          {savedRevocation && <span class="ok" role="status" data-test="revocation-saved"> Saved as {base}-revocation.asc</span>}
        </div>
      ) : (
        <p class="muted">An imported key: keep the revocation certificate your OpenPGP program made for it.</p>
      )}
      <div class="card">
        <h3>{revocation !== null ? '2. ' : ''}Back up the key</h3>
        <p>A file with your key, still encrypted with your passphrase. With it and the passphrase, Letterlock ("Import a key") brings your key back on another computer or after a browser reset.</p>
        <button type="button" class={savedBackup ? '' : 'primary'} data-test="backup-key" disabled={busy} onClick={() => void run(async () => {
          const { armored } = await ask('key.export', { fingerprint });
          download(`${base}-private-protected.asc`, armored);
          setSavedBackup(true);
          onSaved?.('backup');
        })}>{savedBackup ? 'Saved. Save again' : 'Save an encrypted backup'}</button>
        {savedBackup && <span class="ok" role="status" data-test="backup-saved"> Saved as {base}-private-protected.asc</span>}
        <ErrorLine error={error} />
        <GnupgExport address={address} fingerprint={fingerprint} />
      </div>
    </div>
  );
}

function RenewKey({ k, onState }: { k: KeyView; onState: SetState }) {
  const [pass, setPass] = useState('');
  const [days, setDays] = useState('730');
  const [done, setDone] = useState<string | null>(null);
  const [error, busy, run] = useAction();
  return (
    <form data-test="renew-key" data-test-state={done ? 'renewed' : 'idle'} onSubmit={(e) => { e.preventDefault(); setDone(null); void run(async () => {
      const r = await ask('key.renew', { fingerprint: k.fingerprint, passphrase: pass, expiresInDays: Number(days) });
      setPass('');
      onState(r.state);
      const failed = r.republished.filter((x) => !x.ok);
      const told = r.republished.filter((x) => x.ok).map((x) => x.list);
      const renewed = r.state.keys.find((x) => x.fingerprint === k.fingerprint);
      setDone([
        `Renewed: ${expiryWords(renewed?.expires ?? null).text}.`,
        told.length ? `The lists ${told.join(', ')} have the renewed key.` : '',
        ...failed.map((x) => `${x.list} could not be told: ${x.message ?? 'unknown error'} Renew again later to retry.`),
      ].filter(Boolean).join(' '));
      if (failed.length) throw new Error(failed.map((x) => `${x.list}: ${x.message ?? 'unknown error'}`).join(' '));
    }); }}>
      <label>Extend by
        <select data-test="renew-days" value={days} onChange={(e) => setDays((e.target as HTMLSelectElement).value)}>
          <option value="365">1 year from today</option>
          <option value="730">2 years from today</option>
          <option value="1825">5 years from today</option>
          <option value="0">Never expire</option>
        </select>
      </label>
      <label>Passphrase of this key <input type="password" data-test="renew-passphrase" autocomplete="current-password" value={pass} onInput={(e) => setPass(value(e))} /></label>
      <div class="actions"><button type="submit" data-test="renew-submit" disabled={busy}>{busy ? 'Renewing…' : 'Renew key'}</button></div>
      {done && <p class="ok" role="status" data-test="renew-result">{done}</p>}
      <ErrorLine error={error} />
    </form>
  );
}

function KeyCard({ k, isDefault, onState }: { k: KeyView; isDefault: boolean; onState: SetState }) {
  const [sure, setSure] = useState(false);
  const [error, busy, run] = useAction();
  const exp = expiryWords(k.expires);
  const titleId = `key-${k.fingerprint}`;
  return (
    <li class="key-card" data-test="key-card" data-fingerprint={k.fingerprint} data-test-state={isDefault ? 'default' : 'other'} aria-labelledby={titleId}>
      <h3 id={titleId}><span>{k.name ? `${k.name} ` : ''}&lt;<span data-test="key-address-shown">{k.address}</span>&gt;</span> {isDefault && <span class="badge">Default for new lists</span>}{' '}
        <span class={`badge ${k.unlocked ? 'good' : ''}`} data-test="key-lock-state">{k.unlocked ? 'Unlocked' : 'Locked'}</span>
        {!k.unlocked && <>{' '}<a href="#unlock-passphrase" data-test="key-unlock-link" onClick={(e) => {
          e.preventDefault();
          document.getElementById('unlock-passphrase')?.focus();
        }}>Unlock with your passphrase</a></>}</h3>
      <p>Fingerprint: <span class="fingerprint" data-test="key-fingerprint">{formatFingerprint(k.fingerprint)}</span></p>
      <p data-test="key-expiry-shown" data-test-state={exp.level} class={exp.level === 'expired' ? 'error' : exp.level === 'soon' ? 'warning' : 'muted'}>{exp.text}</p>
      <details><summary>Public key</summary><textarea readOnly aria-label="Public key" data-test="public-key" value={k.publicKey} /></details>
      <details data-test="renew-details" open={exp.level === 'soon' || exp.level === 'expired'}><summary>Renew (extend the expiry date)</summary><RenewKey k={k} onState={onState} /></details>
      <div class="actions">
        <button type="button" data-test="backup-key" disabled={busy} onClick={() => void run(async () => {
          const { armored } = await ask('key.export', { fingerprint: k.fingerprint });
          download(`${fileBase(k.address, k.fingerprint)}-private-protected.asc`, armored);
        })}>Save an encrypted backup</button>
        {!isDefault && <button type="button" data-test="make-default" disabled={busy} onClick={() => void run(async () => onState(await ask('key.default', { fingerprint: k.fingerprint })))}>Use for new lists</button>}
      </div>
      <GnupgExport address={k.address} fingerprint={k.fingerprint} />
      <div class="actions">
        <label class="check"><input type="checkbox" data-test="remove-sure" checked={sure} onChange={(e) => setSure((e.target as HTMLInputElement).checked)} /> I have a backup; remove this key from the browser</label>
        <button type="button" data-test="remove-key" disabled={!sure || busy} onClick={() => void run(async () => onState(await ask('key.remove', { fingerprint: k.fingerprint })))}>Remove key</button>
      </div>
      <ErrorLine error={error} />
    </li>
  );
}

/** The keys of this profile, and adding another (which also offers its safety copies). */
export function KeySection({ state, onState }: { state: StateView; onState: SetState }) {
  const [created, setCreated] = useState<Created | null>(null);
  const [imported, setImported] = useState<KeyView | null>(null);
  const [adding, setAdding] = useState(false);
  return (
    <section data-test="key" data-test-state={state.keys.length ? 'present' : 'none'} aria-labelledby="keys-title">
      <h2 id="keys-title">Your keys</h2>
      <p class="muted">You can keep several keys, for example one per address. Each list uses one of them; new lists use the default.</p>
      {/* Unlocking sits where the "Locked" badges are, not under the settings further down. */}
      <LockControls state={state} onState={onState} />
      <ul class="plain" data-test="key-list">
        {state.keys.map((k, i) => <KeyCard key={k.fingerprint} k={k} isDefault={i === 0} onState={onState} />)}
      </ul>
      {created && <SafetyCopies address={created.address} fingerprint={created.fingerprint} revocation={created.revocationCertificate} />}
      {imported && <SafetyCopies address={imported.address} fingerprint={imported.fingerprint} revocation={null} />}
      {!adding && state.keys.length > 0 ? (
        <button type="button" data-test="add-key" onClick={() => setAdding(true)}>Add another key</button>
      ) : (
        <div data-test="add-key-forms">
          <CreateKey onState={onState} onCreated={(c) => { setCreated(c); setImported(null); setAdding(false); }} />
          <ImportKey onState={onState} onImported={(k) => { setImported(k); setCreated(null); setAdding(false); }} />
          {state.keys.length > 0 && <button type="button" data-test="add-key-cancel" onClick={() => setAdding(false)}>Cancel</button>}
        </div>
      )}
    </section>
  );
}
