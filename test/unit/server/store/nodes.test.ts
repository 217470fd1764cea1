// Several nodes on one database, the parts below the server: a post's fan-out
// lease (claimWrap, the compare-and-set cursor, takeover after expiry) on both
// stores, and the wake-ups between nodes (LISTEN/NOTIFY) on a real PostgreSQL,
// including a listening connection that the server cuts.

import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { nodeId, parseConfig } from '../../../../server/config/config.ts';
import { advanceWrap, claimWrap, finishWrap, insertPost, releaseWrap, takeableWraps, WrapLeaseLost } from '../../../../server/store/posts.ts';
import { PgSql } from '../../../../server/store/sql-pg.ts';
import type { Sql } from '../../../../server/store/sql.ts';
import { notifyQueued, PgWakeups } from '../../../../server/store/wakeup.ts';
import { storeBackends, rejectionOf } from '../../../support/stores.ts';

const stores = storeBackends();

async function post(sql: Sql): Promise<number> {
  const list = await sql.get<{ id: number }>(`INSERT INTO lists (address, list_fingerprint, list_public, list_private, archive_fingerprint, archive_public, archive_private, max_bytes, created_at)
    VALUES (?, 'F', 'P', 'S', 'F', 'P', 'S', 1000, 0) RETURNING id`, [`l${Math.random()}@x.test`]);
  return insertPost(sql, { listId: Number(list!.id), messageId: null, inReplyTo: null, references: [], date: null, size: 1, body: new Uint8Array([1]),
    archivePkesk: new Uint8Array([2]), listPkesk: new Uint8Array([3]), display: null, bareText: false });
}


describe('node id and lease settings', () => {
  it('defaults to <hostname>:<smtp port>; bounded lengths and leases', () => {
    expect(nodeId(parseConfig({}, 'test'))).toBe(`${hostname()}:2525`);
    expect(nodeId(parseConfig({ smtp: { port: 2600 } }, 'test'))).toBe(`${hostname()}:2600`);
    expect(nodeId(parseConfig({ node: 'mx1' }, 'test'))).toBe('mx1');
    expect(() => parseConfig({ node: '' }, 'test')).toThrow(/node/);
    expect(() => parseConfig({ node: 'x'.repeat(201) }, 'test')).toThrow(/node/);
    expect(() => parseConfig({ node: 'a\nb' }, 'test')).toThrow(/node/);
    expect(parseConfig({}, 'test').cluster).toEqual({ leaseMs: 120_000, pollMs: 1_500 });
    expect(() => parseConfig({ cluster: { leaseMs: 999 } }, 'test')).toThrow(/cluster.leaseMs/);
    expect(() => parseConfig({ cluster: { pollMs: 60_001 } }, 'test')).toThrow(/cluster.pollMs/);
  });
});

describe.each(stores.list)('fan-out lease on $name', (backend) => {
  it('one node at a time; the cursor moves by compare-and-set; an expired lease is taken over', async () => {
    const sql = await backend.open();
    const id = await post(sql);
    expect(await takeableWraps(sql, 'a', 1000)).toEqual([id]);
    const a = await claimWrap(sql, id, 'a', 1000, 5000);
    expect(a?.wrapAfter).toBe('');
    expect(await claimWrap(sql, id, 'b', 2000, 6000)).toBeNull(); // a holds it
    expect(await takeableWraps(sql, 'b', 2000)).toEqual([]);
    expect(await takeableWraps(sql, 'a', 2000)).toEqual([id]); // its own (a restart)
    await sql.tx(() => advanceWrap(sql, id, '', 'm1', 'a', 7000)); // renews to 7000
    expect(await claimWrap(sql, id, 'b', 6500, 9000)).toBeNull();
    // a stalls past its lease: b takes over from the committed cursor.
    const b = await claimWrap(sql, id, 'b', 7001, 12_000);
    expect(b?.wrapAfter).toBe('m1');
    // a wakes up and tries to commit its next page: refused, and the page's rows roll back with it.
    const lost = await rejectionOf(sql.tx(async () => {
      await sql.run("INSERT INTO job_runs (name, started_at) VALUES ('page', 1)");
      await advanceWrap(sql, id, 'm1', 'm2', 'a', 13_000);
    }));
    expect(lost).toBeInstanceOf(WrapLeaseLost);
    expect(await sql.get("SELECT count(*) AS n FROM job_runs WHERE name = 'page'")).toEqual({ n: 0 });
    // b with a stale cursor (two pages at once would be a bug): refused too.
    expect(await rejectionOf(advanceWrap(sql, id, '', 'm2', 'b', 13_000))).toBeInstanceOf(WrapLeaseLost);
    await advanceWrap(sql, id, 'm1', 'm2', 'b', 13_000);
    await finishWrap(sql, id, 'a', 'm2'); // not a's any more: nothing
    expect(await takeableWraps(sql, 'b', 8000)).toEqual([id]);
    await finishWrap(sql, id, 'b', 'm2');
    expect(await takeableWraps(sql, 'b', 99_999)).toEqual([]);
    expect(await claimWrap(sql, id, 'b', 99_999, 100_000)).toBeNull(); // done
  });

  it('a clean stop hands the post back at once', async () => {
    const sql = await backend.open();
    const id = await post(sql);
    await claimWrap(sql, id, 'a', 1000, 60_000);
    expect(await takeableWraps(sql, 'b', 2000)).toEqual([]);
    await releaseWrap(sql, id, 'a');
    expect(await takeableWraps(sql, 'b', 2000)).toEqual([id]);
    expect((await claimWrap(sql, id, 'b', 2000, 60_000))?.postId).toBe(id);
  });
});

describe('wake-ups between nodes (PostgreSQL)', () => {
  async function until(f: () => boolean, what: string, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!f()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('a notification from one node wakes the other, also after its listening connection was cut', async () => {
    const url = await (await stores.postgres()).createDatabase();
    const a = stores.track(new PgSql(url, { max: 3 }));
    const b = stores.track(new PgSql(url, { max: 3 }));
    let woken = 0;
    const listener = new PgWakeups(b, { onWake: () => { woken++; } });
    const sender = new PgWakeups(a, { onWake: () => {} });
    try {
      listener.start();
      await until(() => listener.listening, 'LISTEN');
      const before = woken;
      sender.notify();
      await until(() => woken > before, 'the wake-up');
      // The server ends the listening session (a restart, a network cut): the node listens again by itself.
      await a.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN letterlock_queue'");
      await until(() => !listener.listening, 'the lost connection');
      await until(() => listener.listening, 'LISTEN again');
      const again = woken;
      sender.notify();
      await until(() => woken > again, 'the wake-up after the reconnect');
      // A command outside the server (letterlock held approve) that queued rows wakes the nodes too.
      const byCommand = woken;
      await notifyQueued(a);
      await until(() => woken > byCommand, 'the wake-up from a command');
    } finally {
      await listener.stop();
      await sender.stop();
    }
  });
});
