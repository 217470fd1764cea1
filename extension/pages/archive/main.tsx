// The archive viewer: pick a list, sign in by signing the server's challenge (in
// the background, with the unlocked key), read threads (root and replies nested,
// newest thread first), open messages decrypted here, search what has been
// decrypted (in this page's memory only), and link to a message: the page's own
// URL with #list=…&msg=… opens that message after sign-in, also in a new tab.
// "Reply to list" / "Reply to <author>" prepare a reply in the background (the
// message decrypted there again); the reply is written in the composer at the
// webmail's compose box, as every Letterlock mail is, and this page says so.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { ArchiveMessageView, ArchiveThreadView, ListView } from '../../messages.ts';
import { Message } from '../ui/message.tsx';
import { ErrorLine, Panel, messageOf, mount, useExtensionState } from '../ui/ui.tsx';
import { parsePermalink, permalinkFragment, permalinkUrl, type MessageKey, type Permalink } from './permalink.ts';
import { MAX_INDEXED_MESSAGES, SearchIndex, type Hit } from './search.ts';
import { nestThread, newestFirst } from './threading.ts';
import { dateLine, shownDate } from '../ui/dates.ts';

/** Decrypted messages kept for display; the oldest are dropped past this (the search index keeps its own text). */
const MAX_VIEWS = 300;
/**
 * How many messages the search index holds. Test builds only may lower it with
 * ?searchBound=N, so a test reaches the bound with a few posts; release builds ignore the URL.
 */
const SEARCH_BOUND = (() => {
  if (!__LETTERLOCK_TEST_MARKS__) return MAX_INDEXED_MESSAGES;
  const n = Number(new URLSearchParams(location.search).get('searchBound'));
  return Number.isInteger(n) && n > 0 && n < MAX_INDEXED_MESSAGES ? n : MAX_INDEXED_MESSAGES;
})();
const BATCH = 50;

type Phase = 'idle' | 'busy' | 'signed-in' | 'error';
type IndexState = { state: 'none' | 'indexing' | 'done' | 'full'; failed: number };

function authorOf(v: ArchiveMessageView): string | null {
  const f = v.read?.from;
  return f ? `${f.name} <${f.address}>`.trim() : null;
}

/**
 * The words of an HTML-only message, for search: DOMParser makes an inert
 * document (no scripts run, nothing is fetched), and only its text is kept.
 */
function textOfHtml(html: string | null): string | null {
  if (!html) return null;
  return new DOMParser().parseFromString(html.slice(0, 1_000_000), 'text/html').body?.textContent ?? null;
}

