// The moderation API's pieces without a server: re-wrapping a held post's key to
// a moderator (binary and armored payloads, SEIPD v1 and v2, and damaged ones),
// finding the encrypted data packet (never throws, whatever the bytes), and the
// statements (each kind parses only as itself).

import fc from 'fast-check';
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decisionStatement, loginStatement, moderationLoginStatement, parseModerationStatement, parseStatement, requestStatement } from '../../../shared/index.ts';
import { ApiFailure } from '../../../server/http/errors.ts';
import { encryptedDataOf, ModerationAccess, rewrapHeld } from '../../../server/moderation/access.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { insertHeld, type HeldRecord } from '../../../server/store/held.ts';
import { getListById } from '../../../server/store/lists.ts';
import { makeKey, type TestKey } from '../../support/keys.ts';
import { openTestSql } from '../../support/test-store.ts';

let list: TestKey, moderator: TestKey, sender: TestKey, other: TestKey;

beforeAll(async () => {
  [list, moderator, sender, other] = await Promise.all([makeKey('list@lists.test', 'list'), makeKey('mod@example.org'), makeKey('sender@example.org'), makeKey('other@example.org')]);
});

function held(payload: string | Uint8Array): HeldRecord {
  return { id: 7, listId: 1, sender: sender.address, envelopeFrom: sender.address, payload, outer: {} as HeldRecord['outer'], size: 1, reason: 'moderated', receivedAt: 0 };
}

async function post(text: string, format: 'binary' | 'armored'): Promise<string | Uint8Array> {
  const message = await openpgp.createMessage({ text });
  // To the list and the sender's own key, signed: as the extension and mail programs send.
  const options = { message, encryptionKeys: [list.publicKey, sender.publicKey], signingKeys: sender.privateKey };
  return format === 'binary' ? openpgp.encrypt({ ...options, format: 'binary' }) : openpgp.encrypt({ ...options, format: 'armored' });
}

async function readAs(key: TestKey, r: { wrappedKey: Uint8Array; body: Uint8Array }): Promise<string> {
  const message = await openpgp.readMessage({ binaryMessage: new Uint8Array([...r.wrappedKey, ...r.body]) });
  const out = await openpgp.decrypt({ message, decryptionKeys: key.privateKey, verificationKeys: sender.publicKey, expectSigned: true });
  return String(out.data);
}

describe('rewrapHeld', () => {
  it('gives the moderator a PKESK for the held post\'s own session key; the body is the sender\'s packet unchanged', async () => {
    for (const format of ['binary', 'armored'] as const) {
      const payload = await post(`hello ${format}`, format);
      const r = await rewrapHeld(held(payload), list.privateKey, moderator.publicKey);
      expect(await readAs(moderator, r)).toBe(`hello ${format}`);
      // One PKESK, and not to anyone else.
      await expect(readAs(other, r)).rejects.toThrow();
      const bytes = typeof payload === 'string' ? (await openpgp.unarmor(payload)).data as Uint8Array : payload;
      expect(Buffer.from(bytes).subarray(bytes.length - r.body.length).equals(Buffer.from(r.body))).toBe(true);
    }
  });

  it('works for SEIPD v2 (AEAD) posts too: the PKESK is of the version the data needs', async () => {
    // A list key that asks for SEIPD v2 (a v6 key, RFC 9580).
    const v6 = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ email: 'v6@lists.test' }], format: 'object', config: { v6Keys: true, aeadProtect: true } });
    const payload = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: 'hello v2' }), encryptionKeys: v6.publicKey, signingKeys: sender.privateKey, format: 'binary', config: { aeadProtect: true },
    });
    const r = await rewrapHeld(held(payload), v6.privateKey, moderator.publicKey);
    expect(r.body[0]! & 0x3f).toBe(18);
    // The version octet after the length: 2 (one length octet below 192 or a partial length, two from 192 to 223).
    const o1 = r.body[1]!;
    expect(r.body[o1 >= 192 && o1 < 224 ? 3 : 2]).toBe(2);
    expect(await readAs(moderator, r)).toBe('hello v2');
  });

  it('a payload the list key does not open, or damaged bytes, is a clear 422, never a crash', async () => {
    const notForList = await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'x' }), encryptionKeys: other.publicKey, format: 'binary' });
    for (const p of [notForList, new Uint8Array([1, 2, 3]), '-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n', new Uint8Array(0)]) {
      const e = await rewrapHeld(held(p as Uint8Array), list.privateKey, moderator.publicKey).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ApiFailure);
      expect((e as ApiFailure).status).toBe(422);
      expect((e as ApiFailure).message).not.toContain('x');
    }
  });
});

