// The fan-out resumes after a crash: K is recovered from its wrap to the list key
// and wrapping continues after the last committed page, so every member gets
// exactly one queued copy.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { generateKey, KeyIdentity, seal as sealPackets, readPublicKey, utf8 } from '../../../shared/index.ts';
import { archivePost } from '../../../server/archive/archive.ts';
import { listKeyCache } from '../../../server/app.ts';
import { createList } from '../../../server/lists/lists.ts';
import { silentLog } from '../../../server/log/log.ts';
import { Fanout } from '../../../server/pipeline/wrap.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { upsertMember } from '../../../server/store/members.ts';
import { getWrapState } from '../../../server/store/posts.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { wrapMany } from '../../../shared/index.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-fanout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'unit-test-secret-0123456789';

async function postFor25(file: string) {
  const sql = await openTestSql(join(dir, file));
  const queue = new QueueStore(sql);
  const list = await createList(sql, SECRET, `${file}@lists.test`, { maxBytes: 100_000 });
  const g = await generateKey({ kind: 'subscriber', address: 'm@x.test', passphrase: 'p' });
  const { key } = await readPublicKey(g.publicKeyArmored);
  const packet = (await key.getEncryptionKey()).keyPacket.write();
  await sql.tx(async () => {
    for (let i = 0; i < 25; i++) await upsertMember(sql, { listId: list.id, address: `m${String(i).padStart(2, '0')}@x.test`, fingerprint: g.facts.fingerprint, publicKey: g.publicKeyArmored, encryptionKey: packet, expiresAt: i === 3 ? Date.now() - 1 : null, keyState: 'valid' });
  });
  const keysFor = listKeyCache(SECRET);
  const keys = await keysFor(list);
  const sealed = await sealPackets(utf8('inner packets'));
  const [archivePkesk, listPkesk] = await wrapMany(sealed.sessionKey, [keys.archive, keys.listRecipient]);
  const postId = await archivePost(sql, { listId: list.id, messageId: '<p@x>', inReplyTo: null, references: [], date: null, size: sealed.body.length, body: sealed.body, archivePkesk: archivePkesk!, listPkesk: listPkesk! });

  return { sql, queue, keysFor, keys, listPkesk, postId };
}

it('an interrupted fan-out resumes after the last committed page, without duplicates', async () => {
  const { sql, queue, keysFor, keys, listPkesk, postId } = await postFor25('f');
  // "Crash" after the second page is committed.
  let pages = 0;
  const crashing = new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 10, onQueued: () => { if (++pages === 2) throw new Error('crash'); } });
  await expect(crashing.run(postId)).rejects.toThrow('crash');
  expect((await getWrapState(sql, postId))!.wrapAfter).toBe('m19@x.test');

  const fresh = new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 10 });
  await fresh.resumeAll();
  expect(await getWrapState(sql, postId)).toBeNull(); // done, and K's wrap to the list key dropped
  const rows = (await sql.all('SELECT kind, rcpt, pkesk FROM deliveries WHERE post_id = ? ORDER BY rcpt', [postId])) as Array<{ kind: string; rcpt: string; pkesk: Buffer | null }>;
  expect(rows.map((r) => r.rcpt)).toEqual(Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, '0')}@x.test`));
  expect(rows.filter((r) => r.kind === 'notice').map((r) => r.rcpt)).toEqual(['m03@x.test']); // expired key: a notice
  // The resumed PKESKs wrap the same K: the list key recovers it from a copy row.
  const { listKey } = keys;
  const k = await new KeyIdentity(listKey).unwrap(new Uint8Array(listPkesk!));
  expect(Buffer.from(k.data).length).toBe(32);
  expect(((await sql.get('SELECT list_pkesk FROM posts WHERE id = ?', [postId])) as { list_pkesk: Buffer | null }).list_pkesk).toBeNull();
  await sql.close();
});

it("a fan-out left by another node id with its lease still running: on SQLite (one node) resumed at start; on PostgreSQL left to its node's lease", async () => {
  // The default node id is <hostname>:<smtp port>: a restart on another port is a
  // new id, and on SQLite there is no other node that could still be wrapping.
  const { sql, queue, keysFor, postId } = await postFor25('g');
  let pages = 0;
  const crashing = new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 10, nodeId: 'mx:2525', leaseMs: 600_000, onQueued: () => { if (++pages === 1) throw new Error('crash'); } });
  await expect(crashing.run(postId)).rejects.toThrow('crash');
  expect((await getWrapState(sql, postId))!.wrapAfter).toBe('m09@x.test');
  const restarted = new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 10, nodeId: 'mx:2600', leaseMs: 600_000 });
  await restarted.resumeAll();
  const queued = async () => ((await sql.get('SELECT count(*) AS n FROM deliveries WHERE post_id = ?', [postId])) as { n: number }).n;
  if (sql.dialect === 'postgres') {
    // Another node may be alive and wrapping it: not taken before its lease runs out...
    expect((await getWrapState(sql, postId))!.wrapAfter).toBe('m09@x.test');
    expect(Number(await queued())).toBe(10);
    // ...and that node itself, back under its id, takes its own fan-out back at once.
    await new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 10, nodeId: 'mx:2525', leaseMs: 600_000 }).resumeAll();
  }
  expect(await getWrapState(sql, postId)).toBeNull();
  expect(Number(await queued())).toBe(25);
  await sql.close();
});
