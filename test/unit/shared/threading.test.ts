// The signed (protected) threading headers the list server threads by when a
// webmail gives the outer mail ids of its own (shared/post/display.ts).

import { describe, expect, it } from 'vitest';
import { buildInnerMessage, protectedThreading, utf8 } from '../../../shared/index.ts';

describe('protectedThreading', () => {
  it('reads Message-ID, In-Reply-To and References from the signed header block', async () => {
    const inner = buildInnerMessage({
      subject: 'Re: x', from: { address: 'a@example.org' }, to: [{ address: 'l@lists.test' }], text: 'hi',
      messageId: '<child@example.org>', inReplyTo: '<parent@example.org>', references: ['<root@example.org>', '<parent@example.org>'],
    });
    expect(await protectedThreading(inner.bytes)).toEqual({ messageId: '<child@example.org>', inReplyTo: '<parent@example.org>', references: ['<root@example.org>', '<parent@example.org>'] });
  });

  it('nothing for bare text, a block without ids, or ids that are not plain message ids', async () => {
    expect(await protectedThreading(utf8('just text\r\n'))).toBeNull();
    expect(await protectedThreading(utf8('Content-Type: text/plain\r\n\r\nhello\r\n'))).toBeNull();
    const odd = await protectedThreading(utf8('Content-Type: text/plain\r\nMessage-ID: <ok@example.org>\r\nIn-Reply-To: <bad id@x>\r\nReferences: <a@x> junk <b@x>\r\n\r\nhello\r\n'));
    expect(odd).toEqual({ messageId: '<ok@example.org>', inReplyTo: null, references: ['<a@x>', '<b@x>'] });
  });

  it('keeps at most the last 100 references', async () => {
    const refs = Array.from({ length: 150 }, (_, i) => `<r${i}@example.org>`);
    const t = await protectedThreading(utf8(`Content-Type: text/plain\r\nReferences: ${refs.join('\r\n ')}\r\n\r\nhello\r\n`));
    expect(t!.references).toHaveLength(100);
    expect(t!.references.at(-1)).toBe('<r149@example.org>');
  });

  it('a header block over the encoded-word cap is not parsed (postal-mime is quadratic on them): nothing, at once', async () => {
    // Short base64 words ("=?" twice each, as the cap counts at ingest) fit 1,001 of them
    // within the 16 KB a MIME header block may take; the cap refuses the block whole, as innerDisplay does.
    const word = '=?u?b?eA==?=';
    const block = (n: number) => `Content-Type: text/plain\r\nMessage-ID: <ok@example.org>\r\nSubject: ${Array.from({ length: n }, () => word).join(' ')}\r\n\r\nhello\r\n`;
    expect(block(1001).length).toBeLessThan(16 * 1024);
    const started = performance.now();
    expect(await protectedThreading(utf8(block(1001)))).toBeNull();
    expect(performance.now() - started).toBeLessThan(5000);
    // Under the cap, the same block is read as usual.
    expect(await protectedThreading(utf8(block(500)))).toMatchObject({ messageId: '<ok@example.org>' });
  });
});
