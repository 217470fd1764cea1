// The relay's faster DATA encoder (server/delivery/data-stream.ts) must put exactly
// the bytes nodemailer's own encoder puts on the wire, for any input split into any
// chunks: dot-stuffing, bare CR and bare LF, chunk borders between CR and LF or
// before a dot. And a real relay send goes through the fast path.

import fc from 'fast-check';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { DataStream, fastPath, isMarkedClean, originalFlush, originalTransform, passesUnchanged, piecesPassUnchanged } from '../../../server/delivery/data-stream.ts';
import { SmtpRelay } from '../../../server/delivery/relay.ts';
import { PostRender } from '../../../server/delivery/render.ts';

async function encode(chunks: Buffer[], fast: boolean): Promise<Buffer> {
  const s = new DataStream();
  if (!fast) Object.assign(s, { _transform: originalTransform, _flush: originalFlush });
  const out: Buffer[] = [];
  s.on('data', (b: Buffer) => out.push(b));
  const ended = once(s, 'end');
  for (const c of chunks) s.write(c);
  s.end();
  await ended;
  return Buffer.concat(out);
}

const byte = fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61, 0x0d, 0x0a);
const chunk = fc.array(byte, { minLength: 0, maxLength: 40 }).map((a) => Buffer.from(a));

describe('DATA encoder fast path', () => {
  it('writes the same bytes as nodemailer for any chunks (random CR, LF, dots)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(chunk, { maxLength: 6 }), async (chunks) => {
      expect((await encode(chunks, true)).equals(await encode(chunks, false))).toBe(true);
    }), { numRuns: 2000 });
  });

  it('passes clean CRLF mail unchanged and refuses what needs stuffing', () => {
    expect(passesUnchanged(Buffer.from('A: b\r\n\r\nline\r\n'), false)).toBe(true);
    expect(passesUnchanged(Buffer.from('a\r\n.b\r\n'), false)).toBe(false); // dot at a line start
    expect(passesUnchanged(Buffer.from('.a'), 0x0a)).toBe(false); // ... across chunks
    expect(passesUnchanged(Buffer.from('a\nb'), false)).toBe(false); // bare LF
    expect(passesUnchanged(Buffer.from('a\rb'), false)).toBe(false); // bare CR
    expect(passesUnchanged(Buffer.from('\nb'), 0x0d)).toBe(true); // CR LF across chunks
    expect(passesUnchanged(Buffer.from('b'), 0x0d)).toBe(false);
  });

  it('judges joined pieces as it judges their concatenation, scanning only the pieces not known', () => {
    fc.assert(fc.property(fc.array(fc.tuple(chunk, fc.boolean()), { maxLength: 6 }), (parts) => {
      const pieces = parts.map(([c]) => c);
      // A known piece carries its verdict after a plain byte, as render.ts computes it once per post.
      const known = parts.map(([c, isKnown]) => (isKnown ? passesUnchanged(c, 0x41) : null));
      expect(piecesPassUnchanged(pieces, known)).toBe(passesUnchanged(Buffer.concat(pieces), false));
    }), { numRuns: 5000 });
  });

  it('marks the copies the server renders as clean, and never a copy that needs stuffing', async () => {
    const body = Uint8Array.from({ length: 5000 }, (_, i) => (i * 37) & 0xff);
    const r = new PostRender(body, [['Subject', 'x']], 'tag');
    for (const form of ['pgp-mime', 'inline'] as const) {
      for (let pk = 1; pk <= 100; pk += 11) {
        const copy = r.mailWithHeaderText(Uint8Array.from({ length: pk }, (_, i) => i), 'To: <a@b.test>', form);
        expect(isMarkedClean(copy)).toBe(true);
        expect(passesUnchanged(copy, false)).toBe(true);
        // The terminator goes into the room after the copy: same bytes, the copy itself untouched (twice: a retry).
        const before = Buffer.from(copy);
        for (let i = 0; i < 2; i++) expect((await encode([copy], true)).equals(await encode([before], false))).toBe(true);
        expect(copy.equals(before)).toBe(true);
      }
    }
    // Raw recipient header text with a bare LF and a line-leading dot: scanned and stuffed as before.
    for (const text of ['X-A: b\n.c', 'X-A: b\r\n.c', 'X-A: b\rc']) {
      const copy = r.mailWithHeaderText(Uint8Array.of(1, 2, 3), text);
      expect(isMarkedClean(copy)).toBe(false);
      expect((await encode([copy], true)).equals(await encode([copy], false))).toBe(true);
    }
  });

  it('a copy sent through the relay arrives byte for byte, dot-stuffing undone by the server', async () => {
    let received = Buffer.alloc(0);
    const server = new SMTPServer({
      authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false,
      onData(stream, _s, cb) { const parts: Buffer[] = []; stream.on('data', (c: Buffer) => parts.push(c)); stream.on('end', () => { received = Buffer.concat(parts); cb(); }); },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`, maxConnections: 1, tlsRejectUnauthorized: true, requireTLS: false });
    try {
      for (const [text, fast] of [['Subject: x\r\n\r\nclean body\r\n', 1], ['Subject: y\r\n\r\n.starts with a dot\r\n..two\r\n', 0]] as const) {
        const before = fastPath.chunks;
        expect(await relay.send({ from: 'a@x.test', to: 'b@x.test' }, Buffer.from(text))).toEqual({ ok: true });
        expect(received.toString('latin1')).toBe(text);
        // The relay's SMTP client runs the same DataStream class this module sped up.
        expect(fastPath.chunks - before).toBe(fast);
      }
      // A rendered copy goes through unscanned (trusted) and arrives byte for byte.
      const copy = new PostRender(Uint8Array.of(9, 8, 7, 6), [['Subject', 'z']], 'tag').mailWithHeaderText(Uint8Array.of(1, 2, 3), 'To: <b@x.test>');
      const trusted = fastPath.trusted;
      for (let i = 0; i < 2; i++) {
        received = Buffer.alloc(0);
        expect(await relay.send({ from: 'a@x.test', to: 'b@x.test' }, copy)).toEqual({ ok: true });
        expect(received.equals(copy)).toBe(true);
      }
      expect(fastPath.trusted - trusted).toBe(2);
    } finally {
      relay.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
