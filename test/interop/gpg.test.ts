// Interoperability with the real GnuPG 2.2 binary, in both directions. Nothing is
// faked: keys, posts and decryptions on the gpg side are made by /usr/bin/gpg.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleCopy, buildCopyMail, buildInlineMail, buildInnerMessage, buildPgpMimeMail, composePost, equalBytes, fromUtf8,
  isLetterlockError, KeyIdentity, KeyRecipient, openPost, parseInner, readMail, readPublicKey, rewrap, seal, wrapMany,
  type OpenedPost,
} from '../../shared/index.ts';
import { splitPackets } from '../support/craft.ts';
import { Gpg } from '../support/gpg.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../support/keys.ts';

let gpg: Gpg;
let list: TestKey, archive: TestKey, alice: TestKey, bob: TestKey;
let dave: { publicKey: string; secretKey: string; fingerprint: string };

beforeAll(async () => {
  gpg = new Gpg();
  [list, archive, alice, bob] = await Promise.all([
    makeKey(LIST_ADDRESS, 'list'), makeKey(LIST_ADDRESS, 'archive'), makeKey('alice@example.org', 'subscriber', 'Alice'), makeKey('bob@example.org', 'subscriber', 'Bob'),
  ]);
  dave = await gpg.generateKey('Dave', 'dave@example.org', 'dave-pass');
  await gpg.importKey(list.publicArmored);
  await gpg.importKey(alice.publicArmored);
}, 60_000);

afterAll(() => gpg.cleanup());

const SUBJECT = 'Protected: Grüße aus GnuPG ✓';

describe('GnuPG → Letterlock', () => {
  it('a PGP/MIME post made by `gpg --sign --encrypt` is opened and verified by shared/', async () => {
    const inner = buildInnerMessage({ subject: SUBJECT, from: { address: 'dave@example.org', name: 'Dave' }, to: [{ address: LIST_ADDRESS }], text: 'Written with gpg.\n' });
    const encrypted = await gpg.mustRun(
      ['--armor', '--sign', '--encrypt', '--compress-algo', 'zlib', '--local-user', dave.fingerprint, '--recipient', list.fingerprint, '--recipient', dave.fingerprint],
      inner.bytes, 'dave-pass',
    );
    const mail = buildPgpMimeMail([['From', 'Dave <dave@example.org>'], ['To', `<${LIST_ADDRESS}>`], ['Subject', '...']], encrypted.stdout.toString());

    const { key: daveKey, facts } = await readPublicKey(dave.publicKey, { expectedAddress: 'dave@example.org' });
    expect(facts.fingerprint).toBe(dave.fingerprint);
    const opened = await openPost(mail, { listKey: list.privateKey, memberKeys: [alice.publicKey, daveKey] });
    expect(opened.verification).toMatchObject({ valid: true, signerFingerprint: dave.fingerprint });

    // The inner packets are what gpg itself finds under the encryption (`--unwrap`):
    // the same packets with the same bodies byte for byte (gpg compressed them; the
    // compressed data is kept as is). Only length headers may be re-encoded.
    await gpg.importKey(list.privateArmored, list.passphrase);
    const unwrapped = await gpg.mustRun(['--decrypt', '--unwrap'], encrypted.stdout, list.passphrase);
    const ours = splitPackets(opened.innerPackets);
    const theirs = splitPackets(new Uint8Array(unwrapped.stdout));
    expect(ours.map((p) => p.tag)).toEqual(theirs.map((p) => p.tag));
    expect(ours.map((p) => p.tag)).toContain(8); // compressed, as gpg sent it
    ours.forEach((p, i) => expect(equalBytes(p.body, theirs[i]!.body)).toBe(true));

    // And the list's sealed copy carries Dave's signature through to a subscriber.
    const read = await sealAndRead(opened, bob, [daveKey]);
    expect(read.message.subject).toBe(SUBJECT);
    expect(read.verification).toMatchObject({ valid: true, signerFingerprint: dave.fingerprint });
  });

  it('an inline post from gpg (plain text, not MIME) is opened, and reads as text', async () => {
    const encrypted = await gpg.mustRun(
      ['--armor', '--sign', '--encrypt', '--textmode', '--local-user', dave.fingerprint, '--recipient', list.fingerprint],
      'Plain inline text from gpg.\n', 'dave-pass',
    );
    const mail = buildInlineMail([['From', 'dave@example.org'], ['Subject', 'typed in webmail']], encrypted.stdout.toString());
    const { key: daveKey } = await readPublicKey(dave.publicKey);
    const opened = await openPost(mail, { listKey: list.privateKey, memberKeys: [daveKey] });
    expect(opened.form).toBe('inline');
    const read = await sealAndRead(opened, bob, [daveKey]);
    expect(read.message.isMime).toBe(false);
    expect(read.message.text?.replace(/\r\n/g, '\n')).toBe('Plain inline text from gpg.\n');
    expect(read.verification.valid).toBe(true);
  });
});

