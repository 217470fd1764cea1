// The payload finder on the armor shapes real clients and webmail produce, and
// on the inputs that made the old regexes quadratic. Each shaped post is opened
// for real (decrypted with the list key, signature verified), so a layout the
// scanner rebuilds wrongly fails here.

import { beforeAll, describe, expect, it } from 'vitest';
import { armoredBlocks, htmlToText } from '../../../shared/mime/armor-scan.ts';
import { composePost, findPayload, isLetterlockError, openPost, outerFactsOf } from '../../../shared/index.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../../support/keys.ts';

let list: TestKey, alice: TestKey;
let armored = '';

beforeAll(async () => {
  [list, alice] = await Promise.all([makeKey(LIST_ADDRESS, 'list'), makeKey('alice@example.org')]);
  const post = await composePost({
    message: { subject: 'Shapes', from: { address: 'alice@example.org' }, to: [{ address: LIST_ADDRESS }], text: 'inline shapes' },
    senderKey: alice.privateKey, listKey: list.publicKey,
  });
  armored = post.armored;
});

const lines = () => armored.trim().split(/\r?\n/);
const headerLine = (i: number) => lines().slice(0, i);

function mail(contentType: string, body: string, cte = '8bit'): string {
  return `From: Alice <alice@example.org>\r\nTo: ${LIST_ADDRESS}\r\nSubject: ...\r\nMIME-Version: 1.0\r\nContent-Type: ${contentType}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${body}\r\n`;
}

async function opens(raw: string): Promise<void> {
  const opened = await openPost(raw, { listKey: list.privateKey, memberKeys: [alice.publicKey] });
  expect(opened.form).toBe('inline');
  expect(opened.verification.valid).toBe(true);
}

/** The armor with its CRC line removed, if it has one. */
function withoutCrc(): string[] {
  return lines().filter((l) => !/^=[A-Za-z0-9+/]{4}$/.test(l));
}

describe('inline armor in the shapes clients send', () => {
  it('text/plain with LF, CRLF, and indented or NBSP-padded lines', async () => {
    await opens(mail('text/plain; charset=utf-8', lines().join('\n')));
    await opens(mail('text/plain; charset=utf-8', lines().join('\r\n')));
    await opens(mail('text/plain; charset=utf-8', lines().map((l) => `  ${l}\u00a0`).join('\n')));
  });

  it('quoted-printable and base64 text/plain', async () => {
    const qp = lines().join('\r\n').replace(/=/g, '=3D');
    await opens(mail('text/plain; charset=us-ascii', qp, 'quoted-printable'));
    const b64 = Buffer.from(`Hello,\r\n\r\n${lines().join('\r\n')}\r\n`).toString('base64').replace(/.{76}/g, '$&\r\n');
    await opens(mail('text/plain; charset=utf-8', b64, 'base64'));
  });

  it('armor headers (Version, Comment, Charset), with or without the CRC line', async () => {
    const body = withoutCrc().slice(1);
    const withHeaders = ['-----BEGIN PGP MESSAGE-----', 'Version: GnuPG v2', 'Comment: https://example.org', 'Charset: UTF-8', ...body.filter((l, i) => !(i === 0 && l === ''))];
    await opens(mail('text/plain', withHeaders.join('\n')));
    await opens(mail('text/plain', withoutCrc().join('\n')));
  });

  it('HTML as Gmail makes it: a <div> per line, <div><br></div> for the empty line, &nbsp; and &#43;', async () => {
    const html = `<div dir="ltr">${lines().map((l) => (l === '' ? '<div><br></div>' : `<div>${l.replace(/\+/g, '&#43;')}</div>`)).join('')}</div>`;
    await opens(mail('text/html; charset=utf-8', html));
  });

  it('HTML as Gmail makes it, with armor headers (Mailvelope writes Version and Comment): the blank <div> after each header line does not end the headers', async () => {
    const body = withoutCrc().slice(1).filter((l, i) => !(i === 0 && l === ''));
    const withHeaders = ['-----BEGIN PGP MESSAGE-----', 'Version: Mailvelope v5.1.0', 'Comment: https://mailvelope.com', '', ...body];
    const html = `<div dir="ltr">${withHeaders.map((l) => (l === '' ? '<div><br></div>' : `<div>${l.replace(/\+/g, '&#43;').replace(/ /g, '&nbsp;')}</div>`)).join('\r\n')}</div>`;
    await opens(mail('text/html; charset=utf-8', html));
    // A header line after the first base64 line is not a header: the armor is refused, not rebuilt.
    const late = [...withHeaders.slice(0, 5), 'Comment: late', ...withHeaders.slice(5)].join('\n');
    const e = await openPost(mail('text/plain', late), { listKey: list.privateKey, memberKeys: [alice.publicKey] }).catch((x: unknown) => x);
    expect(isLetterlockError(e)).toBe(true);
  });

  it('HTML as Outlook on the web makes it: <p> and <br> with &nbsp; padding and a missing blank line', async () => {
    const noBlank = lines().filter((l, i) => !(i === 1 && l === ''));
    const html = `<html><body><p class="x">${noBlank.map((l) => `&nbsp;${l.replace(/\//g, '&#x2F;')}`).join('<br>\r\n')}</p></body></html>`;
    await opens(mail('text/html; charset=utf-8', html));
  });

  it('a quoted armor block ("> -----BEGIN") is history, not a payload', async () => {
    const quoted = lines().map((l) => `> ${l}`).join('\n');
    const e = await findPayload(mail('text/plain', `On Monday Bob wrote:\n${quoted}\n`), 1e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'NO_PAYLOAD')).toBe(true);
  });

  it('a refusal found after the headers were read carries the outer facts (a notice can name the Message-ID)', async () => {
    const e = await findPayload(mail('text/plain', 'no armor here').replace('Subject: ...', 'Subject: ...\r\nMessage-ID: <kept@example.org>'), 1e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'NO_PAYLOAD')).toBe(true);
    expect(outerFactsOf(e)?.messageId).toBe('<kept@example.org>');
  });

  it('two blocks are refused as MULTIPLE_PAYLOADS', async () => {
    const e = await findPayload(mail('text/plain', `${lines().join('\n')}\n\n${lines().join('\n')}`), 1e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'MULTIPLE_PAYLOADS')).toBe(true);
  });
});

