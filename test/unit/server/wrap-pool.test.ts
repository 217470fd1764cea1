// The wrap step on worker threads: PKESKs made on the pool unwrap to K with the
// member's key (in order, across slices), a key that cannot be wrapped comes
// back as an empty slot (a notice, not a failed page), small pages stay on the
// main thread, and a fan-out run through the pool queues exactly the copies the
// single-thread path does.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, generateSessionKey, KeyIdentity, parsePrivateKey, readPublicKey, seal as sealPackets, unlockPrivateKey, utf8, wrapMany } from '../../../shared/index.ts';
import { archivePost } from '../../../server/archive/archive.ts';
import { listKeyCache } from '../../../server/app.ts';
import { createList } from '../../../server/lists/lists.ts';
import { silentLog } from '../../../server/log/log.ts';
import { WrapPool } from '../../../server/pipeline/wrap-pool.ts';
import { Fanout, wrapPage } from '../../../server/pipeline/wrap.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { upsertMember, type MemberRecord } from '../../../server/store/members.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-wrappool-'));
const pool = new WrapPool({ threads: 2, minPerThread: 4 });
const members: Array<{ identity: KeyIdentity; packet: Uint8Array; fpr: string; armored: string }> = [];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const g = await generateKey({ kind: 'subscriber', address: `k${i}@x.test`, passphrase: 'p' });
    const priv = await unlockPrivateKey(await parsePrivateKey(g.privateKeyArmored), 'p');
    const { key } = await readPublicKey(g.publicKeyArmored);
    members.push({ identity: new KeyIdentity(priv), packet: (await key.getEncryptionKey()).keyPacket.write(), fpr: g.facts.fingerprint, armored: g.publicKeyArmored });
  }
}, 60_000);
afterAll(async () => {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('WrapPool', () => {
  it('wraps K to every packet, in order, across slices; a bad packet is an empty slot', async () => {
    const k = generateSessionKey();
    const before = Buffer.from(k.data);
    const packets = Array.from({ length: 41 }, (_, i) => (i === 17 ? new Uint8Array([1, 2, 3]) : members[i % 3]!.packet));
    const out = await pool.wrap(k, packets);
    expect(out).toHaveLength(41);
    expect(out[17]).toBeNull();
    // The caller's K is untouched: only the copy moved to a worker is zeroed there.
    expect(Buffer.from(k.data).equals(before)).toBe(true);
    for (let i = 0; i < 41; i++) {
      if (i === 17) continue;
      const got = await members[i % 3]!.identity.unwrap(out[i]!);
      expect(Buffer.from(got.data).equals(before)).toBe(true);
    }
  }, 60_000);

  it('refuses a session key that is not AES-256', async () => {
    await expect(pool.wrap({ data: new Uint8Array(16), algorithm: 'aes256' }, [members[0]!.packet])).rejects.toThrow();
  });

  it('a P-256 key goes through the openpgp.js path on the worker too', async () => {
    const { publicKey, privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'nistP256', userIDs: [{ email: 'p@x.test' }], format: 'object' });
    const k = generateSessionKey();
    const packets = [...Array.from({ length: 8 }, () => members[0]!.packet), (await publicKey.getEncryptionKey()).keyPacket.write()];
    const out = await pool.wrap(k, packets);
    const got = await new KeyIdentity(privateKey).unwrap(out[8]!);
    expect(Buffer.from(got.data).equals(Buffer.from(k.data))).toBe(true);
  }, 60_000);

  it('wrapPage: pages below the threshold stay on the main thread, larger ones go to the pool, same result shape', async () => {
    const now = Date.now();
    const page = (n: number): MemberRecord[] => Array.from({ length: n }, (_, i) => ({
      address: `m${String(i).padStart(3, '0')}@x.test`, fingerprint: members[i % 3]!.fpr, encryptionKey: i === 2 ? new Uint8Array([9]) : members[i % 3]!.packet,
      expiresAt: i === 1 ? now - 1 : null, keyState: i === 0 ? 'revoked' : 'valid',
    }) as unknown as MemberRecord);
    expect(pool.worthIt(7)).toBe(false);
    expect(pool.worthIt(8)).toBe(true);
    for (const n of [5, 30]) {
      const k = generateSessionKey();
      const w = await wrapPage(k, page(n), now, pool);
      expect(w.missed.map((m) => `${m.rcpt}:${m.code}`).sort()).toEqual(['m000@x.test:KEY_REVOKED', 'm001@x.test:KEY_EXPIRED', 'm002@x.test:KEY_NO_ENCRYPTION']);
      expect(w.copies).toHaveLength(n - 3);
      expect(w.last).toBe(`m${String(n - 1).padStart(3, '0')}@x.test`);
      for (const c of w.copies) {
        const i = Number(c.rcpt.slice(1, 4));
        expect(Buffer.from((await members[i % 3]!.identity.unwrap(c.pkesk)).data).equals(Buffer.from(k.data))).toBe(true);
      }
    }
  }, 60_000);

  for (const [name, failing] of [['through the pool', false], ['whose pool fails (a dead or stuck thread)', true]] as const) it(`a fan-out ${name} queues one copy per member, in order`, async () => {
    const SECRET = 'unit-test-secret-0123456789';
    const sql = await openTestSql(join(dir, `p${failing ? 'f' : ''}.db`));
    const queue = new QueueStore(sql);
    const list = await createList(sql, SECRET, 'p@lists.test', { maxBytes: 100_000 });
    await sql.tx(async () => {
      for (let i = 0; i < 95; i++) {
        const m = members[i % 3]!;
        await upsertMember(sql, { listId: list.id, address: `m${String(i).padStart(2, '0')}@x.test`, fingerprint: m.fpr, publicKey: m.armored, encryptionKey: m.packet, expiresAt: null, keyState: 'valid' });
      }
    });
    const keysFor = listKeyCache(SECRET);
    const keys = await keysFor(list);
    const sealed = await sealPackets(utf8('inner packets'));
    const [archivePkesk, listPkesk] = await wrapMany(sealed.sessionKey, [keys.archive, keys.listRecipient]);
    const postId = await archivePost(sql, { listId: list.id, messageId: '<p@x>', inReplyTo: null, references: [], date: null, size: sealed.body.length, body: sealed.body, archivePkesk: archivePkesk!, listPkesk: listPkesk! });
    // A failing pool: the page is wrapped on the main thread instead (wrapEach).
    const broken = { worthIt: () => true, wrap: () => Promise.reject(Object.assign(new Error('worker gone'), { name: 'AbortError' })) } as unknown as WrapPool;
    const fanout = new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 20, wrapPool: failing ? broken : pool });
    expect(await fanout.run(postId, { data: new Uint8Array(sealed.sessionKey.data), algorithm: 'aes256' })).toEqual({ copies: 95, notices: 0 });
    const rows = (await sql.all("SELECT rcpt, pkesk FROM deliveries WHERE post_id = ? AND kind = 'copy' ORDER BY id", [postId])) as Array<{ rcpt: string; pkesk: Buffer }>;
    expect(rows.map((r) => r.rcpt)).toEqual(Array.from({ length: 95 }, (_, i) => `m${String(i).padStart(2, '0')}@x.test`));
    for (const [i, r] of rows.entries()) {
      expect(Buffer.from((await members[i % 3]!.identity.unwrap(new Uint8Array(r.pkesk))).data).equals(Buffer.from(sealed.sessionKey.data))).toBe(true);
    }
    await sql.close();
  }, 120_000);
});
