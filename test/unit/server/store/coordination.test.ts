// Several nodes on one database (server/store/coordination.ts): delivery rows
// claimed under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), taken back from a
// node that died, and periodic jobs that run once across nodes. The claim's
// semantics on both stores; the races on a real PostgreSQL 15 with two pools,
// as two nodes would have.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  claimDeliveries, DEFAULT_LEASE_MS, jobLockKey, markSentClaimed, reclaimExpired, recoverOwnClaims, releaseClaims, renewLeases, runOnce,
} from '../../../../server/store/coordination.ts';
import { claimDecision, DECISION_LEASE_MS } from '../../../../server/store/held.ts';
import { SQLITE_LEASE_STEP } from '../../../../server/store/migrations-pg.ts';
import { openDatabase } from '../../../../server/store/open.ts';
import { PgSql } from '../../../../server/store/sql-pg.ts';
import { isStorageError, type Sql } from '../../../../server/store/sql.ts';
import type { RunningPostgres } from '../../../support/postgres.ts';
import { storeBackends, rejectionOf } from '../../../support/stores.ts';

const stores = storeBackends();
let server: RunningPostgres;
beforeAll(async () => { server = await stores.postgres(); }, 180_000);

async function fresh(kind: 'sqlite' | 'postgres'): Promise<Sql> {
  const sql = await stores.list.find((b) => b.name === kind)!.open();
  // SQLite's step 10 is proposed beside PostgreSQL's step 2; until migrations.ts has it, it is applied here.
  if (kind === 'sqlite' && !(await sql.all<{ name: string }>('PRAGMA table_info(deliveries)')).some((c) => c.name === 'claimed_by')) await sql.exec(SQLITE_LEASE_STEP);
  return sql;
}

async function pool(url: string, max = 5): Promise<PgSql> {
  return stores.track(new PgSql(url, { max }));
}


