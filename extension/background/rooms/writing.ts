// Writing room: the content script asks for a composer for one compose box; the
// composer frame in that tab encrypts and signs the post here, and the armored
// result goes to that box's content script (never through the page).

import { composePost, readPublicKey } from '../../../shared/index.ts';
import { refuse } from '../../errors.ts';
import type { Requests } from '../../messages.ts';
import { remember, str, type Common, type Room, type Sender } from './room.ts';

const MAX_POST_TEXT = 5 * 1024 * 1024;
const MAX_COMPOSERS = 256;

interface ComposeTarget {
  tabId: number;
  frameId: number;
}

export type WritingRequests = 'content.compose' | 'composer.lists' | 'composer.send';

export class WritingRoom {
  private readonly composeTargets = new Map<string, ComposeTarget>();

  constructor(private readonly c: Common) {}

  readonly room: Room<WritingRequests> = {
    'content.compose': {
      callers: ['content'],
      run: async (_q, s) => {
        const composeId = this.c.d.randomId();
        remember(this.composeTargets, composeId, { tabId: s.tab!.id!, frameId: s.frameId ?? 0 }, MAX_COMPOSERS);
        return { composeId };
      },
    },
    'composer.lists': { callers: ['composer'], run: async () => (await this.c.listViews()).filter((l) => l.state === 'member' && !l.changedFingerprint) },
    'composer.send': { callers: ['composer'], run: (q, s) => this.send(q, s) },
  };

  /** The content script's frame for a composer of this tab (test marks). */
  targetOf(composeId: string, s: Sender): ComposeTarget | null {
    const t = this.composeTargets.get(composeId);
    return t && t.tabId === s.tab?.id ? t : null;
  }

  private async send(q: Requests['composer.send']['req'], sender: Sender): Promise<{ inserted: true }> {
    const d = this.c.d;
    const target = typeof q.composeId === 'string' ? this.composeTargets.get(q.composeId) : undefined;
    if (!target || target.tabId !== sender.tab?.id) refuse('FORBIDDEN');
    const list = await this.c.requireList(q.list);
    if (list.state !== 'member') refuse('LIST_NOT_PINNED', 'you are not a member of this list yet');
    const subject = str(q.subject, 998, 'the subject');
    const text = str(q.text, Math.min(MAX_POST_TEXT, list.maxBytes), 'the text');
    if (text.trim() === '') refuse('BAD_INPUT', 'the message is empty');
    // Signed with the key this list knows the user by.
    const own = await this.c.keyForList(list);
    const senderKey = d.session.requireKey(own.fingerprint);
    d.rate.take();
    const { key: listKey } = await readPublicKey(list.listKeyArmored, { expectedAddress: list.address });
    const post = await composePost({
      message: { subject, from: { address: own.address, ...(own.name ? { name: own.name } : {}) }, to: [{ address: list.address, ...(list.name ? { name: list.name } : {}) }], text },
      senderKey, listKey,
    });
    await d.pushToFrame(target.tabId, target.frameId, { letterlock: 1, type: 'insert-armored', composeId: q.composeId, armored: post.armored });
    this.composeTargets.delete(q.composeId);
    return { inserted: true };
  }
}
