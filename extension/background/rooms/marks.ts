// Test builds only: the reader and composer frames tell the test driver their
// state words. Firefox's driver cannot look inside extension frames placed in a
// page, so the word goes through here to the content script that placed the
// frame, which marks it on the iframe element. Frames post nothing to the page
// for this; in release builds the request is refused.

import { refuse } from '../../errors.ts';
import type { ReadingRoom } from './reading.ts';
import { str, type Common, type Room } from './room.ts';
import type { WritingRoom } from './writing.ts';

const WORD = /^[a-z0-9-]{0,24}$/;

export class MarksRoom {
  constructor(private readonly c: Common, private readonly reading: ReadingRoom, private readonly writing: WritingRoom) {}

  readonly room: Room<'frame.state'> = {
    'frame.state': {
      callers: ['reader', 'composer'],
      run: async (q, s) => {
        if (!this.c.d.testMarks) refuse('FORBIDDEN');
        const id = str(q.id, 64, 'the frame id');
        const words = [q.state, q.signature, q.step].map((w) => str(w, 24, 'a state word'));
        if (!words.every((w) => WORD.test(w))) refuse('BAD_INPUT', 'state words');
        const target = this.reading.targetOf(id, s) ?? this.writing.targetOf(id, s);
        if (!target) return { marked: false };
        await this.c.d.pushToFrame(target.tabId, target.frameId, { letterlock: 1, type: 'mark-frame', id, state: words[0]!, signature: words[1]!, step: words[2]! }).catch(() => {});
        return { marked: true };
      },
    },
  };
}
