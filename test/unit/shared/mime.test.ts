import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import {
  buildInlineMail, buildInnerMessage, buildPgpMimeMail, encodeUnstructured, findPayload, formatAddress, fromUtf8,
  isLetterlockError, looksLikeMime, mimeParameter, parseInner, writeHeaders, type ErrorCode,
} from '../../../shared/index.ts';

const ARMOR = '-----BEGIN PGP MESSAGE-----\n\nwV4DAAAAAAAAAAASAQdA\n=abcd\n-----END PGP MESSAGE-----\n';
const MAX = 1024 * 1024;

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | unknown> {
  const e = await p.then(() => null, (x: unknown) => x);
  return isLetterlockError(e) ? e.code : e;
}

describe('header encoding', () => {
  it('leaves plain ASCII alone and encodes the rest as RFC 2047 words that decode back', async () => {
    expect(encodeUnstructured('Hello list')).toBe('Hello list');
    for (const s of ['Grüße', '日本語のテキスト'.repeat(10), '=?UTF-8?B?fake?=', '🙂 emoji ✓ mixed']) {
      const encoded = encodeUnstructured(s);
      expect(encoded).toMatch(/^[\x20-\x7e]+$/);
      for (const word of encoded.split(' ')) expect(word.length).toBeLessThanOrEqual(75);
      const parsed = await PostalMime.parse(`Subject: ${encoded}\r\n\r\nx`);
      expect(parsed.subject).toBe(s);
    }
  });

  it('quotes or encodes display names and refuses an address with specials', () => {
    expect(formatAddress('a@example.org', 'Alice')).toBe('Alice <a@example.org>');
    expect(formatAddress('a@example.org', 'Doe, Alice')).toBe('"Doe, Alice" <a@example.org>');
    expect(formatAddress('a@example.org', 'Zoë')).toMatch(/^=\?UTF-8\?B\?.+\?= <a@example.org>$/);
    expect(() => formatAddress('a@example.org>, evil@x', 'x')).toThrow();
  });

  it('refuses header injection through CR or LF', () => {
    expect(() => writeHeaders([['Subject', 'hi\r\nBcc: victim@example.org']])).toThrow(/line break/);
    expect(() => writeHeaders([['Bad Name', 'x']])).toThrow();
  });

  it('writes RFC 2231 parameters for non-ASCII file names', () => {
    expect(mimeParameter('filename', 'a.txt')).toBe('filename="a.txt"');
    expect(mimeParameter('filename', 'résumé.pdf')).toBe("filename*=UTF-8''r%C3%A9sum%C3%A9.pdf");
  });
});

describe('inner entity with protected headers', () => {
  it('carries subject, from, to, date and message id inside, marked protected-headers="v1"', async () => {
    const date = new Date('2026-01-02T03:04:05Z');
    const built = buildInnerMessage({
      subject: 'Réunion ✓', from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: 'list@example.org' }],
      text: 'body\n', html: '<p>body</p>', date, messageId: '<id1@example.org>', inReplyTo: '<id0@example.org>', references: ['<id0@example.org>'],
      attachments: [{ filename: 'notes.txt', contentType: 'text/plain', content: new Uint8Array([104, 105]) }],
    });
    const raw = fromUtf8(built.bytes);
    expect(raw).toMatch(/^Content-Type: multipart\/mixed; boundary="[^"]+";\r\n protected-headers="v1"/);
    expect(raw).not.toMatch(/(?<!\r)\n/); // CRLF throughout
    const parsed = await parseInner(built.bytes);
    expect(parsed).toMatchObject({
      isMime: true, subject: 'Réunion ✓', from: { address: 'alice@example.org', name: 'Alice' }, messageId: '<id1@example.org>',
      inReplyTo: '<id0@example.org>', text: 'body\n', html: '<p>body</p>',
      attachments: [{ filename: 'notes.txt', contentType: 'text/plain', size: 2 }],
    });
    expect(parsed.date?.toISOString()).toBe(date.toISOString());
  });

  it('treats plain text (inline PGP from other clients) as text, not MIME', async () => {
    const text = new TextEncoder().encode('Hi all,\nthis is not MIME: really.\n');
    expect(looksLikeMime(text)).toBe(false);
    const parsed = await parseInner(text);
    expect(parsed).toMatchObject({ isMime: false, subject: null, text: 'Hi all,\nthis is not MIME: really.\n' });
  });
});

