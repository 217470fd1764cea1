// Lists on the options page: join one (its address and server, or a join link),
// confirm its key's fingerprint, choose the key and delivery form, subscribe; the
// table shows each list's state in words with the next step.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ListCandidate, ListView, StateView } from '../../messages.ts';
import { EXTENSION_ERRORS } from '../../errors.ts';
import { insecureServer, withScheme } from '../../loopback.ts';
import { ErrorLine, PermissionWait, formatFingerprint, useAction } from '../ui/ui.tsx';
import { joinWords, listStateWords } from '../ui/words.ts';
import { AutoDecrypt } from './auto-decrypt.tsx';
import { guessServer, parseJoinLink, type JoinTarget } from './join.ts';
import { patternOf, requestAccess } from './settings.tsx';

const value = (e: Event) => (e.target as HTMLInputElement).value;

export function AddList({ onLists, initial }: { onLists: (l: ListView[]) => void; initial: JoinTarget | null }) {
  const [address, setAddress] = useState(initial?.address ?? '');
  const [server, setServer] = useState(initial?.server ?? '');
  const [candidate, setCandidate] = useState<ListCandidate | null>(null);
  const [waiting, setWaiting] = useState<string | null>(null);
  const [added, setAdded] = useState<string | null>(null);
  const [error, busy, run] = useAction();
  // Opened with a join link (from the popup on a join page): the join step is where the user looks.
  const form = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (initial) form.current?.scrollIntoView({ block: 'center' });
  }, []);
  // A pasted join link fills both fields.
  const onAddress = (v: string) => {
    const link = parseJoinLink(v);
    if (link) {
      setAddress(link.address);
      setServer(link.server);
    } else setAddress(v);
  };
  const lookup = () => run(async () => {
    setCandidate(null);
    setAdded(null);
    // A bare address and no server: look on the address's own domain, over https,
    // shown in the server field while the browser asks for access to it. Typed without
    // a scheme, "lists.example.org" is taken as https://lists.example.org, "127.0.0.1:8025" as http://.
    const guessed = server.trim() === '' ? guessServer(address) : null;
    const target = guessed ?? withScheme(server);
    if (guessed) setServer(guessed);
    let pattern: string;
    try {
      pattern = patternOf(target);
    } catch {
      throw new Error('The list server is a web address like https://lists.example.org. Ask the list owner for it, or paste their join link into the list address field.');
    }
    // Said before the browser is asked for access (the background refuses it too).
    if (insecureServer(target)) throw new Error(EXTENSION_ERRORS.INSECURE_SERVER);
    if (!(await requestAccess(pattern, new URL(target).hostname, setWaiting))) {
      throw new Error('The browser did not grant access to the list server. Click "Look up" again and answer "Allow" in the browser\'s prompt.');
    }
    try {
      setCandidate(await ask('list.lookup', { address, server: target }));
    } catch (e) {
      if (guessed) throw new Error(joinWords.notFoundAtGuess(address.trim(), guessed));
      throw e;
    }
    onLists(await ask('lists.get', {}));
  });
  return (
    <div data-test="join" ref={form}>
      <form data-test="add-list" aria-labelledby="add-list-title" noValidate onSubmit={(e) => { e.preventDefault(); void lookup(); }}>
        <h2 id="add-list-title">Join a list</h2>
        <p class="muted">Paste the list's join link (its join page's address, which the list owner publishes), or the list's address and its server. With no server given, Letterlock looks on the list address's own domain.</p>
        <label>List address or join link <input type="text" data-test="list-address" placeholder="club@lists.example.org" value={address} onInput={(e) => onAddress(value(e))} /></label>
        <label>List server <input type="url" data-test="list-server" placeholder="https://lists.example.org" value={server} onInput={(e) => setServer(value(e))} /></label>
        <div class="actions"><button type="submit" class="primary" data-test="list-lookup" disabled={busy}>{busy ? 'Looking up…' : 'Look up'}</button></div>
        <PermissionWait what={waiting} />
        <ErrorLine error={error} />
      </form>
      {added && <p class="ok" role="status" data-test="list-added">{added} is in your lists below; the form is clear for another list.</p>}
      {candidate && <Candidate candidate={candidate} onLists={onLists} onDone={(pinned) => {
        setCandidate(null);
        // Pinned: the list is in the table now, so the form starts empty for the next one.
        if (pinned) {
          setAdded(candidate.address);
          setAddress('');
          setServer('');
        }
      }} />}
    </div>
  );
}

function Candidate({ candidate, onLists, onDone }: { candidate: ListCandidate; onLists: (l: ListView[]) => void; onDone: (pinned: boolean) => void }) {
  const [error, busy, run] = useAction();
  return (
    <div class="card" data-test="list-candidate" data-test-state={candidate.pinnedFingerprint ? 'changed' : 'new'} role="group" aria-label="Confirm the list key">
      <p><strong>{candidate.name}</strong> &lt;{candidate.address}&gt; at {candidate.server}</p>
      {candidate.description && <p class="muted">{candidate.description}</p>}
      {candidate.pinnedFingerprint && <p class="warning" data-test="candidate-warning">Warning: this is NOT the key you confirmed before ({formatFingerprint(candidate.pinnedFingerprint)}). Accept it only if the list owner told you the key changed.</p>}
      <p>List key fingerprint: <strong class="fingerprint" data-test="candidate-fingerprint">{formatFingerprint(candidate.fingerprint)}</strong></p>
      <p>Compare it with the fingerprint the list owner published. Confirm only if they match.</p>
      <div class="actions">
        <button type="button" class="primary" data-test="list-pin" disabled={busy} onClick={() => void run(async () => {
          onLists(await ask('list.pin', { address: candidate.address, fingerprint: candidate.fingerprint }));
          onDone(true);
        })}>The fingerprints match: use this list key</button>
        <button type="button" data-test="list-pin-cancel" onClick={() => onDone(false)}>They do not match</button>
      </div>
      <ErrorLine error={error} />
    </div>
  );
}

