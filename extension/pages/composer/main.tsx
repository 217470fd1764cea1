// The composer frame, opened by the button next to a webmail compose box (or by
// "Reply" in a reader frame of the same tab). The text is typed here, in the
// extension's origin, never in the page's editor. The background signs and
// encrypts it, with any attached files inside the encryption, and hands only the
// armored result to the content script, which puts it into the compose box.
// Drafts are saved as the user types, encrypted to their own key by the
// background; reopening the composer for the same post or reply restores them.
// Files are attached by the file chooser or by dropping them anywhere on the
// composer, with the same bounds either way.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ask } from '../../ask.ts';
import type { AttachmentUpload, ListView, ReplyView, StateView } from '../../messages.ts';
import { toBase64 } from '../../../shared/bytes.ts';
import { ErrorLine, Panel, messageOf, mount, reportHeight, reportState } from '../ui/ui.tsx';

/** The same bounds the background enforces (writing.ts), checked here first for an immediate answer. */
const MAX_FILES = 10;
const MAX_FILES_BYTES = 10 * 1024 * 1024;
const SAVE_AFTER_MS = 1200;

interface Picked {
  name: string;
  type: string;
  size: number;
  file: File;
}

function size(n: number): string {
  return n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

function Composer() {
  const composeId = location.hash.slice(1);
  const [state, setState] = useState<StateView | null>(null);
  const [lists, setLists] = useState<ListView[] | null>(null);
  const [list, setList] = useState('');
  const [subject, setSubject] = useState('');
  const [text, setText] = useState('');
  const [reply, setReply] = useState<ReplyView | null>(null);
  const [files, setFiles] = useState<Picked[]>([]);
  const [phase, setPhase] = useState<'loading' | 'ready' | 'busy' | 'inserted' | 'error'>('loading');
  const [error, setError] = useState<string | null>(null);
  const [draft, setDraft] = useState<{ state: 'none' | 'restored' | 'saving' | 'saved' | 'error'; text: string }>({ state: 'none', text: '' });
  const saveTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  // The files as last set: drop handlers registered once read them here, not from a stale render.
  const filesNow = useRef<Picked[]>([]);
  const [dragging, setDragging] = useState(false);
  const edited = useRef(false);

  useEffect(() => {
    void (async () => {
      try {
        setState(await ask('state.get', {}));
        const ls = await ask('composer.lists', {});
        setLists(ls);
        setList(ls[0]?.address ?? '');
        const start = await ask('composer.start', { composeId });
        if (start.reply) {
          setReply(start.reply);
          setList(start.reply.list);
          setSubject(start.reply.subject);
          setText(start.reply.quoted);
        }
        if (start.draft) {
          if (!start.reply) setList(start.draft.list || (ls[0]?.address ?? ''));
          setSubject(start.draft.subject);
          setText(start.draft.text);
          setDraft({ state: 'restored', text: `Draft restored (saved ${new Date(start.draft.savedAt).toLocaleString()}).` });
        }
        setPhase('ready');
      } catch (e) {
        setError(messageOf(e));
        setPhase('error');
      }
    })();
  }, []);

  useEffect(() => reportState(composeId, phase, reply?.to ?? '', draft.state), [phase, draft.state, reply]);
  useEffect(() => reportHeight(), []);

  // Saved a moment after the last keystroke: encrypted to the user's own key, in the background.
  const saveDraft = async (values: { list: string; subject: string; text: string }) => {
    setDraft({ state: 'saving', text: 'Saving the draft…' });
    try {
      const r = await ask('composer.draft.save', { composeId, ...values });
      setDraft({ state: 'saved', text: `Draft saved, encrypted to your key (${new Date(r.savedAt).toLocaleTimeString()}).` });
    } catch (e) {
      setDraft({ state: 'error', text: `The draft was not saved: ${messageOf(e)}` });
    }
  };
  const edit = (change: Partial<{ list: string; subject: string; text: string }>) => {
    edited.current = true;
    const next = { list: change.list ?? list, subject: change.subject ?? subject, text: change.text ?? text };
    if (change.list !== undefined) setList(change.list);
    if (change.subject !== undefined) setSubject(change.subject);
    if (change.text !== undefined) setText(change.text);
    if (saveTimer.current) clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(() => void saveDraft(next), SAVE_AFTER_MS);
  };

  const keep = (all: Picked[]) => {
    filesNow.current = all;
    setFiles(all);
  };

  /** Chosen or dropped: the same bounds, said in words, and nothing taken when they are passed. */
  const addFiles = (list: FileList | null | undefined) => {
    setError(null);
    const have = filesNow.current;
    const count = list?.length ?? 0;
    if (count === 0) return;
    // Counted before any file is looked at: a drop of thousands is refused at once.
    if (have.length + count > MAX_FILES) return setError(`Attach at most ${MAX_FILES} files to one encrypted post.`);
    const all = [...have, ...Array.from(list!, (f) => ({ name: f.name, type: f.type, size: f.size, file: f }))];
    const total = all.reduce((n, f) => n + f.size, 0);
    if (total > MAX_FILES_BYTES) return setError(`The attachments (${size(total)}) are too large: at most ${size(MAX_FILES_BYTES)} of files go into one encrypted post. Leave some out, or share large files another way.`);
    keep(all);
  };

  const pick = (input: HTMLInputElement) => {
    addFiles(input.files);
    input.value = '';
  };

  // Files dropped anywhere on the composer are attached (and the frame never
  // navigates to a dropped file). Dragged text is left alone: it may go into the message.
  useEffect(() => {
    const hasFiles = (e: DragEvent) => !!e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files');
    const over = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = 'copy';
      setDragging(true);
    };
    const leave = (e: DragEvent) => {
      if (!e.relatedTarget) setDragging(false); // left the frame
    };
    const drop = (e: DragEvent) => {
      setDragging(false);
      if (!hasFiles(e)) return;
      e.preventDefault();
      addFiles(e.dataTransfer!.files);
    };
    addEventListener('dragover', over);
    addEventListener('dragleave', leave);
    addEventListener('drop', drop);
    return () => {
      removeEventListener('dragover', over);
      removeEventListener('dragleave', leave);
      removeEventListener('drop', drop);
    };
  }, []);

  const discard = async () => {
    if (saveTimer.current) clearTimeout(saveTimer.current);
    try {
      await ask('composer.draft.delete', { composeId });
      setDraft({ state: 'none', text: 'Draft discarded.' });
    } catch (e) {
      setError(messageOf(e));
    }
  };

  const send = async (ev: Event) => {
    ev.preventDefault();
    if (saveTimer.current) clearTimeout(saveTimer.current);
    setPhase('busy');
    setError(null);
    try {
      const attachments: AttachmentUpload[] = [];
      for (const f of files) attachments.push({ filename: f.name, contentType: f.type || 'application/octet-stream', base64: toBase64(new Uint8Array(await f.file.arrayBuffer())) });
      await ask('composer.send', { composeId, list, subject, text, ...(attachments.length ? { attachments } : {}) });
      setPhase('inserted');
      setDraft({ state: 'none', text: '' });
    } catch (e) {
      setError(messageOf(e));
      setPhase('ready');
    }
  };

  const title = reply ? (reply.to === 'author' ? `Private reply to ${reply.author}` : `Reply to ${reply.list}`) : 'Write encrypted';
  return (
    <Panel title={title} state={state}>
      <form data-test="composer" data-test-state={phase} data-test-reply={reply?.to ?? ''} onSubmit={(e) => void send(e)}>
        {lists && lists.length === 0 && <p data-test="no-lists">You are not a member of any list yet. Subscribe in the Letterlock options.</p>}
        {reply ? (
          <p data-test="reply-banner" class="hint">
            {reply.to === 'author'
              ? <>Goes to <strong>{reply.author}</strong> alone, encrypted to their verified key; the list does not get it. Send it to that address.</>
              : <>Goes to the list <strong>{reply.list}</strong>, threaded under the message you answer.</>}
          </p>
        ) : (
          <label>To list
            <select data-test="composer-list" value={list} onChange={(e) => edit({ list: (e.target as HTMLSelectElement).value })}>
              {(lists ?? []).map((l) => <option value={l.address}>{l.name && l.name !== l.address ? `${l.name} <${l.address}>` : l.address}</option>)}
            </select>
          </label>
        )}
        <label>Subject (encrypted: the mail's visible subject becomes "...") <input type="text" data-test="composer-subject" maxLength={998} value={subject} onInput={(e) => edit({ subject: (e.target as HTMLInputElement).value })} /></label>
        <label>Message <textarea data-test="composer-text" rows={reply ? 12 : 8} value={text} onInput={(e) => edit({ text: (e.target as HTMLTextAreaElement).value })} /></label>
        <fieldset data-test="composer-attachments" class={dragging ? 'dropping' : undefined}>
          <legend>Attachments (encrypted with the message; up to {MAX_FILES} files, {size(MAX_FILES_BYTES)} together)</legend>
          <p class="muted" data-test="drop-hint">{dragging ? 'Drop the files to attach them, encrypted with the message.' : 'Choose files below, or drop them anywhere on this composer.'}</p>
          {files.length > 0 && (
            <ul data-test="attachment-list">
              {files.map((f, i) => (
                <li data-test="attachment-item">
                  {f.name} <span class="muted">({size(f.size)})</span>{' '}
                  <button type="button" class="link" aria-label={`Remove ${f.name}`} onClick={() => keep(files.filter((_, j) => j !== i))}>Remove</button>
                </li>
              ))}
            </ul>
          )}
          <input type="file" multiple data-test="composer-files" aria-label="Attach files" onChange={(e) => pick(e.target as HTMLInputElement)} />
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary" data-test="composer-send" disabled={phase !== 'ready' || !list}>Sign, encrypt and put into the mail</button>
          {(draft.state === 'saved' || draft.state === 'restored') && <button type="button" class="link" data-test="draft-discard" onClick={() => void discard()}>Discard draft</button>}
        </div>
        {draft.text && <p data-test="draft-state" data-test-state={draft.state} class="muted">{draft.text}</p>}
        {state && !state.unlocked && <p>Letterlock is locked: unlock it from the toolbar button first.</p>}
        <ErrorLine error={error} />
        {phase === 'inserted' && <p class="ok">The encrypted text is in your mail. Send it{reply?.to === 'author' ? ` to ${reply.author}` : ' to the list'}.</p>}
      </form>
    </Panel>
  );
}

mount(<Composer />);