describe('finding the payload', () => {
  it('finds the armored part of PGP/MIME and the outer threading facts; the clear subject and name apart from them (memory only)', async () => {
    const mail = buildPgpMimeMail([
      ['From', 'Alice <Alice@Example.org>'], ['Subject', 'Real subject typed in webmail'], ['Message-ID', '<m2@example.org>'],
      ['In-Reply-To', '<m1@example.org>'], ['References', '<m0@example.org> <m1@example.org>'], ['Date', 'Tue, 01 Dec 2026 10:00:00 +0000'],
    ], ARMOR);
    const found = await findPayload(mail, MAX);
    expect(found.form).toBe('pgp-mime');
    expect(found.armored).toContain('wV4DAAAAAAAAAAASAQdA');
    expect(found.outer).toEqual({
      from: 'alice@example.org', messageId: '<m2@example.org>', inReplyTo: '<m1@example.org>',
      references: ['<m0@example.org>', '<m1@example.org>'], date: new Date('2026-12-01T10:00:00Z'), autoSubmitted: false,
    });
    // The outer facts are stored with held posts: they never carry the subject or the name.
    expect(JSON.stringify(found.outer)).not.toContain('Real subject');
    expect(JSON.stringify(found.outer)).not.toContain('Alice"');
    expect(found.clear).toEqual({ subject: 'Real subject typed in webmail', fromName: 'Alice' });
  });

  it('finds binary OpenPGP in the PGP/MIME part', async () => {
    const boundary = 'b1';
    const mail = `From: a@example.org\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nwcBMAw==\r\n--b1--\r\n`;
    const found = await findPayload(mail, MAX);
    expect(found.binary).toEqual(new Uint8Array([0xc1, 0xc0, 0x4c, 0x03]));
  });

  it('finds an inline block and ignores a quoted one from an earlier message', async () => {
    const quoted = ARMOR.split('\n').map((l) => `> ${l}`).join('\n');
    const mail = buildInlineMail([['From', 'a@example.org']], `On Monday Bob wrote:\n${quoted}\n\n${ARMOR}`);
    const found = await findPayload(mail, MAX);
    expect(found.form).toBe('inline');
    expect(found.armored?.startsWith('-----BEGIN PGP MESSAGE-----')).toBe(true);
  });

  it('finds an inline block that a webmail sent only as HTML', async () => {
    const html = `<div>${ARMOR.split('\n').join('<br>')}</div>`;
    const mail = `From: a@example.org\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${html}\r\n`;
    expect((await findPayload(mail, MAX)).form).toBe('inline');
  });

  it.each<[string, string, ErrorCode]>([
    ['no payload at all', 'From: a@example.org\r\nSubject: hi\r\n\r\nplain text, not encrypted\r\n', 'NO_PAYLOAD'],
    ['look-alike text that is not a message', 'From: a@example.org\r\n\r\nthe line -----BEGIN PGP MESSAGE----- inside a sentence\r\n', 'NO_PAYLOAD'],
    ['two inline blocks', `From: a@example.org\r\n\r\n${ARMOR}\r\n${ARMOR}`, 'MULTIPLE_PAYLOADS'],
    ['two encrypted parts in PGP/MIME', `From: a@example.org\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${ARMOR}\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${ARMOR}\r\n--b--\r\n`, 'MULTIPLE_PAYLOADS'],
    ['PGP/MIME with an unknown protocol', `From: a@example.org\r\nContent-Type: multipart/encrypted; protocol="application/x-other"; boundary="b"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${ARMOR}\r\n--b--\r\n`, 'NO_PAYLOAD'],
  ])('refuses %s', async (_name, mail, code) => {
    expect(await codeOf(findPayload(mail, MAX))).toBe(code);
  });

  it('refuses a mail over the size limit before parsing it', async () => {
    expect(await codeOf(findPayload(new Uint8Array(MAX + 1), MAX))).toBe('TOO_LARGE');
  });

  it('survives malformed MIME with a clear outcome', async () => {
    const broken = 'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n--never-closed\r\nContent-Type: text/plain\r\n\r\n' + ARMOR;
    const found = await findPayload(broken, MAX).catch((e: unknown) => e);
    // Either the lenient parser finds the one block, or it is refused with a code; never a crash.
    if (isLetterlockError(found)) expect(['MIME_MALFORMED', 'NO_PAYLOAD']).toContain(found.code);
    else expect((found as { form: string }).form).toBe('inline');
  });
});