describe('GnuPG → Letterlock, RFC 3156 §6.1 (sign, then encrypt, as gpgme clients do)', () => {
  /** A multipart/signed entity as Evolution, KMail and Mutt make it: a detached gpg signature over the first part's exact bytes. */
  async function mimeSigned(protectedHeaders: boolean, lineEnd: '\r\n' | '\n'): Promise<Uint8Array> {
    const b = 'gpgme-signed-boundary';
    const part = [
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Signed first, then encrypted. Gr\xfc\xdfe (8-bit latin-1).',
      '',
    ].join('\r\n');
    const partBytes = Uint8Array.from(part, (c) => c.charCodeAt(0));
    const sig = (await gpg.mustRun(['--armor', '--detach-sign', '--digest-algo', 'SHA256', '--local-user', dave.fingerprint], partBytes, 'dave-pass')).stdout.toString();
    const head = [
      `Content-Type: multipart/signed; micalg=pgp-sha256;${lineEnd} protocol="application/pgp-signature"; boundary="${b}"`,
      ...(protectedHeaders ? ['Subject: Protected §6.1 subject', 'From: Dave <dave@example.org>', `To: <${LIST_ADDRESS}>`] : []),
      'MIME-Version: 1.0',
    ].join(lineEnd);
    const text = `${head}${lineEnd}${lineEnd}This is an OpenPGP/MIME signed message (RFC 4880 and 3156)${lineEnd}--${b}${lineEnd}` +
      `${part.replace(/\r\n/g, lineEnd)}${lineEnd}--${b}${lineEnd}Content-Type: application/pgp-signature; name="signature.asc"${lineEnd}` +
      `Content-Description: OpenPGP digital signature${lineEnd}${lineEnd}${sig.replace(/\r?\n/g, lineEnd)}${lineEnd}--${b}--${lineEnd}`;
    return Uint8Array.from(text, (c) => c.charCodeAt(0));
  }

  for (const [name, protectedHeaders, lineEnd] of [['CRLF, protected headers', true, '\r\n'], ['LF, no protected headers', false, '\n']] as const) {
    it(`a multipart/signed encrypted by gpg (${name}) verifies by its detached signature; the sealed content is the signed entity whole`, async () => {
      const signed = await mimeSigned(protectedHeaders, lineEnd);
      const encrypted = await gpg.mustRun(['--armor', '--encrypt', '--recipient', list.fingerprint, '--recipient', dave.fingerprint], signed);
      const mail = buildPgpMimeMail([['From', 'Dave <dave@example.org>'], ['To', `<${LIST_ADDRESS}>`], ['Subject', '...']], encrypted.stdout.toString());
      const { key: daveKey } = await readPublicKey(dave.publicKey, { expectedAddress: 'dave@example.org' });
      const opened = await openPost(mail, { listKey: list.privateKey, memberKeys: [daveKey] });
      expect(opened.verification).toMatchObject({ valid: true, signerFingerprint: dave.fingerprint });
      // A reader of the copy gets the same multipart/signed and verifies the same signature.
      const copy = await seal(opened.innerPackets);
      const [pkesk] = await wrapMany(copy.sessionKey, [await KeyRecipient.fromPublicKey(bob.publicKey)]);
      const read = await readMail(buildCopyMail([['From', `<${LIST_ADDRESS}>`]], assembleCopy(pkesk!, copy.body)), { privateKey: bob.privateKey, senderKeys: [daveKey] });
      expect(read.verification).toMatchObject({ valid: true, signerFingerprint: dave.fingerprint });
      expect(equalBytes(read.content, signed)).toBe(true);
    });
  }

  it('a multipart/signed whose signed part was altered is BAD_SIGNATURE, not UNSIGNED', async () => {
    const signed = await mimeSigned(false, '\r\n');
    const text = Array.from(signed, (c) => String.fromCharCode(c)).join('').replace('Signed first', 'Signed LAST');
    const encrypted = await gpg.mustRun(['--armor', '--encrypt', '--recipient', list.fingerprint], Uint8Array.from(text, (c) => c.charCodeAt(0)));
    const mail = buildPgpMimeMail([['From', 'Dave <dave@example.org>'], ['To', `<${LIST_ADDRESS}>`]], encrypted.stdout.toString());
    const { key: daveKey } = await readPublicKey(dave.publicKey, { expectedAddress: 'dave@example.org' });
    const e = await openPost(mail, { listKey: list.privateKey, memberKeys: [daveKey] }).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'BAD_SIGNATURE')).toBe(true);
  });
});

