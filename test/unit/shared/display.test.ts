// What copies may show of a post's signed content (shared/post/display.ts) and
// which lists its signed headers name (signed-facts.ts), for the header layouts
// clients write: protected-headers "v1" (our composer, Thunderbird), RFC 9788
// header protection without the "v1" marker (hp="cipher"), and bare text.

import { describe, expect, it } from 'vitest';
import { buildInnerMessage, innerDisplay, protectedRecipientsOf, utf8 } from '../../../shared/index.ts';

const RFC9788 = [
  'Content-Type: multipart/alternative; boundary="hp"; hp="cipher"',
  'MIME-Version: 1.0',
  'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_under_RFC_9788?=',
  'From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>',
  'To: news@lists.example.org',
  'Cc: Someone <someone@example.org>',
  'HP-Outer: Subject: [...]',
  '',
  '--hp',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'body',
  '--hp--',
  '',
].join('\r\n');

describe('signed headers, in the layouts clients write', () => {
  it('protected-headers "v1" (our composer): subject, author name, recipients', async () => {
    const inner = buildInnerMessage({ subject: 'Plans ✓', from: { address: 'alice@example.org', name: 'Alice Example' }, to: [{ address: 'news@lists.example.org' }], text: 'hi' });
    expect(await innerDisplay(inner.bytes)).toEqual({ isMime: true, subject: 'Plans ✓', fromName: 'Alice Example' });
    expect(protectedRecipientsOf(inner.bytes)).toEqual(['news@lists.example.org']);
  });

  it('RFC 9788 header protection without the "v1" marker: read the same way', async () => {
    expect(await innerDisplay(utf8(RFC9788))).toEqual({ isMime: true, subject: 'Grüße under RFC 9788', fromName: 'Jörg' });
    expect(protectedRecipientsOf(utf8(RFC9788))).toEqual(['news@lists.example.org', 'someone@example.org']);
  });

  it('a MIME entity without protected headers: no subject, no name (the clear ones may be shown)', async () => {
    expect(await innerDisplay(utf8('Content-Type: text/plain\r\n\r\nhello\r\n'))).toEqual({ isMime: true, subject: null, fromName: null });
  });

  it('bare text (inline clients): not MIME, nothing to show', async () => {
    expect(await innerDisplay(utf8('Subject: not a header block, just text\r\nhello\r\n'))).toEqual({ isMime: false, subject: null, fromName: null });
    expect(await innerDisplay(utf8('just text\r\n'))).toEqual({ isMime: false, subject: null, fromName: null });
  });

  it('control characters and over-long subjects are made one bounded line', async () => {
    const long = `Content-Type: text/plain\r\nSubject: a\u0007b ${'x'.repeat(2000)}\r\n\r\nbody`;
    const shown = await innerDisplay(utf8(long));
    expect(shown.subject!.length).toBeLessThanOrEqual(500);
    expect(shown.subject).not.toMatch(/[\u0000-\u001f]/);
  });
});