describe('PGP/MIME mangled by Exchange/Outlook', () => {
  function mangled(withEmptyText: boolean): string {
    const b = 'exch-boundary';
    const parts = [
      ...(withEmptyText ? ['Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\r\n'] : []),
      'Content-Type: application/pgp-encrypted\r\nContent-Disposition: attachment; filename="PGPMIME Versions Identification"\r\nContent-Description: PGP/MIME Versions Identification\r\nContent-Transfer-Encoding: base64\r\n\r\nVmVyc2lvbjogMQ0K\r\n',
      `Content-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Disposition: attachment; filename="encrypted.asc"\r\nContent-Description: OpenPGP encrypted message.asc\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(armored).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`,
    ];
    return mail(`multipart/mixed; boundary="${b}"`, `${parts.map((p) => `--${b}\r\n${p}`).join('')}--${b}--`);
  }

  it('with and without the extra empty text part: found as PGP/MIME and opened', async () => {
    for (const withEmptyText of [true, false]) {
      const opened = await openPost(mangled(withEmptyText), { listKey: list.privateKey, memberKeys: [alice.publicKey] });
      expect(opened.form).toBe('pgp-mime');
      expect(opened.verification.valid).toBe(true);
    }
  });

  it('a multipart/mixed with real text beside the parts is not taken for it', async () => {
    const raw = mangled(true).replace('quoted-printable\r\n\r\n\r\n', 'quoted-printable\r\n\r\nHello, see the attachment\r\n');
    const e = await findPayload(raw, 1e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'NO_PAYLOAD')).toBe(true);
  });
});

describe('hostile shapes get a clear refusal', () => {
  it('100,000 encoded words in a Subject: HEADERS_TOO_LARGE before the MIME parser runs', async () => {
    const subject = Array.from({ length: 100_000 }, (_, i) => `=?utf-8?b?${Buffer.from(`w${i}`).toString('base64')}?=`).join(' ');
    const e = await findPayload(`From: a@example.org\r\nSubject: ${subject}\r\n\r\nhi\r\n`, 30e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'HEADERS_TOO_LARGE')).toBe(true);
  });

  it('deep MIME nesting: HEADERS_TOO_LARGE', async () => {
    const body = Array.from({ length: 100 }, (_, i) => `--b${i}\r\nContent-Type: multipart/mixed; boundary=b${i + 1}\r\n\r\n`).join('');
    const e = await findPayload(`From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n${body}`, 30e6).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'HEADERS_TOO_LARGE')).toBe(true);
  });

  it('an outer Message-ID with a NUL, CR/LF or 8-bit bytes is dropped, not kept', async () => {
    const raw = mail('text/plain', lines().join('\n')).replace('Subject: ...', 'Subject: ...\r\nMessage-ID: =?utf-8?q?=3Cpoison=00pill=40evil.test=3E?=\r\nIn-Reply-To: <ok@example.org>\r\nReferences: <a\u0000b@x> <good@example.org> <\u00e9@x>');
    const found = await findPayload(raw, 1e6);
    expect(found.outer.messageId).toBeNull();
    expect(found.outer.inReplyTo).toBe('<ok@example.org>');
    expect(found.outer.references).toEqual(['<good@example.org>']);
  });

  it('the scanners end on unterminated input in one pass', () => {
    expect(htmlToText('<'.repeat(300_000))).toBe('');
    expect(htmlToText('a<b>c<d')).toBe('ac');
    expect(armoredBlocks('-----BEGIN PGP MESSAGE-----\n'.repeat(100_000))).toEqual([]);
  });
});