describe('Letterlock → GnuPG', () => {
  it('a subscriber copy made by shared/ decrypts in gpg with a good signature by the original sender, and carries the protected subject', async () => {
    const bobGpg = new Gpg();
    try {
      await bobGpg.importKey(bob.privateArmored, bob.passphrase);
      await bobGpg.importKey(alice.publicArmored);
      const post = await composePost({
        message: { subject: SUBJECT, from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: LIST_ADDRESS }], text: 'To every subscriber.\n' },
        senderKey: alice.privateKey, listKey: list.publicKey,
      });
      const opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [alice.publicKey] });
      const sealed = await seal(opened.innerPackets);
      const [wrapped] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(bob.publicKey)]);
      const mail = buildCopyMail([['From', `<${LIST_ADDRESS}>`], ['To', '<bob@example.org>'], ['Subject', '...']], assembleCopy(wrapped!, sealed.body));

      const r = await bobGpg.mustRun(['--decrypt', bobGpg.file('copy.eml', mail)], undefined, bob.passphrase);
      const aliceKeyId = alice.fingerprint.slice(-16);
      expect(r.status.some((s) => s.startsWith(`GOODSIG ${aliceKeyId} Alice <alice@example.org>`))).toBe(true);
      expect(r.status.some((s) => s.startsWith('VALIDSIG ') && s.includes(alice.fingerprint))).toBe(true);
      expect(r.status).toContain('DECRYPTION_OKAY');
      expect(r.status.some((s) => s.startsWith('DECRYPTION_FAILED') || s.startsWith('BADSIG'))).toBe(false);
      const inner = await parseInner(new Uint8Array(r.stdout));
      expect(fromUtf8(new Uint8Array(r.stdout))).toMatch(/^Content-Type: multipart\/mixed;.*\r\n protected-headers="v1"/);
      expect(inner.subject).toBe(SUBJECT);
      expect(inner.text).toBe('To every subscriber.\n');
    } finally {
      bobGpg.cleanup();
    }
  });

  it('an archive record whose K was re-wrapped to a key that joined later (made by gpg) decrypts in gpg', async () => {
    const erinGpg = new Gpg();
    try {
      const erin = await erinGpg.generateKey('Erin', 'erin@example.org', 'erin-pass');
      await erinGpg.importKey(alice.publicArmored);
      const post = await composePost({
        message: { subject: SUBJECT, from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: LIST_ADDRESS }], text: 'Archived before Erin joined.\n' },
        senderKey: alice.privateKey, listKey: list.publicKey,
      });
      const opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [alice.publicKey] });
      const sealed = await seal(opened.innerPackets);
      const [toArchive] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(archive.publicKey)]);
      // Erin joins later: only the archive's wrapped key and the stored body are used.
      const { key: erinKey } = await readPublicKey(erin.publicKey, { expectedAddress: 'erin@example.org' });
      const forErin = await rewrap(toArchive!, new KeyIdentity(archive.privateKey), await KeyRecipient.fromPublicKey(erinKey));

      const r = await erinGpg.mustRun(['--decrypt'], assembleCopy(forErin, sealed.body), 'erin-pass');
      expect(r.status.some((s) => s.startsWith(`GOODSIG ${alice.fingerprint.slice(-16)}`))).toBe(true);
      expect((await parseInner(new Uint8Array(r.stdout))).subject).toBe(SUBJECT);
      // The archive's own wrapped key is not for Erin.
      const denied = await erinGpg.run(['--decrypt'], assembleCopy(toArchive!, sealed.body), 'erin-pass');
      expect(denied.code).not.toBe(0);
      expect(denied.status.some((s) => s.startsWith('NO_SECKEY'))).toBe(true);
    } finally {
      erinGpg.cleanup();
    }
  });
});

