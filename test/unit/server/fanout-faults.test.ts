// A fan-out page isolates its rows: a member row that cannot be made into a
// queue row (here a notice the header writer refuses, for a damaged address in
// the store) is reported to the owner with a content-free reason, every other
// member still gets a copy, and the post's fan-out finishes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { generateKey, seal as sealPackets, readPublicKey, utf8, wrapMany } from '../../../shared/index.ts';
import { archivePost } from '../../../server/archive/archive.ts';
import { listKeyCache } from '../../../server/app.ts';
import { createList } from '../../../server/lists/lists.ts';
import { silentLog } from '../../../server/log/log.ts';
import { ROW_FAILED } from '../../../server/pipeline/deliver.ts';
import { Fanout } from '../../../server/pipeline/wrap.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { upsertMember } from '../../../server/store/members.ts';
import { getWrapState } from '../../../server/store/posts.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { onPostgres, openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-fanout-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SECRET = 'unit-test-secret-0123456789';

// The bad row is an address with a NUL, which a PostgreSQL text column refuses at the
// member's insert already: the row-level fault this test arranges exists on SQLite only.
it.skipIf(onPostgres)('one row that cannot be queued is reported; the page and the post go on', async () => {
  const sql = await openTestSql(join(dir, 'f.db'));
  const queue = new QueueStore(sql);
  const list = await createList(sql, SECRET, 'f@lists.test', { maxBytes: 100_000 });
  const g = await generateKey({ kind: 'subscriber', address: 'm@x.test', passphrase: 'p' });
  const { key } = await readPublicKey(g.publicKeyArmored);
  const packet = (await key.getEncryptionKey()).keyPacket.write();
  const bad = 'm05\0bad@x.test'; // an expired member whose notice cannot be written
  const addresses = Array.from({ length: 12 }, (_, i) => (i === 5 ? bad : `m${String(i).padStart(2, '0')}@x.test`));
  await sql.tx(async () => {
    for (const address of addresses) {
      await upsertMember(sql, { listId: list.id, address, fingerprint: g.facts.fingerprint, publicKey: g.publicKeyArmored, encryptionKey: packet, expiresAt: address === bad ? Date.now() - 1 : null, keyState: 'valid' });
    }
  });
  const keysFor = listKeyCache(SECRET);
  const keys = await keysFor(list);
  const sealed = await sealPackets(utf8('inner packets'));
  const [archivePkesk, listPkesk] = await wrapMany(sealed.sessionKey, [keys.archive, keys.listRecipient]);
  const postId = await archivePost(sql, { listId: list.id, messageId: '<p@x>', inReplyTo: null, references: [], date: null, size: sealed.body.length, body: sealed.body, archivePkesk: archivePkesk!, listPkesk: listPkesk! });

  const result = await new Fanout({ sql, queue, log: silentLog, keysFor, pageSize: 5 }).run(postId);
  expect(result.copies).toBe(11);
  expect(await getWrapState(sql, postId)).toBeNull(); // finished
  const copies = (await sql.all("SELECT rcpt FROM deliveries WHERE post_id = ? AND kind = 'copy' ORDER BY rcpt", [postId])) as Array<{ rcpt: string }>;
  expect(copies.map((c) => c.rcpt)).toEqual(addresses.filter((a) => a !== bad));
  const reports = (await sql.all('SELECT rcpt, reason FROM owner_reports WHERE post_id = ?', [postId])) as Array<{ rcpt: string; reason: string }>;
  expect(reports).toEqual([{ rcpt: bad, reason: ROW_FAILED }]);
  await sql.close();
});
