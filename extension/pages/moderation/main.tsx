// Held posts, for a list's owner and moderators: sign in with the key chosen for
// the list, read each held post decrypted on this computer (the background does
// the crypto; this page gets read views), and approve or reject it with a
// decision the background signs. The list server never sees the plaintext.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { HeldPostView, ListView } from '../../messages.ts';
import { Message } from '../ui/message.tsx';
import { ErrorLine, Panel, messageOf, mount, useExtensionState } from '../ui/ui.tsx';
import { moderatorSignInWords } from '../ui/words.ts';
import { heldReasonWords } from '../ui/words.ts';

type Phase = 'idle' | 'busy' | 'signed-in' | 'error';

function sizeWords(n: number): string {
  return n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${Math.round(n / 1024)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function HeldPost({ h, list, onDecided }: { h: HeldPostView; list: string; onDecided: (id: number, words: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState<'approve' | 'reject' | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The confirmation takes the keyboard focus from the button it replaces, on its safe choice (keep).
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);
  const decide = async (action: 'approve' | 'reject') => {
    setBusy(action);
    setError(null);
    try {
      const r = await ask('moderation.decide', { list, id: h.id, action });
      onDecided(h.id, r.action === 'approve'
        ? r.result === 'accepted' ? 'Approved: the post is on its way to every member of the list.' : `Not sent: the post no longer passes the list's checks (${r.code ?? r.result}). It was removed from the queue.`
        : 'Rejected: the sender is told their post was not accepted (the notice quotes nothing of it).');
    } catch (e) {
      setError(messageOf(e));
      setBusy(null);
    }
  };
  const subject = h.read ? h.read.subject ?? '(no subject)' : h.error ? 'Cannot be read here' : '(not decrypted yet)';
  const from = h.read?.from ? (h.read.from.name ? `${h.read.from.name} <${h.read.from.address}>` : h.read.from.address) : h.sender ?? 'unknown sender';
  return (
    <article class="card held-post" data-test="held-post" data-id={h.id} data-test-state={h.read ? 'decrypted' : h.error ? 'error' : 'pending'} aria-labelledby={`held-${h.id}-subject`}>
      <h2 id={`held-${h.id}-subject`} data-test="held-subject">{subject}</h2>
      <p class="muted">
        From <span data-test="held-from">{from}</span> · received {new Date(h.receivedAt).toLocaleString()} · {sizeWords(h.size)}
        <br />Held because {heldReasonWords(h.reason)}.
      </p>
      {h.error && <ErrorLine error={h.error.message} />}
      {h.read && <div data-test="held-view" data-test-state="decrypted"><Message read={h.read} /></div>}
      <div class="actions">
        {!confirming && (
          <>
            <button type="button" class="primary" data-test="held-approve" disabled={busy !== null} onClick={() => void decide('approve')}>
              {busy === 'approve' ? 'Approving…' : 'Approve and send to the list'}
            </button>
            <button type="button" data-test="held-reject" disabled={busy !== null} onClick={() => setConfirming(true)}>Reject…</button>
          </>
        )}
        {confirming && (
          <div class="warning" role="group" aria-label="Confirm the rejection" data-test="held-reject-ask">
            <p>Reject this post? It is deleted from the list server and the sender gets a notice that it was not accepted.</p>
            <button type="button" class="primary" data-test="held-reject-confirm" disabled={busy !== null} onClick={() => void decide('reject')}>
              {busy === 'reject' ? 'Rejecting…' : 'Reject the post'}
            </button>
            <button type="button" ref={confirmRef} data-test="held-reject-cancel" disabled={busy !== null} onClick={() => setConfirming(false)}>Keep it</button>
          </div>
        )}
      </div>
      <ErrorLine error={error} />
    </article>
  );
}

function Moderation() {
  const [state] = useExtensionState();
  const [lists, setLists] = useState<ListView[]>([]);
  const [list, setList] = useState('');
  const [phase, setPhase] = useState<Phase>('idle');
  const [held, setHeld] = useState<HeldPostView[]>([]);
  const [more, setMore] = useState(false);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [signedInAs, setSignedInAs] = useState<string | null>(null);

  useEffect(() => {
    void ask('lists.get', {}).then((ls) => {
      // An owner need not be subscribed: any list whose key was confirmed can be moderated.
      const usable = ls.filter((l) => !l.changedFingerprint);
      setLists(usable);
      const wanted = new URLSearchParams(location.search).get('list');
      setList(usable.find((l) => l.address === wanted)?.address ?? usable[0]?.address ?? '');
    }, (e) => setError(messageOf(e)));
  }, []);

  const load = async () => {
    setPhase('busy');
    setError(null);
    try {
      const page = await ask('moderation.held', { list });
      setHeld(page.held);
      setMore(page.more);
      setPhase('signed-in');
    } catch (e) {
      setError(messageOf(e));
      setPhase('error');
    }
  };
  const signIn = async () => {
    setStatus(null);
    setPhase('busy');
    setError(null);
    try {
      setSignedInAs((await ask('moderation.login', { list })).address);
    } catch (e) {
      setError(moderatorSignInWords(e, list));
      setPhase('error');
      return;
    }
    await load();
  };

  return (
    <Panel title="Letterlock · held posts" state={state}>
      <div data-test="moderation" data-test-state={phase}>
        <p>Posts waiting for a moderator on the lists you own or moderate. Each one is decrypted here, on your computer, with your key; the list server only passes on the encrypted post. Your decision is signed with your key.</p>
        {state && !state.unlocked && <p class="warning" role="note">Unlock Letterlock (toolbar button) to sign in.</p>}
        {lists.length === 0 ? <p class="muted" data-test="moderation-no-lists">Add the list in Letterlock's options first (its address and server), then come back here.</p> : (
          <div class="actions">
            <label>List
              <select data-test="moderation-list" value={list} onChange={(e) => { setList((e.target as HTMLSelectElement).value); setPhase('idle'); setSignedInAs(null); setHeld([]); setStatus(null); }}>
                {lists.map((l) => <option value={l.address}>{l.name && l.name !== l.address ? `${l.name} <${l.address}>` : l.address}</option>)}
              </select>
            </label>
            {phase === 'signed-in'
              ? <>
                <span class="muted" data-test="moderation-signed-in">Signed in as {signedInAs}</span>
                <button type="button" data-test="moderation-refresh" onClick={() => { setStatus(null); void load(); }}>Refresh</button>
              </>
              : <button type="button" class="primary" data-test="moderation-sign-in" disabled={!list || phase === 'busy'} onClick={() => void signIn()}>
                {phase === 'busy' ? 'Signing in…' : 'Sign in as moderator'}
              </button>}
          </div>
        )}
        <ErrorLine error={error} />
        {status && <p class="notice" role="status" aria-live="polite" data-test="moderation-status">{status}</p>}
        {phase === 'signed-in' && (
          <>
            <p data-test="held-count" data-count={held.length}>
              {held.length === 0 ? 'No posts are waiting. ' : `${held.length}${more ? '+' : ''} post${held.length === 1 ? '' : 's'} waiting.`}
              {more && ' Only the oldest are shown; decide on these to see the rest.'}
            </p>
            {held.map((h) => (
              <HeldPost key={h.id} h={h} list={list} onDecided={(id, words) => {
                setHeld((hs) => hs.filter((x) => x.id !== id));
                setStatus(words);
              }} />
            ))}
          </>
        )}
      </div>
    </Panel>
  );
}

mount(<Moderation />);