describe('key policy on keys made by gpg', () => {
  it.each([
    ['ed25519/cv25519', ['ed25519', 'cv25519'], null],
    ['NIST P-256', ['nistp256', 'nistp256'], null],
    ['RSA 3072', ['rsa3072', 'rsa3072'], null],
    ['brainpoolP256r1', ['brainpoolP256r1', 'brainpoolP256r1'], 'KEY_TOO_WEAK'],
    ['secp256k1', ['secp256k1', 'secp256k1'], 'KEY_TOO_WEAK'],
    ['RSA 1024', ['rsa1024', 'rsa1024'], 'KEY_TOO_WEAK'],
    ['DSA 2048 with ElGamal', ['dsa2048', 'elg2048'], 'KEY_TOO_WEAK'],
  ] as const)('%s', { timeout: 60_000 }, async (_name, [primary, sub], refusal) => {
    const g = new Gpg();
    try {
      const address = 'policy@example.org';
      const created = await g.mustRun(['--quick-generate-key', `Policy <${address}>`, primary, 'sign', '0'], undefined, 'pw');
      const fpr = /KEY_CREATED \w (\w+)/.exec(created.stderr)![1]!;
      await g.mustRun(['--quick-add-key', fpr, sub, 'encr', '0'], undefined, 'pw');
      const armored = (await g.mustRun(['--armor', '--export', fpr])).stdout.toString();
      const result = await readPublicKey(armored, { expectedAddress: address }).then((r) => r.facts, (e: unknown) => e);
      if (refusal === null) expect(result).toMatchObject({ fingerprint: fpr, addresses: [address] });
      else expect(isLetterlockError(result) ? result.code : result).toBe(refusal);
    } finally {
      g.cleanup();
    }
  });
});

async function sealAndRead(opened: OpenedPost, reader: TestKey, senderKeys: Parameters<typeof readMail>[1]['senderKeys']) {
  const sealed = await seal(opened.innerPackets);
  const [wrapped] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(reader.publicKey)]);
  const mail = buildCopyMail([['From', `<${LIST_ADDRESS}>`], ['To', `<${reader.address}>`], ['Subject', '...']], assembleCopy(wrapped!, sealed.body));
  return readMail(mail, { privateKey: reader.privateKey, senderKeys });
}
