// Hostile inputs to open: each must be refused with its own error code, quickly
// (each test has a 10 s budget where a hang or a blow-up would show) and
// without crashing the process or accepting altered content.

import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  armorMessage, buildInlineMail, buildPgpMimeMail, composePost, concatBytes, DEFAULT_OPEN_LIMITS, equalBytes,
  isLetterlockError, KeyRecipient, openPost, seal, type ErrorCode, type OpenedPost,
} from '../../../shared/index.ts';
import { compressionBomb, encryptPackets, legacyUnprotected, literalPacket } from '../../support/craft.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../../support/keys.ts';

let list: TestKey, alice: TestKey, stranger: TestKey, mallory: TestKey;
let good: { armored: string; mail: string; opened: OpenedPost };

const mailFor = (bytes: Uint8Array) => buildPgpMimeMail([['From', 'alice@example.org']], armorMessage(bytes));
const open = (mail: string | Uint8Array, extra: Partial<Parameters<typeof openPost>[1]> = {}) =>
  openPost(mail, { listKey: list.privateKey, memberKeys: [alice.publicKey], ...extra });

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'accepted' | unknown> {
  const e = await p.then(() => 'accepted', (x: unknown) => x);
  return isLetterlockError(e) ? e.code : e;
}

beforeAll(async () => {
  [list, alice, stranger, mallory] = await Promise.all([
    makeKey(LIST_ADDRESS, 'list'), makeKey('alice@example.org'), makeKey('stranger@example.org'), makeKey('mallory@example.org'),
  ]);
  const post = await composePost({
    message: { subject: 'hostile base', from: { address: 'alice@example.org' }, to: [{ address: LIST_ADDRESS }], text: 'x'.repeat(2000) },
    senderKey: alice.privateKey, listKey: list.publicKey,
  });
  good = { armored: post.armored, mail: post.pgpMime, opened: await open(post.pgpMime) };
});

async function goodBytes(): Promise<Uint8Array> {
  const bytes = (await openpgp.unarmor(good.armored)).data as Uint8Array;
  expect(bytes).toBeInstanceOf(Uint8Array);
  expect(bytes.length).toBeGreaterThan(1000);
  return bytes;
}