function Archive() {
  const [state] = useExtensionState();
  const [lists, setLists] = useState<ListView[] | null>(null);
  const [list, setList] = useState('');
  const [signedIn, setSignedIn] = useState<string | null>(null);
  const [phase, setPhase] = useState<Phase>('idle');
  const [threads, setThreads] = useState<ArchiveThreadView[]>([]);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [next, setNext] = useState<string | null>(null);
  const [views, setViews] = useState<Map<number, ArchiveMessageView>>(new Map());
  const [link, setLink] = useState<Permalink | null>(() => parsePermalink(location.hash));
  const [focus, setFocus] = useState<{ thread: ArchiveThreadView; id: number } | null>(null);
  const [query, setQuery] = useState('');
  const [indexState, setIndexState] = useState<IndexState>({ state: 'none', failed: 0 });
  const [copied, setCopied] = useState(false);
  const [replying, setReplying] = useState<{ id: number; state: 'busy' | 'ready' | 'error'; text: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const index = useRef(new SearchIndex(SEARCH_BOUND));
  // Bumped when the list or session changes: a running index build sees it and stops.
  const generation = useRef(0);
  const building = useRef(-1);
  const viewRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    void ask('lists.get', {}).then((ls) => {
      const usable = ls.filter((l) => l.state === 'member');
      setLists(usable);
      const linked = link && usable.find((l) => l.address === link.list);
      setList(linked ? linked.address : usable[0]?.address ?? '');
    }, (e) => setError(messageOf(e)));
    const onHash = () => setLink(parsePermalink(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const remember = (vs: ArchiveMessageView[]) => {
    setViews((old) => {
      const m = new Map(old);
      for (const v of vs) {
        m.delete(v.id);
        m.set(v.id, v);
      }
      while (m.size > MAX_VIEWS) m.delete(m.keys().next().value!);
      return m;
    });
    for (const v of vs) indexOne(v);
  };

  const indexOne = (v: ArchiveMessageView) => {
    if (!v.read) return;
    index.current.add({ id: v.id, subject: v.read.subject, author: authorOf(v), text: v.read.text?.trim() ? v.read.text : textOfHtml(v.read.html), date: v.read.signature.status === 'verified' ? v.read.date : null }); // only a date the sender vouched for
  };

  const decrypt = async (forList: string, ids: number[], have: Map<number, ArchiveMessageView>): Promise<ArchiveMessageView[]> => {
    const missing = ids.filter((id) => !have.has(id));
    const out: ArchiveMessageView[] = [];
    for (let i = 0; i < missing.length; i += BATCH) out.push(...(await ask('archive.open', { list: forList, ids: missing.slice(i, i + BATCH) })));
    return out;
  };

  const loadPage = async (forList: string, before: string | null) => {
    const page = await ask('archive.threads', { list: forList, before });
    setThreads(newestFirst(page.threads));
    setNext(page.nextCursor);
    // The page's messages are decrypted so their subjects show in the thread list.
    // Newest first, so the bounded index keeps the newest messages.
    const ids = page.threads.flatMap((t) => t.messages.map((m) => m.id)).sort((a, b) => b - a).slice(0, 2 * BATCH);
    remember(await decrypt(forList, ids, new Map()));
  };

  const go = async (f: () => Promise<void>) => {
    setPhase('busy');
    setError(null);
    try {
      await f();
      setPhase('signed-in');
    } catch (e) {
      setError(messageOf(e));
      setPhase(signedIn ? 'signed-in' : 'error');
    }
  };

  const reset = () => {
    generation.current++;
    index.current.clear();
    setIndexState({ state: 'none', failed: 0 });
    setViews(new Map());
    setFocus(null);
    setThreads([]);
  };

  const signIn = () => go(async () => {
    reset();
    setSignedIn(null);
    await ask('archive.login', { list });
    setCursors([null]);
    await loadPage(list, null);
    // Set last, so a linked message opens once the first page is in.
    setSignedIn(list);
  });

  /** Opens a message by archive id or Message-ID: its thread, decrypted, with the message shown. */
  const openLinked = async (forList: string, key: MessageKey) => {
    const thread = await ask('archive.thread', { list: forList, ...key });
    const target = 'id' in key ? key.id : thread.messages.find((m) => m.messageId === key.messageId)?.id ?? thread.rootId;
    const ids = [target, ...thread.messages.map((m) => m.id).filter((id) => id !== target)].slice(0, BATCH);
    remember(await decrypt(forList, ids, views));
    setFocus({ thread, id: target });
    setCopied(false);
    requestAnimationFrame(() => viewRef.current?.scrollIntoView({ block: 'start' }));
  };

  // A link to another list (changed in the address bar) chooses that list; its sign-in comes next.
  useEffect(() => {
    if (!link || !lists || link.list === signedIn || link.list === list) return;
    if (!lists.some((l) => l.address === link.list)) return;
    setList(link.list);
    reset();
    setSignedIn(null);
    setPhase('idle');
  }, [link]);

  // A permalink (on load, pasted, or followed from a result) opens once signed in to its list.
  useEffect(() => {
    if (link?.message && signedIn === link.list) void go(() => openLinked(link.list, link.message!));
  }, [link, signedIn]);

  /** Decrypts the archive, newest first, into the in-memory index until it ends or the bound is reached. */
  const buildIndex = async () => {
    const gen = generation.current;
    // One build per list and session (keystrokes come faster than re-renders).
    if (!signedIn || building.current === gen) return;
    building.current = gen;
    const forList = signedIn;
    setIndexState({ state: 'indexing', failed: 0 });
    let failed = 0;
    let cursor: string | null = null;
    try {
      for (let pages = 0; pages < 1000; pages++) {
        const page: { threads: ArchiveThreadView[]; nextCursor: string | null } = await ask('archive.threads', { list: forList, before: cursor });
        if (gen !== generation.current) return;
        const ids = page.threads.flatMap((t) => t.messages.map((m) => m.id)).filter((id) => !index.current.has(id)).sort((a, b) => b - a);
        for (let i = 0; i < ids.length && !index.current.full; i += BATCH) {
          const vs = await ask('archive.open', { list: forList, ids: ids.slice(i, i + BATCH) });
          if (gen !== generation.current) return;
          for (const v of vs) {
            if (v.read) indexOne(v);
            else failed++;
          }
          setIndexState({ state: 'indexing', failed });
        }
        if (gen !== generation.current) return;
        if (index.current.full) return setIndexState({ state: 'full', failed });
        cursor = page.nextCursor;
        if (!cursor) break;
      }
      if (gen === generation.current) setIndexState({ state: 'done', failed });
    } catch (e) {
      if (gen !== generation.current) return;
      setError(messageOf(e));
      setIndexState({ state: 'done', failed });
    }
  };

  const hits: Hit[] = query.trim() ? index.current.search(query) : [];
  const shown = focus ? views.get(focus.id) : undefined;
  const here = (key: MessageKey) => (signedIn ? permalinkFragment(signedIn, key) : '#');
  const linkedElsewhere = link && !lists?.some((l) => l.address === link.list);

  /** The archive's date for a message on the threads shown (null: not among them). */
  const archivedDate = (id: number): string | null => {
    for (const t of focus ? [focus.thread, ...threads] : threads) {
      const m = t.messages.find((x) => x.id === id);
      if (m) return m.date;
    }
    return null;
  };

  const subjectOf = (id: number) => {
    const v = views.get(id);
    return v?.read ? v.read.subject ?? '(no subject)' : v?.error ? `(${v.error.message})` : '(not decrypted yet)';
  };

  const Rows = ({ thread, current }: { thread: ArchiveThreadView; current?: number }) => {
    const meta = new Map(thread.messages.map((m) => [m.id, m]));
    return (
      <ul class="thread" data-test="archive-thread" data-root={thread.rootId}>
        {nestThread(thread.messages).map((r) => {
          const v = views.get(r.id);
          const m = meta.get(r.id)!;
          const date = shownDate(v?.read, m.date);
          return (
            <li aria-current={r.id === current ? 'true' : undefined} style={{ paddingLeft: `${r.depth * 1.25}rem` }}
              data-test="archive-message" data-id={r.id} data-thread={thread.rootId} data-depth={r.depth} data-test-state={v?.read ? 'decrypted' : v?.error ? 'error' : 'pending'}>
              {r.depth > 0 && <><span class="muted" aria-hidden="true">↳ </span><span class="sr-only">{`Reply, level ${r.depth}: `}</span></>}
              <a href={here({ id: r.id })} data-test="archive-open">{subjectOf(r.id)}</a>
              <span class="muted"> {v?.read?.from?.name || v?.read?.from?.address || ''}{date ? ' · ' : ''}</span>
              {date && <span class="muted" data-test="archive-date" data-test-state={date.kind}>{dateLine(date)}</span>}
            </li>
          );
        })}
      </ul>
    );
  };

  /** The reply waits in the background for the next composer the user opens at their webmail. */
  const reply = async (id: number, to: 'list' | 'author') => {
    if (!signedIn) return;
    setReplying({ id, state: 'busy', text: 'Preparing the reply…' });
    try {
      const r = await ask('archive.reply', { list: signedIn, id, to });
      const until = new Date(r.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      const whom = r.to === 'author' ? `to ${r.author} alone (encrypted to their key; the list does not get it)` : `to ${r.list}`;
      setReplying({
        id, state: 'ready',
        text: `Your reply “${r.subject}” ${whom} is ready. Go to your webmail, start a new message and press “Write encrypted with Letterlock” at its compose box: the composer opens with the quoted text, threaded under this message. It waits there until ${until}.`,
      });
    } catch (e) {
      setReplying({ id, state: 'error', text: messageOf(e) });
    }
  };

  const copyLink = async () => {
    if (!focus || !signedIn) return;
    try {
      await navigator.clipboard.writeText(permalinkUrl(location.href, signedIn, { id: focus.id }));
      setCopied(true);
    } catch {
      setError('The browser did not let Letterlock copy. Select the link next to the button and copy it yourself.');
    }
  };

  return (
    <Panel title="Letterlock archive" state={state}>
      <div data-test="archive" data-test-state={phase}>
        {state && !state.unlocked && <p class="notice">Unlock Letterlock (toolbar button) to sign in.</p>}
        {lists !== null && lists.length === 0 && <p class="notice">You are not a confirmed member of any list yet. Join one on the options page first.</p>}
        {linkedElsewhere && lists !== null && <p class="warning" data-test="archive-link-unknown">This link is to the archive of {link!.list}, which is not one of your lists in Letterlock.</p>}
        {link?.message && !linkedElsewhere && signedIn !== link.list && (
          <p class="notice" data-test="archive-link-pending">Sign in to {link.list} to open the linked message.</p>
        )}
        <div class="actions">
          <label class="inline">List
            <select data-test="archive-list" value={list} onChange={(e) => {
              setList((e.target as HTMLSelectElement).value);
              // A link into the list left behind no longer applies.
              if (location.hash) history.replaceState(null, '', location.pathname + location.search);
              setLink(null);
              reset();
              setSignedIn(null);
              setPhase('idle');
            }}>
              {(lists ?? []).map((l) => <option value={l.address}>{l.address}</option>)}
            </select>
          </label>
          <button type="button" class={signedIn ? '' : 'primary'} data-test="archive-sign-in" disabled={!list || phase === 'busy'} onClick={() => void signIn()}>{signedIn ? 'Sign in again' : 'Sign in with my key'}</button>
        </div>
        <ErrorLine error={error} />
        {signedIn && (
          <>
            <form role="search" onSubmit={(e) => e.preventDefault()}>
              <label>Search this list's messages
                <input type="search" data-test="archive-search" value={query} autocomplete="off" spellcheck={false} placeholder="Words in the subject, author or text"
                  onFocus={() => void buildIndex()}
                  onInput={(e) => {
                    setQuery((e.target as HTMLInputElement).value);
                    void buildIndex();
                  }} />
              </label>
              <p class="muted" role="status" aria-live="polite" data-test="archive-search-status" data-test-state={indexState.state}>
                {indexState.state === 'none' && 'Searching decrypts the archive here, on this computer. What it finds is kept in this page only, never saved.'}
                {indexState.state === 'indexing' && `Decrypting to search… ${index.current.size} messages so far.`}
                {indexState.state === 'done' && `Searching all ${index.current.size} messages of this list, decrypted in this page only.`}
                {indexState.state === 'full' && `Searching the newest ${index.current.size} messages of this list, decrypted in this page only.`}
                {indexState.failed > 0 && ` ${indexState.failed} could not be decrypted and are not searched.`}
              </p>
              {indexState.state === 'full' && (
                <p class="warning" data-test="archive-search-bound">
                  Search covers the newest {index.current.size} messages only (at most {SEARCH_BOUND} are kept in memory). Older messages are not searched; page through the threads to read them.
                </p>
              )}
            </form>
            {query.trim() && (
              <section aria-label="Search results">
                <h2>{hits.length === 0 ? 'No messages found' : `${hits.length} ${hits.length === 1 ? 'message' : 'messages'} found`}</h2>
                <ul class="plain results" data-test="archive-results">
                  {hits.map((h) => {
                    // The same date as the thread line shows (signed when verified, else the archive's).
                    const date = shownDate(views.get(h.id)?.read, archivedDate(h.id)) ?? (h.date ? { iso: h.date, kind: 'signed' as const } : null);
                    return (
                    <li data-test="archive-result" data-id={h.id}>
                      <a href={here({ id: h.id })} data-test="archive-result-open">{h.subject ?? '(no subject)'}</a>
                      <span class="muted">{h.author ?? ''}{date ? ` · ${dateLine(date)}` : ''}</span>
                      <span class="snippet">{h.snippet}</span>
                    </li>
                    );
                  })}
                </ul>
              </section>
            )}
            {focus && (
              <section ref={viewRef} aria-label="Message" data-test="archive-focus" data-id={focus.id}>
                <h2>Thread</h2>
                <Rows thread={focus.thread} current={focus.id} />
                {shown?.read && (
                  <div data-test="archive-view" data-test-state="decrypted" data-id={focus.id}>
                    <div class="actions">
                      <button type="button" data-test="archive-copy-link" onClick={() => void copyLink()}>{copied ? 'Link copied' : 'Copy link'}</button>
                      <input type="text" readOnly aria-label="Link to this message" class="permalink" data-test="archive-permalink"
                        value={permalinkUrl(location.href, signedIn, { id: focus.id })} onFocus={(e) => (e.target as HTMLInputElement).select()} />
                    </div>
                    <div class="actions" data-test="archive-reply" data-test-state={replying?.id === focus.id ? replying.state : 'none'}>
                      <button type="button" data-test="archive-reply-list" disabled={replying?.state === 'busy'} onClick={() => void reply(focus.id, 'list')}>Reply to list</button>
                      {shown.read.signature.status === 'verified' && shown.read.from && shown.read.from.address !== signedIn && (
                        <button type="button" data-test="archive-reply-author" disabled={replying?.state === 'busy'} onClick={() => void reply(focus.id, 'author')}>Reply to {shown.read.from.name || shown.read.from.address}</button>
                      )}
                    </div>
                    {replying?.id === focus.id && (replying.state === 'error'
                      ? <ErrorLine error={replying.text} />
                      : <p class={replying.state === 'ready' ? 'notice' : 'muted'} role="status" aria-live="polite" data-test="archive-reply-result">{replying.text}</p>)}
                    <Message read={shown.read} archivedAt={focus.thread.messages.find((m) => m.id === focus.id)?.date ?? null} />
                  </div>
                )}
                {shown?.error && <ErrorLine error={shown.error.message} />}
              </section>
            )}
            <h2>Threads</h2>
            {threads.length === 0 && phase !== 'busy' && <p class="muted" data-test="archive-empty">No messages in this archive yet.</p>}
            <ol class="threads" data-test="thread-list">
              {threads.map((t) => <li><Rows thread={t} current={focus?.id} /></li>)}
            </ol>
            <div class="actions">
              <button type="button" data-test="archive-newer" disabled={cursors.length <= 1 || phase === 'busy'} onClick={() => void go(async () => {
                const prev = cursors.slice(0, -1);
                setCursors(prev);
                await loadPage(signedIn, prev[prev.length - 1] ?? null);
              })}>Newer threads</button>
              <button type="button" data-test="archive-older" disabled={!next || phase === 'busy'} onClick={() => void go(async () => {
                setCursors([...cursors, next]);
                await loadPage(signedIn, next);
              })}>Older threads</button>
            </div>
          </>
        )}
      </div>
    </Panel>
  );
}

mount(<Archive />);
