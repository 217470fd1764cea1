// The writer's own defence: whatever threading values reach postHeaders (the
// ingest sanitises too, but a stored row may predate it or be damaged), the
// header writer never throws and every line is printable ASCII of <= 998 octets.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeHeaders } from '../../../shared/index.ts';
import { ListHeaderTemplate, listHeaders, postHeaders, safeMessageId, safeReferences, unsubscribeUrl } from '../../../server/delivery/headers.ts';

const anyId = fc.oneof(
  fc.string({ maxLength: 400 }),
  fc.string({ unit: 'binary', maxLength: 400 }).map((s) => `<${s}>`),
  fc.constantFrom('<poison\0pill@evil.test>', '<a\r\nBcc: x@evil.test>', `<${'x'.repeat(2000)}@e>`, '<ü@x>', '<>', '<a b@x>'),
);

it('postHeaders + writeHeaders never throw and write only short printable lines', () => {
  fc.assert(fc.property(fc.option(anyId), fc.option(anyId), fc.array(anyId, { maxLength: 60 }), fc.option(fc.double()), (messageId, inReplyTo, references, date) => {
    const text = writeHeaders(postHeaders({ listAddress: 'l@lists.test', messageId, inReplyTo, references, date }));
    for (const line of text.split('\r\n')) {
      expect(line.length).toBeLessThanOrEqual(998);
      expect(line).toMatch(/^[\x20-\x7e]*$/);
    }
  }), { numRuns: 2000 });
});

it('keeps plain ids, drops the rest, and bounds references to the nearest 20', () => {
  expect(safeMessageId('<ok.1@example.org>')).toBe('<ok.1@example.org>');
  for (const bad of ['<poison\0pill@evil.test>', '<a\r\nb@x>', `<${'x'.repeat(250)}@x>`, 'no-brackets@x', '<a<b@x>', '<ü@x>', null]) expect(safeMessageId(bad)).toBeNull();
  const refs = Array.from({ length: 10_000 }, (_, i) => `<r${i}@x>`);
  refs[9_995] = '<bad\0@x>';
  const kept = safeReferences(refs);
  expect(kept).toHaveLength(20);
  expect(kept.at(-1)).toBe('<r9999@x>');
  expect(kept).not.toContain('<bad\0@x>');
});

describe('ListHeaderTemplate', () => {
  it('writes exactly what writeHeaders(listHeaders(...)) writes, short and folded long addresses alike', () => {
    const t = new ListHeaderTemplate('team@lists.example.org', 'https://lists.example.org/');
    for (const member of ['a@x.test', `${'long.local.part.'.repeat(12)}x@${'sub.'.repeat(20)}example.org`]) {
      const url = unsubscribeUrl('https://lists.example.org/', 'team@lists.example.org', member, 'tok'.repeat(10));
      expect(t.fill(url)).toBe(writeHeaders(listHeaders({ listAddress: 'team@lists.example.org', publicUrl: 'https://lists.example.org/', unsubscribeUrl: url })));
    }
  });
});