async function until(cond: () => boolean | Promise<boolean>, budgetMs = 30_000): Promise<void> {
  const end = Date.now() + budgetMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A list, one post, and `nextAts.length` copies due at those times; their ids in insertion order. */
async function seed(sql: Sql, nextAts: number[]): Promise<{ listId: number; ids: number[] }> {
  const now = Date.now();
  let list = await sql.get<{ id: number }>("SELECT id FROM lists WHERE address = 'l@example.org'");
  list ??= await sql.get<{ id: number }>(`INSERT INTO lists (address, list_fingerprint, list_public, list_private, archive_fingerprint, archive_public, archive_private, max_bytes, created_at)
    VALUES ('l@example.org', 'f', 'p', 'k', 'f', 'p', 'k', 1000, ?) RETURNING id`, [now]);
  const post = await sql.get<{ id: number }>('INSERT INTO posts (list_id, size, body, archive_pkesk, created_at) VALUES (?, 1, ?, ?, ?) RETURNING id',
    [list!.id, Buffer.from([1]), Buffer.from([2]), now]);
  const ids: number[] = [];
  await sql.tx(async () => {
    for (const [i, at] of nextAts.entries()) {
      const r = await sql.get<{ id: number }>("INSERT INTO deliveries (list_id, post_id, kind, rcpt, pkesk, created_at, next_at) VALUES (?, ?, 'copy', ?, ?, ?, ?) RETURNING id",
        [list!.id, post!.id, `m${i}@example.org`, Buffer.from([i % 256]), now, at]);
      ids.push(r!.id);
    }
  });
  return { listId: list!.id, ids };
}

const rowsOf = (sql: Sql, ids: number[]) => sql.all<{ id: number; state: string; claimed_by: string | null; claimed_until: number | null; resent_after_crash: number }>(
  `SELECT id, state, claimed_by, claimed_until, resent_after_crash FROM deliveries WHERE id IN (${ids.map(() => '?').join(',')}) ORDER BY id`, ids);

describe.each(['sqlite', 'postgres'] as const)('delivery claims on %s', (kind) => {
  let sql: Sql;
  beforeAll(async () => { sql = await fresh(kind); });

  it('claims the rows due longest (next_at, then id) under the node\'s lease, with the member\'s copy form', async () => {
    const { listId, ids } = await seed(sql, [100, 50, 50, 200, 10]);
    await sql.run("INSERT INTO member_prefs (list_id, address, delivery) VALUES (?, 'm1@example.org', 'inline')", [listId]);
    const first = await claimDeliveries(sql, { nodeId: 'A', now: 150, limit: 3, leaseMs: 1000 });
    expect(first.map((r) => r.id)).toEqual([ids[1], ids[2], ids[4]]);
    expect(first.map((r) => r.form)).toEqual(['inline', null, null]);
    expect(first[0]).toMatchObject({ list_id: listId, kind: 'copy', rcpt: 'm1@example.org', attempts: 0 });
    expect([...first[0]!.pkesk!]).toEqual([1]);
    expect((await rowsOf(sql, [ids[1]!]))[0]).toMatchObject({ state: 'sending', claimed_by: 'A', claimed_until: 1150 });
    // What is left and due; the row due at 200 is not.
    expect((await claimDeliveries(sql, { nodeId: 'B', now: 150, limit: 10 })).map((r) => r.id)).toEqual([ids[0]]);
    expect(await claimDeliveries(sql, { nodeId: 'B', now: 150, limit: 10 })).toEqual([]);
    expect((await rowsOf(sql, [ids[0]!, ids[3]!])).map((r) => [r.state, r.claimed_by, r.claimed_until])).toEqual([['sending', 'B', 150 + DEFAULT_LEASE_MS], ['queued', null, null]]);
  });

  it('only the node holding a row marks it sent or gives it back', async () => {
    const { ids } = await seed(sql, [0, 0, 0]);
    const mine = await claimDeliveries(sql, { nodeId: 'A', now: 1, limit: 3 });
    expect(mine.map((r) => r.id)).toEqual(ids);
    expect(await markSentClaimed(sql, 'B', ids, 5)).toBe(0);
    expect(await releaseClaims(sql, 'B', ids)).toBe(0);
    expect(await markSentClaimed(sql, 'A', [ids[0]!], 5)).toBe(1);
    expect(await releaseClaims(sql, 'A', [ids[1]!])).toBe(1);
    const rows = await rowsOf(sql, ids);
    expect(rows.map((r) => [r.state, r.claimed_by, r.resent_after_crash])).toEqual([['sent', null, 0], ['queued', null, 0], ['sending', 'A', 0]]);
    expect(await sql.get('SELECT pkesk FROM deliveries WHERE id = ?', [ids[0]!])).toEqual({ pkesk: null });
  });

  it('a restarted node takes back only its own rows; an expired lease is taken back by anyone; both counted', async () => {
    await sql.run("UPDATE deliveries SET state = 'sent' WHERE state IN ('queued', 'sending')");
    const { ids } = await seed(sql, [0, 0, 0, 0]);
    const t = 1_000_000;
    const a = await claimDeliveries(sql, { nodeId: 'A', now: t, limit: 2, leaseMs: 1000 });
    const b = await claimDeliveries(sql, { nodeId: 'B', now: t, limit: 2, leaseMs: 1000 });
    expect([...a, ...b].map((r) => r.id)).toEqual(ids);
    expect(await recoverOwnClaims(sql, 'A')).toBe(2);
    expect((await rowsOf(sql, ids)).map((r) => [r.state, r.claimed_by, r.resent_after_crash])).toEqual([
      ['queued', null, 1], ['queued', null, 1], ['sending', 'B', 0], ['sending', 'B', 0]]);
    // B's lease runs to t+1000: not before.
    expect(await reclaimExpired(sql, t + 500)).toBe(0);
    // Renewed, it holds past the first term.
    expect(await renewLeases(sql, 'B', t + 5000)).toBe(2);
    expect(await reclaimExpired(sql, t + 1001)).toBe(0);
    // B stops renewing (it died): after the lease the rows go back to the queue, counted.
    expect(await reclaimExpired(sql, t + 5001)).toBe(2);
    expect((await rowsOf(sql, ids)).map((r) => [r.state, r.claimed_by, r.resent_after_crash])).toEqual([
      ['queued', null, 1], ['queued', null, 1], ['queued', null, 1], ['queued', null, 1]]);
    // B, back too late, cannot mark what it no longer holds.
    expect(await markSentClaimed(sql, 'B', ids, t + 6000)).toBe(0);
    // A row in flight from before leases (no claimed_until) is taken back too.
    await sql.run("UPDATE deliveries SET state = 'sending' WHERE id = ?", [ids[0]!]);
    expect(await reclaimExpired(sql, t)).toBe(1);
  });

  it('refuses a batch or a node id out of bounds', async () => {
    await expect(claimDeliveries(sql, { nodeId: 'A', now: 0, limit: 0 })).rejects.toThrow(/batch/);
    await expect(claimDeliveries(sql, { nodeId: 'A', now: 0, limit: 100_000 })).rejects.toThrow(/batch/);
    await expect(claimDeliveries(sql, { nodeId: '', now: 0, limit: 1 })).rejects.toThrow(/node id/);
    await expect(renewLeases(sql, 'x'.repeat(201), 0)).rejects.toThrow(/node id/);
  });

  it('runOnce runs the job, and with minIntervalMs skips one started within it', async () => {
    let runs = 0;
    const job = async () => ++runs;
    expect(await runOnce(sql, 'purge', job)).toEqual({ ran: true, value: 1 });
    expect(await runOnce(sql, 'purge', job)).toEqual({ ran: true, value: 2 });
    let now = 10_000_000;
    const o = { minIntervalMs: 60_000, nodeId: 'A', now: () => now };
    expect(await runOnce(sql, 'digest', job, o)).toEqual({ ran: true, value: 3 });
    now += 59_000;
    expect(await runOnce(sql, 'digest', job, { ...o, nodeId: 'B' })).toEqual({ ran: false, why: 'recent' });
    expect(await runOnce(sql, 'warnings', job, o)).toEqual({ ran: true, value: 4 });
    now += 1_000;
    expect(await runOnce(sql, 'digest', job, { ...o, nodeId: 'B' })).toEqual({ ran: true, value: 5 });
    expect(await sql.get("SELECT node, started_at, finished_at FROM job_runs WHERE name = 'digest'")).toEqual({ node: 'B', started_at: now, finished_at: now });
    const boom = new Error('job failed');
    expect(await rejectionOf(runOnce(sql, 'failing', async () => { throw boom; }))).toBe(boom);
  });

  it('a decision on a held post is claimed once at a time; released, or taken over after its lease', async () => {
    const now = 50_000_000;
    const release = await claimDecision(sql, 41, 'A', now);
    expect(release).not.toBeNull();
    // Another moderator, the CLI or another node, at once or within the lease: refused.
    expect(await claimDecision(sql, 41, 'B', now)).toBeNull();
    expect(await claimDecision(sql, 41, 'B', now + DECISION_LEASE_MS - 1)).toBeNull();
    // Another held post is not held up.
    const other = await claimDecision(sql, 42, 'B', now);
    expect(other).not.toBeNull();
    await release!();
    const again = await claimDecision(sql, 41, 'B', now + 1);
    expect(again).not.toBeNull();
    // A claim whose process died mid-decision (never released) is taken over after the lease.
    expect(await claimDecision(sql, 41, 'C', now + 1 + DECISION_LEASE_MS)).not.toBeNull();
    // The stale holder's release removes nothing of the new claim.
    await again!();
    expect(await claimDecision(sql, 41, 'D', now + 2 + DECISION_LEASE_MS)).toBeNull();
    await other!();
    // Two claims racing on one post: one wins.
    const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => claimDecision(sql, 43, `N${i}`, now)));
    expect(raced.filter((r) => r !== null)).toHaveLength(1);
  });
});