describe('held messages per answer', () => {
  it('stop before the byte bound (the first always goes); asking again for the rest gets them', async () => {
    const sql = await openTestSql(':memory:');
    try {
      const listId = Number((await sql.get<{ id: number }>(`INSERT INTO lists (address, owner, list_fingerprint, list_public, list_private, archive_fingerprint, archive_public, archive_private, max_bytes, created_at)
        VALUES ('l@lists.test', 'mod@example.org', 'F', 'P', 'S', 'AF', 'AP', 'AS', 100000, 0) RETURNING id`))!.id);
      const ids: number[] = [];
      for (const n of [1, 2, 3]) {
        const payload = await post(`post ${n} ${'x'.repeat(3000)}`, 'binary');
        ids.push(await insertHeld(sql, { listId, sender: sender.address, envelopeFrom: sender.address, payload, outer: { from: sender.address } as HeldRecord['outer'], size: 1, reason: 'moderated' }));
      }
      const size = (await post(`post 1 ${'x'.repeat(3000)}`, 'binary') as Uint8Array).byteLength;
      const access = new ModerationAccess({
        sql, publicUrl: 'https://lists.test', maxAnswerBytes: Math.floor(size * 1.5),
        keysFor: async () => ({ listKey: list.privateKey } as never),
      });
      const session = { list: (await getListById(sql, listId))!, address: moderator.address, fingerprint: moderator.fingerprint, publicKey: moderator.publicArmored };
      const first = await access.messages(session, ids);
      expect(first.map((m) => m.meta.id)).toEqual([ids[0]]);
      const rest = await access.messages(session, ids.slice(1));
      expect(rest.map((m) => m.meta.id)).toEqual([ids[1]]);
      const last = await access.messages(session, ids.slice(2));
      expect(last.map((m) => m.meta.id)).toEqual([ids[2]]);
      const r = last[0]!;
      expect(await readAs(moderator, { wrappedKey: Buffer.from(r.wrappedKey, 'base64'), body: Buffer.from(r.body, 'base64') })).toContain('post 3');
    } finally {
      await sql.close();
    }
  });
});

describe('encryptedDataOf', () => {
  it('skips session-key packets in both header formats and returns the data packet', () => {
    // Old-format PKESK (tag 1, one-octet length) of 3 bytes, then a new-format SEIPD.
    const old = new Uint8Array([0x84, 3, 9, 9, 9, 0xd2, 2, 1, 5]);
    expect([...encryptedDataOf(old)!]).toEqual([0xd2, 2, 1, 5]);
    // New-format PKESK with a two-octet length (200 bytes).
    const body = new Uint8Array(200);
    const newer = new Uint8Array([0xc1, 192, 8, ...body, 0xd2, 1, 1]);
    expect([...encryptedDataOf(newer)!]).toEqual([0xd2, 1, 1]);
  });

  it('refuses other shapes: no data packet, a literal packet, partial lengths on a session key, truncation', () => {
    expect(encryptedDataOf(new Uint8Array([0x84, 3, 9, 9, 9]))).toBeNull();
    expect(encryptedDataOf(new Uint8Array([0xcb, 1, 0]))).toBeNull();
    expect(encryptedDataOf(new Uint8Array([0xc1, 0xe0, 0]))).toBeNull();
    expect(encryptedDataOf(new Uint8Array([0x84, 50, 1]))).toBeNull();
    expect(encryptedDataOf(new Uint8Array([0x00]))).toBeNull();
  });

  it('never throws and never loops long, whatever the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => {
      const r = encryptedDataOf(b);
      return r === null || r.length <= b.length;
    }), { numRuns: 2000 });
  });
});

describe('statements', () => {
  const common = { server: 'https://lists.example', list: 'l@lists.example', address: 'm@example.org' };
  it('a decision and a moderator log-in parse only as themselves', () => {
    const decision = decisionStatement({ ...common, held: 3, action: 'approve', nonce: 'n'.repeat(32), date: '2026-01-01T00:00:00.000Z' });
    const login = moderationLoginStatement({ ...common, challengeId: 'c', expiresAt: 'e' });
    expect(parseModerationStatement(decision, 'moderate')).toMatchObject({ held: '3', action: 'approve', list: common.list });
    expect(parseModerationStatement(decision, 'moderate-login')).toBeNull();
    expect(parseModerationStatement(login, 'moderate')).toBeNull();
    expect(parseModerationStatement(login, 'moderate-login')).toMatchObject({ challenge: 'c' });
    // Neither is an archive log-in or a member's request, and those are not these.
    expect(() => parseStatement(decision)).toThrow();
    expect(() => parseStatement(login)).toThrow();
    expect(parseModerationStatement(loginStatement({ ...common, challengeId: 'c', expiresAt: 'e' }), 'moderate-login')).toBeNull();
    expect(parseModerationStatement(requestStatement({ ...common, action: 'unsubscribe', nonce: 'n', date: 'd' }), 'moderate')).toBeNull();
  });

  it('refuses repeated fields, line breaks in values, and oversized text', () => {
    expect(parseModerationStatement('letterlock-moderate: v1\nheld: 1\nheld: 2\n', 'moderate')).toBeNull();
    expect(() => decisionStatement({ ...common, list: 'a\nheld: 9', held: 1, action: 'reject', nonce: 'n', date: 'd' })).toThrow();
    expect(parseModerationStatement(`letterlock-moderate: v1\n${'x: y\n'.repeat(2000)}`, 'moderate')).toBeNull();
  });
});
