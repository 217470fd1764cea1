import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  composePost, encryptInner, buildInnerMessage, buildPgpMimeMail, isLetterlockError, openPost, PLACEHOLDER_SUBJECT,
  readMail, type ErrorCode,
} from '../../../shared/index.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../../support/keys.ts';

let list: TestKey, alice: TestKey, bob: TestKey, mallory: TestKey;

beforeAll(async () => {
  [list, alice, bob, mallory] = await Promise.all([
    makeKey(LIST_ADDRESS, 'list'), makeKey('alice@example.org'), makeKey('bob@example.org'), makeKey('mallory@example.org'),
  ]);
});

const message = (text = 'Hello list', subject = 'Plans for Tuesday') => ({
  subject, from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: LIST_ADDRESS }], text,
});

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | unknown> {
  const e = await p.then(() => null, (x: unknown) => x);
  return isLetterlockError(e) ? e.code : e;
}

describe('compose (sender side)', () => {
  it('makes one message, signed, encrypted to the list key and the sender, with a placeholder outer subject', async () => {
    const post = await composePost({ message: message('secret words', 'Secret subject'), senderKey: alice.privateKey, listKey: list.publicKey });
    for (const form of [post.pgpMime, post.inline]) {
      expect(form).toMatch(new RegExp(`^Subject: \\.\\.\\.\\r$`, 'm'));
      expect(form).not.toContain('Secret subject');
      expect(form).not.toContain('secret words');
    }
    expect(PLACEHOLDER_SUBJECT).toBe('...');
    expect(post.pgpMime).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";');
    expect(post.inline).toContain('Content-Type: text/plain');
    const m = await openpgp.readMessage({ armoredMessage: post.armored });
    const ids = m.getEncryptionKeyIDs().map((k) => k.toHex());
    const expected = await Promise.all([list, alice].map(async (k) => (await k.publicKey.getEncryptionKey()).getKeyID().toHex()));
    expect(ids.sort()).toEqual(expected.sort());
    // The Sent copy stays readable by the sender, with her own signature.
    const own = await readMail(post.pgpMime, { privateKey: alice.privateKey, senderKeys: [alice.publicKey] });
    expect(own.message.subject).toBe('Secret subject');
    expect(own.verification.valid).toBe(true);
  });
});

describe('open (list side)', () => {
  it.each(['pgpMime', 'inline'] as const)('opens the %s form and verifies the member in From', async (form) => {
    const post = await composePost({ message: message(), senderKey: alice.privateKey, listKey: list.publicKey });
    const opened = await openPost(post[form], { listKey: list.privateKey, memberKeys: [bob.publicKey, alice.publicKey] });
    expect(opened.form).toBe(form === 'pgpMime' ? 'pgp-mime' : 'inline');
    expect(opened.verification).toMatchObject({ valid: true, signerFingerprint: alice.fingerprint });
    expect(opened.outer.from).toBe('alice@example.org');
    expect(opened.outer.messageId).toBe(post.messageId);
    // The inner packets are exactly what the sender signed: they parse as one
    // signed message whose literal data is the inner MIME entity.
    const inner = await openpgp.readMessage({ binaryMessage: opened.innerPackets });
    const verified = await openpgp.verify({ message: inner, verificationKeys: alice.publicKey, format: 'binary', expectSigned: true });
    expect(new TextDecoder().decode(verified.data as Uint8Array)).toContain('protected-headers="v1"');
  });

  it('returns why a signature does not verify when signatures are optional', async () => {
    const post = await composePost({ message: message(), senderKey: mallory.privateKey, listKey: list.publicKey });
    const opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [alice.publicKey], requireSignature: false });
    expect(opened.verification).toMatchObject({ valid: false, code: 'SIGNER_UNKNOWN' });
    expect(opened.innerPackets.length).toBeGreaterThan(0);
  });

  it('UNSIGNED: an encrypted but unsigned post', async () => {
    const inner = buildInnerMessage(message());
    const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: inner.bytes }), encryptionKeys: list.publicKey });
    const mail = buildPgpMimeMail([['From', 'alice@example.org']], armored as string);
    expect(await codeOf(openPost(mail, { listKey: list.privateKey, memberKeys: [alice.publicKey] }))).toBe('UNSIGNED');
    const optional = await openPost(mail, { listKey: list.privateKey, memberKeys: [alice.publicKey], requireSignature: false });
    expect(optional.verification).toMatchObject({ valid: false, code: 'UNSIGNED' });
  });

  it('BAD_SIGNATURE: a signature over other content', async () => {
    // Alice signs one text; the packets are then recombined with a different literal.
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ binary: new TextEncoder().encode('original') }), signingKeys: alice.privateKey, format: 'object' });
    const forged = await openpgp.createMessage({ binary: new TextEncoder().encode('tampered') });
    const packets = new openpgp.PacketList<openpgp.AnyPacket>();
    const [ops, , sig] = signed.packets;
    packets.push(ops!, forged.packets[0]!, sig!);
    const armored = await openpgp.encrypt({ message: new openpgp.Message(packets), encryptionKeys: list.publicKey });
    const mail = buildPgpMimeMail([['From', 'alice@example.org']], armored as string);
    expect(await codeOf(openPost(mail, { listKey: list.privateKey, memberKeys: [alice.publicKey] }))).toBe('BAD_SIGNATURE');
  });

  it('SIGNER_KEY_INVALID: a member key revoked (no reason given, so every signature is void)', async () => {
    const g = await openpgp.generateKey({ userIDs: [{ email: 'old@example.org' }], format: 'object' });
    const post = await composePost({ message: { ...message(), from: { address: 'old@example.org' } }, senderKey: g.privateKey, listKey: list.publicKey });
    const revoked = await openpgp.revokeKey({ key: g.privateKey, format: 'object' });
    expect(await codeOf(openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [revoked.publicKey] }))).toBe('SIGNER_KEY_INVALID');
  });

  it('a signature made before a key was retired stays valid (OpenPGP soft revocation)', async () => {
    const g = await openpgp.generateKey({ userIDs: [{ email: 'old@example.org' }], format: 'object' });
    const post = await composePost({ message: { ...message(), from: { address: 'old@example.org' } }, senderKey: g.privateKey, listKey: list.publicKey });
    const later = new Date(Date.now() + 2000);
    const retired = await openpgp.revokeKey({ key: g.privateKey, format: 'object', date: later, reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keyRetired } });
    const opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [retired.publicKey], date: new Date(later.getTime() + 1000) });
    expect(opened.verification.valid).toBe(true);
  });

  it('encryptInner is what composePost uses: one message to list and sender', async () => {
    const armored = await encryptInner(buildInnerMessage(message()).bytes, alice.privateKey, list.publicKey);
    const m = await openpgp.readMessage({ armoredMessage: armored });
    expect(m.getEncryptionKeyIDs()).toHaveLength(2);
  });
});

