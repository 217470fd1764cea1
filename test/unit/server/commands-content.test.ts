// Reading a request's decrypted content (server/commands/content.ts): the text
// that holds the commands and any key sent along, in the shapes clients make.

import { describe, expect, it } from 'vitest';
import { readContent } from '../../../server/commands/content.ts';
import { parseCommands } from '../../../server/commands/parse.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZabc\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----';

describe('readContent', () => {
  it('plain text (gpg --sign --encrypt of a text file), with a key pasted below', async () => {
    const c = await readContent(enc(`x-replace-key\n\n${KEY}\n`));
    expect(parseCommands(c.text).commands).toEqual([{ name: 'replace-key' }]);
    expect(c.keys).toEqual([KEY]);
  });

  it('a MIME entity with the key attached as application/pgp-keys, in base64', async () => {
    const b64 = Buffer.from(KEY).toString('base64');
    const c = await readContent(enc(`Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx-replace-key\r\n--b\r\nContent-Type: application/pgp-keys\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b--\r\n`));
    expect(parseCommands(c.text).commands).toEqual([{ name: 'replace-key' }]);
    expect(c.keys).toEqual([KEY]);
  });

  it('quoted-printable text, a legacy display part before the commands, and HTML-only bodies', async () => {
    const qp = await readContent(enc('Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx-delivery=20inline\r\n'));
    expect(parseCommands(qp.text).commands).toEqual([{ name: 'delivery', form: 'inline' }]);
    const legacy = await readContent(enc('Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\nSubject: hi\r\n\r\nSubject: hi\r\n\r\nx-help\r\n'));
    expect(parseCommands(legacy.text).commands).toEqual([{ name: 'help' }]);
    const html = await readContent(enc('Content-Type: text/html\r\n\r\n<div>x-list-members</div><div>x-help</div>'));
    expect(parseCommands(html.text).commands.map((c) => c.name)).toEqual(['list-members', 'help']);
  });

  it('RFC 3156 §6.1: the first part of a multipart/signed holds the commands', async () => {
    const c = await readContent(enc('Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nx-fetch-keys\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nabc\r\n-----END PGP SIGNATURE-----\r\n--s--\r\n'));
    expect(parseCommands(c.text).commands).toEqual([{ name: 'fetch-keys' }]);
  });
});
