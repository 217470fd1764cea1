// The archive viewer's pure parts: threads nested as people read them (and safe
// against forged or looping headers), the in-memory search with its bounds, and
// permalinks that round-trip and refuse malformed fragments.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, nestThread, newestFirst, type ThreadMessage } from '../../extension/pages/archive/threading.ts';
import { MAX_TEXT_PER_MESSAGE, SearchIndex } from '../../extension/pages/archive/search.ts';
import { parsePermalink, permalinkFragment, permalinkUrl } from '../../extension/pages/archive/permalink.ts';

const msg = (id: number, parent: number | null, refs: number[] = []): ThreadMessage => ({
  id, messageId: `<m${id}@x>`, inReplyTo: parent === null ? null : `<m${parent}@x>`, references: refs.map((r) => `<m${r}@x>`),
});

describe('nestThread', () => {
  it('puts each reply under the message it answers, siblings oldest first, depth first', () => {
    // 1 ← 2 ← 4, 1 ← 3, 2 ← 5 (given out of order)
    const rows = nestThread([msg(5, 2), msg(3, 1), msg(1, null), msg(4, 2), msg(2, 1)]);
    expect(rows.map((r) => [r.id, r.depth, r.parentId])).toEqual([[1, 0, null], [2, 1, 1], [4, 2, 2], [5, 2, 2], [3, 1, 1]]);
  });

  it('falls back to References when In-Reply-To is unknown, and to the root when nothing is known', () => {
    const rows = nestThread([msg(1, null), msg(2, 1), { id: 3, messageId: '<m3@x>', inReplyTo: '<gone@x>', references: ['<m1@x>', '<m2@x>', '<gone@x>'] }, { id: 4, messageId: null, inReplyTo: '<nowhere@x>' }]);
    expect(rows.map((r) => [r.id, r.depth])).toEqual([[1, 0], [2, 1], [3, 2], [4, 1]]);
  });

  it('never makes a later message the parent of an earlier one (forged headers cannot loop)', () => {
    const rows = nestThread([{ id: 1, messageId: '<a>', inReplyTo: '<b>' }, { id: 2, messageId: '<b>', inReplyTo: '<a>' }]);
    expect(rows.map((r) => [r.id, r.depth])).toEqual([[1, 0], [2, 1]]);
  });

  it('caps the drawn depth, and handles a long chain without recursion', () => {
    const chain = Array.from({ length: 5000 }, (_, i) => msg(i + 1, i === 0 ? null : i));
    const rows = nestThread(chain);
    expect(rows).toHaveLength(5000);
    expect(Math.max(...rows.map((r) => r.depth))).toBe(MAX_DEPTH);
  });

  it('always returns every message exactly once, whatever the headers say', () => {
    const arb = fc.array(fc.record({ id: fc.integer({ min: 1, max: 60 }), messageId: fc.option(fc.constantFrom('<a>', '<b>', '<c>', '<d>')), inReplyTo: fc.option(fc.constantFrom('<a>', '<b>', '<c>', '<x>')), references: fc.array(fc.constantFrom('<a>', '<b>', '<c>', '<d>'), { maxLength: 4 }) }), { maxLength: 40 });
    fc.assert(fc.property(arb, (ms) => {
      const unique = [...new Map(ms.map((m) => [m.id, m])).values()];
      const rows = nestThread(unique);
      expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(unique.map((m) => m.id).sort((a, b) => a - b));
      for (const r of rows) if (r.parentId !== null) expect(r.parentId).toBeLessThan(r.id);
    }));
  });

  it('orders threads newest first', () => {
    expect(newestFirst([{ rootId: 3 }, { rootId: 9 }, { rootId: 5 }]).map((t) => t.rootId)).toEqual([9, 5, 3]);
  });
});