describe('several nodes on one PostgreSQL', () => {
  it('two nodes claiming at once get disjoint rows, and every due row once', async () => {
    const url = await server.createDatabase();
    const setup = await openDatabase(url);
    stores.track(setup);
    const { ids } = await seed(setup, Array.from({ length: 600 }, () => 0));
    const nodes = { A: await pool(url), B: await pool(url) };
    // Both pools connected before the race starts (a slow connect on a busy machine would let one node drain the queue alone).
    await Promise.all([nodes.A, nodes.B].flatMap((n) => Array.from({ length: 5 }, () => n.get('SELECT pg_sleep(0.05)'))));
    const got: Record<string, number[]> = { A: [], B: [] };
    let go!: () => void;
    const start = new Promise<void>((r) => { go = r; });
    // Five claim loops per node, as a node's delivery workers would run.
    const loop = async (node: 'A' | 'B') => {
      await start;
      for (;;) {
        const rows = await claimDeliveries(nodes[node], { nodeId: node, now: Date.now(), limit: 20 });
        if (rows.length === 0) return;
        got[node]!.push(...rows.map((r) => r.id));
      }
    };
    const loops = (['A', 'B'] as const).flatMap((n) => Array.from({ length: 5 }, () => loop(n)));
    go();
    await Promise.all(loops);
    const all = [...got.A!, ...got.B!];
    expect(new Set(all).size).toBe(all.length); // no row twice
    expect([...all].sort((x, y) => x - y)).toEqual(ids);
    expect(got.A!.length).toBeGreaterThan(0);
    expect(got.B!.length).toBeGreaterThan(0);
    // The database agrees on who holds what.
    const holders = await setup.all<{ id: number; claimed_by: string }>("SELECT id, claimed_by FROM deliveries WHERE state = 'sending'");
    expect(holders.length).toBe(600);
    for (const h of holders) expect(got[h.claimed_by]).toContain(h.id);
  });

  it('a claim does not wait for another node\'s open claim, and skips its rows', async () => {
    const url = await server.createDatabase();
    const setup = await openDatabase(url);
    stores.track(setup);
    const { ids } = await seed(setup, [0, 0, 0, 0]);
    const A = await pool(url);
    // Were B's claim to wait on A's locked rows, it would wait for ever here: the server cancels it instead.
    const B = new PgSql(url, { statementTimeoutMs: 10_000 });
    stores.track(B);
    let hold!: () => void;
    const held = new Promise<void>((r) => { hold = r; });
    let claimedA: number[] = [];
    let entered!: () => void;
    const inside = new Promise<void>((r) => { entered = r; });
    // A's claim inside a transaction not yet committed: its rows stay locked.
    const txA = A.tx(async () => {
      claimedA = (await claimDeliveries(A, { nodeId: 'A', now: 1, limit: 2 })).map((r) => r.id);
      entered();
      await held;
    });
    await inside;
    const claimedB = (await claimDeliveries(B, { nodeId: 'B', now: 1, limit: 10 })).map((r) => r.id);
    expect(claimedA).toEqual(ids.slice(0, 2));
    expect(claimedB).toEqual(ids.slice(2));
    hold();
    await txA;
  });

  it('a node that dies with rows claimed: the others take them once its lease runs out', async () => {
    const url = await server.createDatabase();
    const setup = await openDatabase(url);
    stores.track(setup);
    const { ids } = await seed(setup, Array.from({ length: 50 }, () => 0));
    const A = await pool(url);
    const B = await pool(url);
    const t = Date.now();
    const lease = 30_000;
    expect((await claimDeliveries(A, { nodeId: 'A', now: t, limit: 50, leaseMs: lease })).length).toBe(50);
    await A.close(); // A is gone: no release, no renewal
    expect(await reclaimExpired(B, t + lease - 1)).toBe(0);
    expect(await claimDeliveries(B, { nodeId: 'B', now: t + lease - 1, limit: 50 })).toEqual([]);
    expect(await reclaimExpired(B, t + lease + 1)).toBe(50);
    const taken = await claimDeliveries(B, { nodeId: 'B', now: t + lease + 1, limit: 50 });
    expect(taken.map((r) => r.id)).toEqual(ids);
    expect(await setup.get("SELECT count(*) AS n, sum(resent_after_crash) AS c FROM deliveries WHERE claimed_by = 'B'")).toEqual({ n: 50, c: 50 });
  });

  it('a job under runOnce from two nodes at once runs once; the lock is free after it, and after a throw', async () => {
    const url = await server.createDatabase();
    const A = await pool(url);
    const B = await pool(url);
    let runs = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    const job = async () => { runs++; await gate; return runs; };
    const pa = runOnce(A, 'roster-sync', job);
    const pb = runOnce(B, 'roster-sync', job);
    // The node that did not get the lock answers at once, while the other's job still runs.
    const first = await Promise.race([pa, pb]);
    expect(first).toEqual({ ran: false, why: 'locked' });
    await until(() => runs === 1); // the winner's job starts (it may start after the loser's answer)
    open();
    const results = await Promise.all([pa, pb]);
    expect(results.filter((r) => r.ran)).toEqual([{ ran: true, value: 1 }]);
    expect(runs).toBe(1);
    // Free again: the next round runs (on either node), also after a job that threw.
    expect(await runOnce(B, 'roster-sync', async () => 'b')).toEqual({ ran: true, value: 'b' });
    await expect(runOnce(A, 'roster-sync', async () => { throw new Error('x'); })).rejects.toThrow('x');
    expect(await runOnce(B, 'roster-sync', async () => 'again')).toEqual({ ran: true, value: 'again' });
    // Other jobs are not held by this one.
    expect(jobLockKey('roster-sync')).not.toBe(jobLockKey('purge'));
    expect(await setupLocks(A)).toBe(0);
  });

  it('a node that dies holding a job\'s lock frees it with its session', async () => {
    const url = await server.createDatabase();
    const A = await pool(url);
    const B = await pool(url);
    let entered!: () => void;
    const inside = new Promise<void>((r) => { entered = r; });
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    const pa = runOnce(A, 'expiry-warnings', async () => { entered(); await gate; return 'a'; });
    await inside;
    expect(await runOnce(B, 'expiry-warnings', async () => 'b')).toEqual({ ran: false, why: 'locked' });
    // A's lock session ends (the node's process died, or its connection did).
    const holder = await B.get<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
    await B.get('SELECT pg_terminate_backend(?)', [holder!.pid]);
    await until(async () => (await setupLocks(B)) === 0);
    expect(await runOnce(B, 'expiry-warnings', async () => 'b')).toEqual({ ran: true, value: 'b' });
    open();
    // A's job itself finished; its lock connection was dropped, not returned to the pool.
    expect(await pa).toEqual({ ran: true, value: 'a' });
    expect(await A.get('SELECT 1 AS one')).toEqual({ one: 1 });
  });

  it('runOnce with the database unreachable is a storage error', async () => {
    const gone = new PgSql('postgres://postgres@127.0.0.1:1/x', { connectTimeoutMs: 5000 });
    stores.track(gone);
    const e = await rejectionOf(runOnce(gone, 'purge', async () => 1));
    expect(isStorageError(e)).toBe(true);
  });
});

/** Advisory locks held in this database now. */
async function setupLocks(sql: Sql): Promise<number> {
  return (await sql.get<{ n: number }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"))!.n;
}
