// The archive viewer: pick a list, sign in by signing the server's challenge (in
// the background, with the unlocked key), page through threads, open messages
// decrypted here, and filter what has been decrypted on this page.

import { useEffect, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ArchiveMessageView, ArchiveThreadView, ListView } from '../../messages.ts';
import { Message } from '../ui/message.tsx';
import { ErrorLine, Panel, messageOf, mount, useExtensionState } from '../ui/ui.tsx';

function Archive() {
  const [state] = useExtensionState();
  const [lists, setLists] = useState<ListView[]>([]);
  const [list, setList] = useState('');
  const [phase, setPhase] = useState<'idle' | 'busy' | 'signed-in' | 'error'>('idle');
  const [threads, setThreads] = useState<ArchiveThreadView[]>([]);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [opened, setOpened] = useState<Map<number, ArchiveMessageView>>(new Map());
  const [current, setCurrent] = useState<number | null>(null);
  const [filter, setFilter] = useState('');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    void ask('lists.get', {}).then((ls) => {
      const usable = ls.filter((l) => l.state === 'member');
      setLists(usable);
      setList(usable[0]?.address ?? '');
    }, (e) => setError(messageOf(e)));
  }, []);

  const loadPage = async (before: string | null) => {
    const page = await ask('archive.threads', { list, before });
    setThreads(page.threads);
    setNext(page.nextCursor);
    // Decrypt the page's messages so their subjects show in the thread list.
    const ids = page.threads.flatMap((t) => t.messages.map((m) => m.id)).slice(0, 50);
    if (ids.length > 0) {
      const views = await ask('archive.open', { list, ids });
      setOpened(new Map(views.map((v) => [v.id, v])));
    } else setOpened(new Map());
  };

  const go = async (f: () => Promise<void>) => {
    setPhase('busy');
    setError(null);
    try {
      await f();
      setPhase('signed-in');
    } catch (e) {
      setError(messageOf(e));
      setPhase('error');
    }
  };

  const signIn = () => go(async () => {
    await ask('archive.login', { list });
    setCursors([null]);
    await loadPage(null);
  });

  const q = filter.trim().toLowerCase();
  const matches = (id: number) => {
    if (!q) return true;
    const r = opened.get(id)?.read;
    return !!r && [r.subject, r.from?.address, r.from?.name, r.text].some((s) => s?.toLowerCase().includes(q));
  };
  const shown = current !== null ? opened.get(current) : undefined;

  return (
    <Panel title="Letterlock archive" state={state}>
      <div data-test="archive" data-test-state={phase}>
        {state && !state.unlocked && <p>Unlock Letterlock (toolbar button) to sign in.</p>}
        <label>List
          <select data-test="archive-list" value={list} onChange={(e) => setList((e.target as HTMLSelectElement).value)}>
            {lists.map((l) => <option value={l.address}>{l.address}</option>)}
          </select>
        </label>
        <button type="button" data-test="archive-sign-in" disabled={!list || phase === 'busy'} onClick={() => void signIn()}>Sign in with my key</button>
        <ErrorLine error={error} />
        {phase === 'signed-in' && (
          <>
            <label>Filter decrypted messages <input type="text" data-test="archive-filter" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} /></label>
            <table data-test="thread-list">
              <tbody>
                {threads.flatMap((t) => t.messages.filter((m) => matches(m.id)).map((m) => {
                  const v = opened.get(m.id);
                  return (
                    <tr data-test="archive-message" data-id={m.id} data-thread={t.rootId} data-test-state={v?.read ? 'decrypted' : v?.error ? 'error' : 'pending'}>
                      <td>{m.id === t.rootId ? '' : '↳ '}<a href="#" data-test="archive-open" onClick={(e) => { e.preventDefault(); setCurrent(m.id); }}>
                        {v?.read ? v.read.subject ?? '(no subject)' : v?.error ? `(${v.error.message})` : '(not decrypted)'}
                      </a></td>
                      <td>{v?.read?.from?.address ?? ''}</td>
                      <td>{(m.date ?? v?.read?.date) ? new Date((m.date ?? v?.read?.date)!).toLocaleString() : ''}</td>
                    </tr>
                  );
                }))}
              </tbody>
            </table>
            <p>
              <button type="button" data-test="archive-newer" disabled={cursors.length <= 1} onClick={() => void go(async () => {
                const prev = cursors.slice(0, -1);
                setCursors(prev);
                await loadPage(prev[prev.length - 1] ?? null);
              })}>Newer</button>
              <button type="button" data-test="archive-older" disabled={!next} onClick={() => void go(async () => {
                setCursors([...cursors, next]);
                await loadPage(next);
              })}>Older</button>
            </p>
            {shown?.read && <div data-test="archive-view" data-test-state="decrypted"><Message read={shown.read} /></div>}
            {shown?.error && <ErrorLine error={shown.error.message} />}
          </>
        )}
      </div>
    </Panel>
  );
}

mount(<Archive />);
