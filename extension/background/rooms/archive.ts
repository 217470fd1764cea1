// Archive room: signing in to a list's archive, its thread pages, and its
// messages decrypted here for the archive viewer (a top-level extension page).

import { concatBytes, fromBase64 } from '../../../shared/index.ts';
import { refuse, toErrorView } from '../../errors.ts';
import type { ArchiveMessageView, ArchiveThreadView, Requests } from '../../messages.ts';
import type { Thread } from '../../../shared/api/types.ts';
import { readView, type Decryptor } from '../decrypt.ts';
import type { ArchiveSignIn } from '../signin.ts';
import { str, type Common, type Room } from './room.ts';

export type ArchiveRequests = 'archive.login' | 'archive.threads' | 'archive.open' | 'archive.thread';

export class ArchiveRoom {
  constructor(private readonly c: Common, private readonly signIn: ArchiveSignIn, private readonly decryptor: Decryptor) {}

  readonly room: Room<ArchiveRequests> = {
    'archive.login': { callers: ['page'], run: (q) => this.signIn.login(q.list) },
    'archive.threads': { callers: ['page'], run: (q) => this.threads(q.list, q.before) },
    'archive.open': { callers: ['page'], run: (q) => this.open(q.list, q.ids) },
    'archive.thread': { callers: ['page'], run: (q) => this.thread(q.list, q.id, q.messageId) },
  };

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
