// Archive room: signing in to a list's archive, its thread pages, and its
// messages decrypted here for the archive viewer (a top-level extension page),
// and a reply to one of them: decrypted here again from the server's record
// (never taken from the page), then handed to the writing room, which holds it
// for the next composer the user opens at their webmail.

import { concatBytes, fromBase64 } from '../../../shared/index.ts';
import { ExtensionError, refuse, toErrorView } from '../../errors.ts';
import type { ArchiveMessageView, ArchiveThreadView, Requests } from '../../messages.ts';
import type { Thread } from '../../../shared/api/types.ts';
import { readView, type Decryptor } from '../decrypt.ts';
import type { ArchiveSignIn } from '../signin.ts';
import type { WritingRoom } from './writing.ts';
import { str, type Common, type Room } from './room.ts';

export type ArchiveRequests = 'archive.login' | 'archive.threads' | 'archive.open' | 'archive.thread' | 'archive.reply';

export class ArchiveRoom {
  constructor(private readonly c: Common, private readonly signIn: ArchiveSignIn, private readonly decryptor: Decryptor, private readonly writing?: WritingRoom) {}

  readonly room: Room<ArchiveRequests> = {
    'archive.login': { callers: ['page'], run: (q) => this.signIn.login(q.list) },
    'archive.threads': { callers: ['page'], run: (q) => this.threads(q.list, q.before) },
    'archive.open': { callers: ['page'], run: (q) => this.open(q.list, q.ids) },
    'archive.thread': { callers: ['page'], run: (q) => this.thread(q.list, q.id, q.messageId) },
    'archive.reply': { callers: ['page'], run: (q) => this.reply(q.list, q.id, q.to) },
  };

  private async reply(listAddress: string, id: unknown, to: unknown): Promise<Requests['archive.reply']['res']> {
    if (!this.writing) refuse('INTERNAL');
    if (!Number.isSafeInteger(id) || (id as number) < 1) refuse('BAD_INPUT', 'a message number');
    if (to !== 'list' && to !== 'author') refuse('BAD_INPUT', 'reply to the list or to the author');
    const { server } = this.c.d;
    const list = await this.c.requireList(listAddress);
    const answer = await this.signIn.withToken(list, (t) => server.messages(list.server, list.address, t, { ids: [id as number] }));
    const m = answer.messages.find((x) => x.meta.id === id);
    if (!m) throw new ExtensionError('NOT_FOUND', 'This message is not in the archive. Reload the archive page and open it again.');
    const r = await this.decryptor.read(concatBytes([fromBase64(m.wrappedKey), fromBase64(m.body)]), list);
    // A record that decrypts as another list's post is no reply to this list.
    if (r.list?.address !== list.address) refuse('BAD_INPUT', `this message is not a post of ${list.address}`);
    const { reply, expiresAt } = await this.writing.prepareArchiveReply(r, to);
    return { to: reply.to, list: reply.list, author: reply.author, subject: reply.subject, expiresAt };
  }

  private async thread(listAddress: string, id: unknown, messageId: unknown): Promise<ArchiveThreadView> {
    let key: { id: number } | { messageId: string };
    if (id !== undefined && messageId === undefined) {
      if (!Number.isSafeInteger(id) || (id as number) < 1) refuse('BAD_INPUT', 'a message number');
      key = { id: id as number };
    } else if (messageId !== undefined && id === undefined) key = { messageId: str(messageId, 998, 'the Message-ID') };
    else refuse('BAD_INPUT', 'a message number or a Message-ID');
    const { server } = this.c.d;
    const list = await this.c.requireList(listAddress);
    return viewOf(await this.signIn.withToken(list, (t) => server.thread(list.server, list.address, t, key)));
  }

  private async threads(listAddress: string, before: string | null): Promise<Requests['archive.threads']['res']> {
    const { server } = this.c.d;
    const list = await this.c.requireList(listAddress);
    const page = await this.signIn.withToken(list, (t) => server.threads(list.server, list.address, t, before === null ? null : str(before, 200, 'the cursor')));
    return { threads: page.threads.map(viewOf), nextCursor: page.nextCursor };
  }

  private async open(listAddress: string, ids: unknown): Promise<ArchiveMessageView[]> {
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > 50 || !ids.every((i) => Number.isInteger(i) && i > 0)) refuse('BAD_INPUT', '1 to 50 message numbers');
    const { server } = this.c.d;
    const list = await this.c.requireList(listAddress);
    const answer = await this.signIn.withToken(list, (t) => server.messages(list.server, list.address, t, { ids: ids as number[] }));
    const out: ArchiveMessageView[] = [];
    for (const m of answer.messages) {
      try {
        const bytes = concatBytes([fromBase64(m.wrappedKey), fromBase64(m.body)]);
        out.push({ id: m.meta.id, read: readView(await this.decryptor.read(bytes, list)), error: null });
      } catch (e) {
        out.push({ id: m.meta.id, read: null, error: toErrorView(e) });
      }
    }
    return out;
  }
}

function viewOf(t: Thread): ArchiveThreadView {
  return {
    rootId: t.rootId, lastDate: t.lastDate,
    messages: t.messages.map((m) => ({ id: m.id, date: m.date, size: m.size, messageId: m.messageId, inReplyTo: m.inReplyTo, references: m.references })),
  };
}