function ListRow({ l, state, onLists, moderates = false }: { l: ListView; state: StateView; onLists: (l: ListView[]) => void; moderates?: boolean }) {
  // Webmail shows PGP/MIME only as an attachment, so someone who allowed a webmail
  // site gets the inline form unless they choose otherwise (mail programs: PGP/MIME).
  const [chosenDelivery, setDelivery] = useState<'pgp-mime' | 'inline' | null>(null);
  const delivery = chosenDelivery ?? (state.sites.length > 0 ? 'inline' : 'pgp-mime');
  const [error, busy, run] = useAction();
  // The switch shows the new value while the background stores it (a controlled box would flip back).
  const [pendingAuto, setPendingAuto] = useState<boolean | null>(null);
  const autoRun = (f: () => Promise<void>) => {
    setPendingAuto(!(pendingAuto ?? l.autoDecrypt));
    return run(f).finally(() => setPendingAuto(null));
  };
  const words = listStateWords(l.state);
  const keyFp = l.keyFingerprint ?? state.keys[0]?.fingerprint ?? null;
  const key = state.keys.find((k) => k.fingerprint === keyFp) ?? null;
  const canSubscribe = l.state === 'pinned' && !l.changedFingerprint && state.hasKey;
  return (
    <tr data-test="list-row" data-list={l.address} data-test-state={l.state}>
      <th scope="row">{l.name && l.name !== l.address ? `${l.name} <${l.address}>` : l.address}<div class="fingerprint muted">List key {formatFingerprint(l.fingerprint)}</div>
        {l.changedFingerprint && <div class="warning" data-test="list-key-changed">Warning: the server now offers a different list key ({formatFingerprint(l.changedFingerprint)}). It is not used. Ask the list owner, then look the list up again and confirm the new fingerprint only if they confirm it.</div>}
      </th>
      <td>
        <span class={`badge ${words.tone}`} data-test="list-state">{words.label}</span>
        <div class="muted" data-test="list-next">{words.next}</div>
      </td>
      <td>
        {canSubscribe && state.keys.length > 1 ? (
          <label>Your key for this list
            <select data-test="list-key" value={keyFp ?? ''} disabled={busy} onChange={(e) => {
              const fingerprint = (e.target as HTMLSelectElement).value;
              void run(async () => onLists(await ask('list.key', { address: l.address, fingerprint })));
            }}>
              {state.keys.map((k) => <option value={k.fingerprint}>{k.address} ({k.fingerprint.slice(-8)})</option>)}
            </select>
          </label>
        ) : (
          <span data-test="list-key-shown" data-fingerprint={keyFp ?? ''}>{key ? `${key.address} (${key.fingerprint.slice(-8)})` : 'No key'}</span>
        )}
      </td>
      <td>
        {canSubscribe && (
          <>
            <label>How list mail reaches you
              <select data-test="delivery" data-test-default={state.sites.length > 0 ? 'inline' : 'pgp-mime'} value={delivery} onChange={(e) => setDelivery((e.target as HTMLSelectElement).value as 'pgp-mime' | 'inline')}>
                <option value="inline">In webmail (recommended)</option>
                <option value="pgp-mime">In a mail program (PGP/MIME)</option>
              </select>
            </label>
            <button type="button" class="primary" data-test="subscribe" disabled={busy} onClick={() => void run(async () => onLists(await ask('list.subscribe', { address: l.address, delivery })))}>Subscribe</button>
          </>
        )}
        <AutoDecrypt list={pendingAuto === null ? l : { ...l, autoDecrypt: pendingAuto }} onLists={onLists} run={autoRun} />
        {moderates && <a class="button" data-test="list-moderate" href={`../moderation/index.html?list=${encodeURIComponent(l.address)}`} target="_blank" rel="noopener">Held posts</a>}
        <button type="button" data-test="list-remove" aria-label={`Remove ${l.address} from Letterlock`} disabled={busy} onClick={() => void run(async () => onLists(await ask('list.remove', { address: l.address })))}>Remove</button>
        <ErrorLine error={error} />
      </td>
    </tr>
  );
}

export function ListTable({ lists, state, onLists }: { lists: ListView[]; state: StateView; onLists: (l: ListView[]) => void }) {
  // Lists this profile moderates (it signed in as their moderator before): their rows link to the held posts.
  const [moderated, setModerated] = useState<string[]>([]);
  useEffect(() => {
    void ask('moderation.lists', {}).then((r) => setModerated(r.lists), () => {});
  }, []);
  if (lists.length === 0) return <p class="muted" data-test="list-table" data-test-state="empty">No lists yet.</p>;
  return (
    <table data-test="list-table">
      <caption class="sr-only">Your lists</caption>
      <thead><tr><th scope="col">List</th><th scope="col">State</th><th scope="col">Your key</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>{lists.map((l) => <ListRow key={l.address} l={l} state={state} onLists={onLists} moderates={moderated.includes(l.address)} />)}</tbody>
    </table>
  );
}
