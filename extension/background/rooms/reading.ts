// Reading room: the content script hands over an armored block (ciphertext
// only) and gets a block id; the reader frame it placed in the same tab opens it
// (decrypted and verified here) and may confirm a subscription it carries.

import { refuse } from '../../errors.ts';
import { confirmationToken, readView, type Decryptor } from '../decrypt.ts';
import { remember, str, type Common, type Room, type Sender } from './room.ts';

/** Largest armored block the background takes from a content script (bytes of text). */
export const MAX_BLOCK_CHARS = 4 * 1024 * 1024;
const MAX_STASHED = 256;

interface Stashed {
  armored: string;
  tabId: number;
}

export type ReadingRequests = 'content.stash' | 'reader.open' | 'reader.confirm';

export class ReadingRoom {
  private readonly stash = new Map<string, Stashed>();

  constructor(private readonly c: Common, private readonly decryptor: Decryptor) {}

  readonly room: Room<ReadingRequests> = {
    'content.stash': { callers: ['content'], run: async (q, s) => this.stashBlock(str(q.armored, MAX_BLOCK_CHARS, 'the block'), s.tab!.id!) },
    'reader.open': { callers: ['reader'], run: async (q, s) => readView(await this.decryptor.read(this.stashed(q.blockId, s))) },
    'reader.confirm': { callers: ['reader'], run: (q, s) => this.confirm(this.stashed(q.blockId, s)) },
  };

  private stashBlock(armored: string, tabId: number): { blockId: string } {
    if (!armored.includes('-----BEGIN PGP MESSAGE-----')) refuse('BAD_INPUT', 'not an armored message');
    const blockId = this.c.d.randomId();
    remember(this.stash, blockId, { armored, tabId }, MAX_STASHED);
    return { blockId };
  }

  /** A stashed block, only for a frame in the tab whose content script stashed it. */
  private stashed(blockId: unknown, sender: Sender): string {
    const entry = typeof blockId === 'string' ? this.stash.get(blockId) : undefined;
    if (!entry) refuse('UNKNOWN_BLOCK');
    if (entry.tabId !== sender.tab?.id) refuse('FORBIDDEN');
    return entry.armored;
  }

  /** One click: the token is taken from the decrypted mail here, never from the frame. */
  private async confirm(armored: string): Promise<{ status: string; list: string }> {
    const r = await this.decryptor.read(armored);
    const token = confirmationToken(r);
    if (!token || !r.list) refuse('NO_CONFIRMATION');
    const list = await this.c.requireList(r.list.address);
    const answer = await this.c.d.server.confirm(list.server, list.address, { token });
    await this.c.d.store.putList({ ...list, state: answer.status === 'member' ? 'member' : 'pending-approval' });
    return { status: answer.status, list: list.address };
  }
}
