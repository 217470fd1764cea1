// threadOf: the one thread holding a post (what an archive permalink opens), by
// archive id or Message-ID, confined to its list, and bounded even for a thread
// longer than a page's cap (the asked-for post is still in it).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { threadOf, threadPage } from '../../../server/archive/threads.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { insertList } from '../../../server/store/lists.ts';
import { insertPost } from '../../../server/store/posts.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function setup() {
  const sql = await openTestSql(join(dir, `${Math.random()}.db`));
  const list = (address: string) => insertList(sql, { address, owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });
  const post = async (listId: number, messageId: string | null, inReplyTo: string | null = null) =>
    await insertPost(sql, { listId, messageId, inReplyTo, references: inReplyTo ? [inReplyTo] : [], date: Date.now(), size: 10, body: new Uint8Array(10), archivePkesk: new Uint8Array(96), listPkesk: new Uint8Array(96), display: null, bareText: false });
  return { sql, list, post };
}

describe('threadOf', () => {
  it('finds the thread of a reply by id and by Message-ID, the same as the page shows it', async () => {
    const { sql, list, post } = await setup();
    const l = await list('a@x.test');
    const root = await post(l, '<r@x>');
    await post(l, '<other@x>');
    const reply = await post(l, '<s@x>', '<r@x>');
    const byId = (await threadOf(sql, l, { id: reply }))!;
    expect(byId.rootId).toBe(root);
    expect(byId.messages.map((m) => m.id)).toEqual([root, reply]);
    expect(await threadOf(sql, l, { messageId: '<s@x>' })).toEqual(byId);
    expect((await threadPage(sql, l, null, 10)).threads.find((t) => t.rootId === root)).toEqual(byId);
  });

  it('is confined to its list: a post of another list, or an unknown one, is not found', async () => {
    const { sql, list, post } = await setup();
    const a = await list('a@x.test');
    const b = await list('b@x.test');
    const inB = await post(b, '<b@x>');
    await post(a, '<a@x>');
    expect(await threadOf(sql, a, { id: inB })).toBeNull();
    expect(await threadOf(sql, a, { messageId: '<b@x>' })).toBeNull();
    expect(await threadOf(sql, a, { id: 999_999 })).toBeNull();
    expect(await threadOf(sql, a, { messageId: '<nobody@x>' })).toBeNull();
  });

  it('a thread longer than the cap is cut at 500 posts, and still holds the asked-for post', async () => {
    const { sql, list, post } = await setup();
    const l = await list('a@x.test');
    await post(l, '<p0@x>');
    let last = 0;
    for (let i = 1; i <= 520; i++) last = await post(l, `<p${i}@x>`, '<p0@x>');
    const t = (await threadOf(sql, l, { id: last }))!;
    expect(t.messages.length).toBe(501);
    expect(t.messages.some((m) => m.id === last)).toBe(true);
  });
});
