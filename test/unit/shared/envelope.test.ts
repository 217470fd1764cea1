import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assembleCopy, buildCopyMail, composePost, equalBytes, generateSessionKey, isLetterlockError, KeyIdentity, KeyRecipient,
  openPost, parsePrivateKey, readMail, readMessage, rewrap, seal, wrapMany, type OpenedPost,
} from '../../../shared/index.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../../support/keys.ts';

let list: TestKey, archive: TestKey, alice: TestKey, subs: TestKey[], opened: OpenedPost;

beforeAll(async () => {
  [list, archive, alice, ...subs] = await Promise.all([
    makeKey(LIST_ADDRESS, 'list'), makeKey(LIST_ADDRESS, 'archive'), makeKey('alice@example.org'),
    ...Array.from({ length: 5 }, (_, i) => makeKey(`sub${i}@example.org`)),
  ]);
  const post = await composePost({
    message: { subject: 'Envelope', from: { address: 'alice@example.org' }, to: [{ address: LIST_ADDRESS }], text: 'sealed once' },
    senderKey: alice.privateKey, listKey: list.publicKey,
  });
  opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [alice.publicKey] });
});

function pkeskCount(bytes: Uint8Array): Promise<number> {
  return openpgp.readMessage({ binaryMessage: bytes }).then((m) => m.packets.filter((p) => (p.constructor as unknown as { tag: number }).tag === 1).length);
}

describe('seal', () => {
  it('encrypts the inner packets once, under a fresh 256-bit key each time', async () => {
    const a = await seal(opened.innerPackets);
    const b = await seal(opened.innerPackets);
    expect(a.sessionKey.data).toHaveLength(32);
    expect(equalBytes(a.sessionKey.data, b.sessionKey.data)).toBe(false);
    expect(equalBytes(a.body, b.body)).toBe(false);
    // One SEIPD v1 packet: tag 18 (new format header 0xD2), version byte 1.
    expect(a.body[0]).toBe(0xd2);
    const m = await openpgp.readMessage({ binaryMessage: a.body, config: { enforceGrammar: false } });
    expect(m.packets).toHaveLength(1);
    expect((m.packets[0] as unknown as { version: number }).version).toBe(1);
  });

  it('the body decrypts with K alone to exactly the sender-signed content', async () => {
    const { sessionKey, body } = await seal(opened.innerPackets);
    const m = await openpgp.readMessage({ binaryMessage: body, config: { enforceGrammar: false } });
    const out = await openpgp.decrypt({ message: m, sessionKeys: sessionKey, verificationKeys: alice.publicKey, expectSigned: true, format: 'binary' });
    expect(new TextDecoder().decode(out.data as Uint8Array)).toContain('protected-headers="v1"');
  });
});

describe('wrap and unwrap', () => {
  it('wrapMany returns one ~100-byte PKESK per recipient, in order, each only for its own key', async () => {
    const k = generateSessionKey();
    const recipients = await Promise.all(subs.map((s) => KeyRecipient.fromPublicKey(s.publicKey)));
    const wrapped = await wrapMany(k, recipients, { concurrency: 2 });
    expect(wrapped).toHaveLength(subs.length);
    for (const [i, w] of wrapped.entries()) {
      expect(w.length).toBeGreaterThan(80);
      expect(w.length).toBeLessThan(130);
      const unwrapped = await new KeyIdentity(subs[i]!.privateKey).unwrap(w);
      expect(equalBytes(unwrapped.data, k.data)).toBe(true);
      const other = subs[(i + 1) % subs.length]!;
      const e = await new KeyIdentity(other.privateKey).unwrap(w).catch((x: unknown) => x);
      expect(isLetterlockError(e, 'WRONG_KEY')).toBe(true);
    }
    expect(recipients.map((r) => r.fingerprint)).toEqual(subs.map((s) => s.fingerprint));
  });

  it('wrapMany of zero recipients is empty', async () => {
    expect(await wrapMany(generateSessionKey(), [])).toEqual([]);
  });

  it('refuses to build a recipient from a key that cannot encrypt', async () => {
    const g = await openpgp.generateKey({ userIDs: [{ email: 'x@example.org' }], subkeys: [], format: 'object' });
    const e = await KeyRecipient.fromPublicKey(g.publicKey).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'KEY_NO_ENCRYPTION')).toBe(true);
  });

  it('an identity needs an unlocked key, and refuses malformed wrapped keys', async () => {
    const locked = await parsePrivateKey(alice.privateArmored);
    expect(() => new KeyIdentity(locked)).toThrow(/unlocked/);
    const e = await new KeyIdentity(subs[0]!.privateKey).unwrap(new Uint8Array([1, 2, 3])).catch((x: unknown) => x);
    expect(isLetterlockError(e) && ['OPENPGP_MALFORMED', 'WRONG_KEY']).toContain((e as { code: string }).code);
  });
});

describe('copies', () => {
  it('a copy is PKESK ‖ body: one wrapped key only, so recipients never see each other', async () => {
    const { sessionKey, body } = await seal(opened.innerPackets);
    const recipients = await Promise.all(subs.map((s) => KeyRecipient.fromPublicKey(s.publicKey)));
    const wrapped = await wrapMany(sessionKey, recipients);
    for (const [i, w] of wrapped.entries()) {
      const copy = assembleCopy(w, body);
      expect(await pkeskCount(copy)).toBe(1);
      const read = await readMessage(copy, { privateKey: subs[i]!.privateKey, senderKeys: [alice.publicKey] });
      expect(read.message.subject).toBe('Envelope');
      expect(read.verification).toMatchObject({ valid: true, signerFingerprint: alice.fingerprint });
    }
  });

  it.each(['pgp-mime', 'inline'] as const)('builds a %s mail that the subscriber reads', async (form) => {
    const { sessionKey, body } = await seal(opened.innerPackets);
    const [w] = await wrapMany(sessionKey, [await KeyRecipient.fromPublicKey(subs[0]!.publicKey)]);
    const mail = buildCopyMail([['From', `<${LIST_ADDRESS}>`], ['To', '<sub0@example.org>'], ['Subject', '...'], ['List-Id', '<crypto.lists.example.org>']], assembleCopy(w!, body), form);
    expect(mail).toContain(form === 'inline' ? 'Content-Type: text/plain' : 'multipart/encrypted');
    const read = await readMail(mail, { privateKey: subs[0]!.privateKey, senderKeys: [alice.publicKey] });
    expect(read.message.text).toBe('sealed once');
  });

  it('archive: K wrapped to the archive key is re-wrapped to a member who joined later', async () => {
    const { sessionKey, body } = await seal(opened.innerPackets);
    const [toArchive] = await wrapMany(sessionKey, [await KeyRecipient.fromPublicKey(archive.publicKey)]);
    const late = await makeKey('late@example.org');
    const forLate = await rewrap(toArchive!, new KeyIdentity(archive.privateKey), await KeyRecipient.fromPublicKey(late.publicKey));
    const read = await readMessage(assembleCopy(forLate, body), { privateKey: late.privateKey, senderKeys: [alice.publicKey] });
    expect(read.message.subject).toBe('Envelope');
    expect(read.verification.valid).toBe(true);
    // The member cannot use the archive's wrapped key directly.
    const e = await readMessage(assembleCopy(toArchive!, body), { privateKey: late.privateKey, senderKeys: [] }).catch((x: unknown) => x);
    expect(isLetterlockError(e, 'WRONG_KEY')).toBe(true);
  });
});
