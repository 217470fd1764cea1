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
});