describe('hostile inputs to open', { timeout: 10_000 }, () => {
  it('truncated messages: every cut is refused with a code', async () => {
    const bytes = await goodBytes();
    const codes = new Set<unknown>();
    let tried = 0;
    for (let cut = 1; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 60))) {
      codes.add(await codeOf(open(mailFor(bytes.subarray(0, cut)))));
      tried++;
    }
    expect(tried).toBeGreaterThanOrEqual(60);
    expect(codes.has('accepted')).toBe(false);
    for (const c of codes) expect(['OPENPGP_MALFORMED', 'DECRYPTION_FAILED', 'NOT_ENCRYPTED', 'WRONG_KEY']).toContain(c);
  });

  it('truncated armor (cut mid-block) is refused', async () => {
    const cut = good.mail.slice(0, Math.floor(good.mail.length * 0.7));
    expect(['NO_PAYLOAD', 'OPENPGP_MALFORMED']).toContain(await codeOf(open(cut)));
  });

  it('bit-flipped messages: refused with a code, or (flip in an unused part) opened unchanged', async () => {
    const bytes = await goodBytes();
    let refused = 0;
    for (let i = 0; i < 120; i++) {
      const flipped = bytes.slice();
      const pos = Math.floor((i / 120) * bytes.length);
      flipped[pos]! ^= 1 << (i % 8);
      const result = await open(mailFor(flipped)).then((o) => o, (e: unknown) => e);
      if (isLetterlockError(result)) {
        refused++;
        expect(['OPENPGP_MALFORMED', 'DECRYPTION_FAILED', 'WRONG_KEY', 'NOT_ENCRYPTED', 'BAD_SIGNATURE', 'UNSIGNED', 'SIGNER_UNKNOWN', 'TOO_MANY_PACKETS', 'MULTIPLE_PAYLOADS']).toContain(result.code);
      } else {
        // Only a flip in a part the list does not read (the sender's own PKESK) may pass, and then nothing changed.
        expect(result).not.toBeInstanceOf(Error);
        const opened = result as OpenedPost;
        expect(equalBytes(opened.innerPackets, good.opened.innerPackets)).toBe(true);
        expect(opened.verification.valid).toBe(true);
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('DECOMPRESSED_TOO_LARGE: a compression bomb (200 MB of zeros in ~200 KB)', async () => {
    const bomb = compressionBomb(200 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(DEFAULT_OPEN_LIMITS.maxMessageBytes / 10);
    const mail = mailFor(await encryptPackets(bomb, list.publicKey));
    const before = process.memoryUsage().rss;
    expect(await codeOf(open(mail))).toBe('DECOMPRESSED_TOO_LARGE');
    // The limit stops decompression; memory does not grow by the bomb's full size.
    expect(process.memoryUsage().rss - before).toBeLessThan(180 * 1024 * 1024);
  });

  it('a lower decompression limit is honoured too', async () => {
    const mail = mailFor(await encryptPackets(compressionBomb(2 * 1024 * 1024), list.publicKey));
    expect(await codeOf(open(mail, { limits: { maxDecompressedBytes: 1024 * 1024 } }))).toBe('DECOMPRESSED_TOO_LARGE');
  });

  it('LEGACY_UNPROTECTED: encryption without integrity protection (SED, tag 9)', async () => {
    const mail = mailFor(await legacyUnprotected(literalPacket(new TextEncoder().encode('old style')), list.publicKey));
    expect(await codeOf(open(mail))).toBe('LEGACY_UNPROTECTED');
  });

  it('WRONG_KEY: a post encrypted to another key', async () => {
    const post = await composePost({
      message: { subject: 's', from: { address: 'alice@example.org' }, to: [{ address: LIST_ADDRESS }], text: 't' },
      senderKey: alice.privateKey, listKey: stranger.publicKey,
    });
    expect(await codeOf(open(post.pgpMime))).toBe('WRONG_KEY');
  });

  it('WRONG_KEY: a post encrypted only with a password', async () => {
    const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'x' }), passwords: 'pw' });
    expect(await codeOf(open(buildPgpMimeMail([['From', 'a@example.org']], armored as string)))).toBe('WRONG_KEY');
  });

  it('SIGNER_UNKNOWN: a signature by a key outside the given set', async () => {
    const post = await composePost({
      message: { subject: 's', from: { address: 'alice@example.org' }, to: [{ address: LIST_ADDRESS }], text: 'forged' },
      senderKey: mallory.privateKey, listKey: list.publicKey,
    });
    expect(await codeOf(open(post.pgpMime))).toBe('SIGNER_UNKNOWN');
  });

  it('MULTIPLE_PAYLOADS: two encrypted blocks in one post, and two encrypted packets in one message', async () => {
    const twoBlocks = buildInlineMail([['From', 'alice@example.org']], `${good.armored}\n${good.armored}`);
    expect(await codeOf(open(twoBlocks))).toBe('MULTIPLE_PAYLOADS');
    const sealed = await seal(literalPacket(new Uint8Array([1])));
    const pkesk = await (await KeyRecipient.fromPublicKey(list.publicKey)).wrap(sealed.sessionKey);
    expect(await codeOf(open(mailFor(concatBytes([pkesk, sealed.body, sealed.body]))))).toBe('MULTIPLE_PAYLOADS');
  });

  it('NOT_ENCRYPTED: a signed but unencrypted OpenPGP message', async () => {
    const signed = await openpgp.sign({ message: await openpgp.createMessage({ text: 'hi' }), signingKeys: alice.privateKey, format: 'binary' });
    expect(await codeOf(open(mailFor(signed as Uint8Array)))).toBe('NOT_ENCRYPTED');
  });

  it('TOO_MANY_PACKETS: an unreasonable number of session-key packets', async () => {
    const sealed = await seal(literalPacket(new Uint8Array([1])));
    const pkesk = await (await KeyRecipient.fromPublicKey(list.publicKey)).wrap(sealed.sessionKey);
    const many = concatBytes([...Array.from({ length: DEFAULT_OPEN_LIMITS.maxPackets + 1 }, () => pkesk), sealed.body]);
    expect(await codeOf(open(mailFor(many)))).toBe('TOO_MANY_PACKETS');
  });

  it('TOO_MANY_PACKETS: too many packets inside the encryption', async () => {
    const many = concatBytes(Array.from({ length: DEFAULT_OPEN_LIMITS.maxPackets + 1 }, () => literalPacket(new Uint8Array([1]))));
    const code = await codeOf(open(mailFor(await encryptPackets(many, list.publicKey))));
    // openpgp's grammar check may see the shape first; either refusal is specific and safe.
    expect(['TOO_MANY_PACKETS', 'OPENPGP_MALFORMED']).toContain(code);
  });

  it('TOO_LARGE: a message over the size limit', async () => {
    expect(await codeOf(open(good.mail, { limits: { maxMessageBytes: 1000 } }))).toBe('TOO_LARGE');
  });

  it('garbage and empty input are refused, not crashed on', async () => {
    expect(await codeOf(open(''))).toBe('NO_PAYLOAD');
    expect(await codeOf(open(new Uint8Array(5000).fill(0xff)))).toBe('NO_PAYLOAD');
    expect(await codeOf(open(mailFor(new Uint8Array(300).fill(0xc1))))).toBe('OPENPGP_MALFORMED');
  });

  it('after all of the above, a good post still opens', async () => {
    const opened = await open(good.mail);
    expect(opened.verification.valid).toBe(true);
  });
});
