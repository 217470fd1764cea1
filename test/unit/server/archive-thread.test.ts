// threadOf: the one thread holding a post (what an archive permalink opens), by
// archive id or Message-ID, confined to its list, and bounded even for a thread
// longer than a page's cap (the asked-for post is still in it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { threadOf, threadPage } from '../../../server/archive/threads.ts';
import { openDb } from '../../../server/store/db.ts';
import { insertList } from '../../../server/store/lists.ts';
import { insertPost } from '../../../server/store/posts.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup() {
  const db = openDb(join(dir, `${Math.random()}.db`));
  const list = (address: string) => insertList(db, { address, owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });
  const post = (listId: number, messageId: string | null, inReplyTo: string | null = null) =>
    insertPost(db, { listId, messageId, inReplyTo, references: inReplyTo ? [inReplyTo] : [], date: Date.now(), size: 10, body: new Uint8Array(10), archivePkesk: new Uint8Array(96), listPkesk: new Uint8Array(96), display: null, bareText: false });
  return { db, list, post };
}

describe('threadOf', () => {
  it('finds the thread of a reply by id and by Message-ID, the same as the page shows it', () => {
    const { db, list, post } = setup();
    const l = list('a@x.test');
    const root = post(l, '<r@x>');
    post(l, '<other@x>');
    const reply = post(l, '<s@x>', '<r@x>');
    const byId = threadOf(db, l, { id: reply })!;
    expect(byId.rootId).toBe(root);
    expect(byId.messages.map((m) => m.id)).toEqual([root, reply]);
    expect(threadOf(db, l, { messageId: '<s@x>' })).toEqual(byId);
    expect(threadPage(db, l, null, 10).threads.find((t) => t.rootId === root)).toEqual(byId);
  });

  it('is confined to its list: a post of another list, or an unknown one, is not found', () => {
    const { db, list, post } = setup();
    const a = list('a@x.test');
    const b = list('b@x.test');
    const inB = post(b, '<b@x>');
    post(a, '<a@x>');
    expect(threadOf(db, a, { id: inB })).toBeNull();
    expect(threadOf(db, a, { messageId: '<b@x>' })).toBeNull();
    expect(threadOf(db, a, { id: 999_999 })).toBeNull();
    expect(threadOf(db, a, { messageId: '<nobody@x>' })).toBeNull();
  });

  it('a thread longer than the cap is cut at 500 posts, and still holds the asked-for post', () => {
    const { db, list, post } = setup();
    const l = list('a@x.test');
    post(l, '<p0@x>');
    let last = 0;
    for (let i = 1; i <= 520; i++) last = post(l, `<p${i}@x>`, '<p0@x>');
    const t = threadOf(db, l, { id: last })!;
    expect(t.messages.length).toBe(501);
    expect(t.messages.some((m) => m.id === last)).toBe(true);
  });
});