describe('SearchIndex', () => {
  const entry = (id: number, subject: string, author: string, text: string) => ({ id, subject, author, text, date: null });

  it('finds words in subject, author and body, case-insensitively, every word required, newest first', () => {
    const ix = new SearchIndex();
    ix.add(entry(1, 'Meeting notes', 'Alice <alice@example.org>', 'We met on Tuesday. Ümlaut ZEBRA'));
    ix.add(entry(2, 'Re: Meeting notes', 'Bob <bob@example.org>', 'Thanks, zebra crossing.'));
    ix.add(entry(3, 'Other', 'Carol <carol@example.org>', 'nothing here'));
    expect(ix.search('zebra').map((h) => h.id)).toEqual([2, 1]);
    expect(ix.search('MEETING bob').map((h) => h.id)).toEqual([2]);
    expect(ix.search('carol@EXAMPLE').map((h) => h.id)).toEqual([3]);
    expect(ix.search('ümlaut').map((h) => h.id)).toEqual([1]);
    expect(ix.search('zebra giraffe')).toEqual([]);
    expect(ix.search('   ')).toEqual([]);
    expect(ix.search('tuesday')[0]!.snippet).toContain('Tuesday');
  });

  it('stops at its bound in messages and says so; a cleared index starts again', () => {
    const ix = new SearchIndex(3);
    for (let i = 1; i <= 3; i++) expect(ix.add(entry(i, `s${i}`, 'a', 'word'))).toBe(true);
    expect(ix.full).toBe(false);
    expect(ix.add(entry(4, 's4', 'a', 'word'))).toBe(false);
    expect(ix.full).toBe(true);
    expect(ix.size).toBe(3);
    expect(ix.search('word')).toHaveLength(3);
    ix.clear();
    expect(ix.size).toBe(0);
    expect(ix.full).toBe(false);
  });

  it('stops at its bound in characters, and searches only the first part of a huge body', () => {
    const ix = new SearchIndex(1000, 300_000);
    const huge = 'a '.repeat(MAX_TEXT_PER_MESSAGE) + 'needle';
    expect(ix.add(entry(1, 's', 'a', huge))).toBe(true);
    expect(ix.search('needle')).toEqual([]);
    expect(ix.add(entry(2, 's', 'a', 'x'.repeat(150_000)))).toBe(false);
    expect(ix.full).toBe(true);
  });

  it('a hostile query (very long, many words, regex characters) is bounded and literal', () => {
    const ix = new SearchIndex();
    ix.add(entry(1, 'a.*b', 'x', '(?:)'));
    expect(ix.search('a.*b').map((h) => h.id)).toEqual([1]);
    expect(ix.search('.+')).toEqual([]);
    const t = Date.now();
    ix.search('w '.repeat(1_000_000));
    expect(Date.now() - t).toBeLessThan(1000);
  });
});

describe('permalinks', () => {
  it('round-trip a list and an archive number or a Message-ID', () => {
    expect(parsePermalink(permalinkFragment('club@lists.test', { id: 42 }))).toEqual({ list: 'club@lists.test', message: { id: 42 } });
    expect(parsePermalink(permalinkFragment('club@lists.test', { messageId: '<a&b=c#d@x>' }))).toEqual({ list: 'club@lists.test', message: { messageId: '<a&b=c#d@x>' } });
    expect(parsePermalink('#list=Club%40Lists.test')).toEqual({ list: 'club@lists.test', message: null });
    expect(permalinkUrl('chrome-extension://abc/extension/pages/archive/index.html?searchBound=3#old', 'club@lists.test', { id: 7 }))
      .toBe('chrome-extension://abc/extension/pages/archive/index.html#list=club%40lists.test&msg=7');
  });

  it('refuse malformed fragments', () => {
    for (const bad of ['', '#', '#msg=1', '#list=nolist&msg=1', '#list=a@b&msg=0', '#list=a@b&msg=-1', '#list=a@b&msg=1e3', '#list=a@b&msg=99999999999999999', `#list=a@b&mid=${'x'.repeat(1500)}`, `#list=a@b&${'x'.repeat(3000)}`]) {
      expect(parsePermalink(bad), bad).toBeNull();
    }
  });
});
