// Units of server/ops and server/metrics: who may read /metrics (token, or a
// direct loopback request in "loopback" mode), one registry per server, the
// closed set of reason labels, the digest's bounds, and the notice text's hygiene.

import Fastify from 'fastify';
import { createServer, type AddressInfo } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerMetrics } from '../../../server/metrics/metrics.ts';
import { digestLines, gatherDigest, MAX_LISTED, reasonCode } from '../../../server/ops/digest.ts';
import { probeTcp } from '../../../server/ops/health.ts';
import { heldNoticeLines, moderatorsOf, reasonWords } from '../../../server/ops/held-notice.ts';
import { isLoopbackPeer, registerOpsRoutes, type MetricsAccess } from '../../../server/ops/routes.ts';
import { openSqlite, type Sql } from '../../../server/store/db.ts';
import type { ListRecord } from '../../../server/store/lists.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { getNotifySettings, setNotifySettings } from '../../../server/store/notify.ts';
import type { HeldRecord } from '../../../server/store/held.ts';
import { rawDb } from '../../support/raw-db.ts';
import type { SqlParam } from '../../../server/store/sql.ts';
import { openTestSql } from '../../support/test-store.ts';

const TOKEN = 'a-long-operator-token-0123456789abcdef';
const dbs: Sql[] = [];

async function memoryDb(): Promise<Sql> {
  const sql = await openTestSql(':memory:');
  dbs.push(sql);
  return sql;
}

async function addList(sql: Sql, address: string): Promise<number> {
  return Number((await sql.get<{ id: number }>(`INSERT INTO lists (address, owner, list_fingerprint, list_public, list_private, archive_fingerprint, archive_public, archive_private, max_bytes, created_at)
    VALUES (?, 'owner@example.org', 'F', 'P', 'S', 'AF', 'AP', 'AS', 1000, 0) RETURNING id`, [address]))!.id);
}

afterAll(async () => { for (const sql of dbs) await sql.close(); });

async function app(access: MetricsAccess) {
  const sql = await memoryDb();
  const a = Fastify();
  registerOpsRoutes(a, {
    queue: new QueueStore(sql), adminToken: TOKEN, metricsAccess: access, metrics: new ServerMetrics({ sql, defaultMetrics: false }),
    loopDelay: { snapshot: () => ({ lastSecondMs: 1, maxLastMinuteMs: 2 }), stop() {} },
  });
  await a.ready();
  return a;
}

describe('/metrics access', () => {
  it('token mode: only the operator token, from anywhere', async () => {
    const a = await app('token');
    const get = (remoteAddress: string, headers: Record<string, string> = {}) => a.inject({ method: 'GET', url: '/metrics', remoteAddress, headers });
    expect((await get('127.0.0.1')).statusCode).toBe(401);
    expect((await get('127.0.0.1', { authorization: 'Bearer wrong' })).statusCode).toBe(401);
    expect((await get('127.0.0.1', { authorization: `Basic ${TOKEN}` })).statusCode).toBe(401);
    const ok = await get('203.0.113.9', { authorization: `Bearer ${TOKEN}` });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('letterlock_copies_sent_total{kind="copy"} 0');
    await a.close();
  });

  it('loopback mode: a direct request from this machine without the token; an outsider or anything through a proxy needs it', async () => {
    const a = await app('loopback');
    const get = (remoteAddress: string, headers: Record<string, string> = {}) => a.inject({ method: 'GET', url: '/metrics', remoteAddress, headers });
    expect((await get('127.0.0.1')).statusCode).toBe(200);
    expect((await get('::1')).statusCode).toBe(200);
    expect((await get('::ffff:127.0.0.1')).statusCode).toBe(200);
    expect((await get('203.0.113.9')).statusCode).toBe(401);
    expect((await get('10.1.2.3')).statusCode).toBe(401);
    for (const h of ['x-forwarded-for', 'forwarded', 'x-real-ip', 'via']) {
      expect((await get('127.0.0.1', { [h]: '203.0.113.9' })).statusCode, h).toBe(401);
    }
    expect((await get('203.0.113.9', { authorization: `Bearer ${TOKEN}` })).statusCode).toBe(200);
    await a.close();
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1'].every(isLoopbackPeer)).toBe(true);
    expect(['128.0.0.1', '::2', '::ffff:10.0.0.1', '', undefined, '1127.0.0.1'].some((a) => isLoopbackPeer(a))).toBe(false);
  });
});

describe('metrics registry', () => {
  it('one registry per server: two in one process, the global default registry untouched', async () => {
    const a = new ServerMetrics({ sql: await memoryDb() });
    const b = new ServerMetrics({ sql: await memoryDb() });
    a.delivery({ kind: 'copy', outcome: 'sent' });
    a.delivery({ kind: 'copy', outcome: 'sent' });
    b.delivery({ kind: 'copy', outcome: 'failed', code: 'SMTP_550' });
    expect(await a.scrape()).toMatch(/^letterlock_copies_sent_total\{kind="copy"\} 2$/m);
    expect(await b.scrape()).toMatch(/^letterlock_copies_sent_total\{kind="copy"\} 0$/m);
    expect(await b.scrape()).toMatch(/^letterlock_copies_failed_total\{kind="copy"\} 1$/m);
    expect(await globalRegistry.metrics()).not.toContain('letterlock_');
  });

  it('refusal reasons are the closed set of codes; anything else is OTHER', async () => {
    const m = new ServerMetrics({ sql: await memoryDb(), defaultMetrics: false });
    const log = m.tap({ info() {}, warn() {}, error() {} });
    log.info('post.refused', { code: 'NOT_MEMBER' });
    log.info('post.refused', { code: 'WRONG_KEY' });
    log.info('post.refused', { code: 'SMTP_550' });
    log.info('post.held', {});
    log.info('smtp.too_large', { bytes: 99 });
    const t = await m.scrape();
    expect(t).toMatch(/^letterlock_refusals_total\{reason="TOO_LARGE"\} 1$/m);
    expect(t).toMatch(/^letterlock_posts_total\{outcome="refused"\} 4$/m);
    expect(t).toMatch(/^letterlock_refusals_total\{reason="NOT_MEMBER"\} 1$/m);
    expect(t).toMatch(/^letterlock_refusals_total\{reason="WRONG_KEY"\} 1$/m);
    expect(t).toMatch(/^letterlock_refusals_total\{reason="OTHER"\} 1$/m);
    expect(t).toMatch(/^letterlock_posts_total\{outcome="held"\} 1$/m);
  });

  it('a closed database leaves the gauges out, and the scrape still answers', async () => {
    const sql = await openTestSql(':memory:');
    const m = new ServerMetrics({ sql, defaultMetrics: false });
    await sql.close();
    const t = await m.scrape();
    expect(t).toContain('letterlock_copies_sent_total');
    expect(t).not.toMatch(/^letterlock_queue_depth\{/m);
  });
});

describe('relay probe', () => {
  it('a closed port is refused, an open one connects', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    expect(await probeTcp('127.0.0.1', port, 2000)).toEqual({ ok: true });
    await new Promise<void>((r) => server.close(() => r()));
    expect(await probeTcp('127.0.0.1', port, 2000)).toEqual({ ok: false, code: 'NET_ECONNREFUSED' });
  });
});

describe('the digest', () => {
  it('is bounded: however many failures and keys, a fixed number of rows is listed', async () => {
    const sql = await memoryDb();
    const listId = await addList(sql, 'big@lists.test');
    const now = Date.now();
    const report = { run: (...a: SqlParam[]) => sql.run('INSERT INTO owner_reports (list_id, rcpt, post_id, reason, created_at) VALUES (?,?,?,?,?)', a) };
    const member = { run: (...a: SqlParam[]) => sql.run("INSERT INTO members (list_id, address, fingerprint, public_key, encryption_key, expires_at, key_state, added_at) VALUES (?,?,?,?,?,?, 'valid', 0)", a) };
    await sql.tx(async () => {
      for (let i = 0; i < 3000; i++) await report.run(listId, `r${i}@example.org`, 1, i % 3 === 0 ? 'SMTP_550: no such user' : i % 3 === 1 ? 'NET_ECONNREFUSED (gave up after retries): connection problem' : 'odd reason', now - 1000);
      await report.run(listId, 'old@example.org', 1, 'SMTP_550: x', now - 3 * 86_400_000); // before the window
      for (let i = 0; i < 500; i++) await member.run(listId, `m${i}@example.org`, 'F'.repeat(40), 'P', Buffer.from([1]), now + 86_400_000 + i);
      await member.run(listId, 'later@example.org', 'F'.repeat(40), 'P', Buffer.from([1]), now + 30 * 86_400_000);
    });
    const c = await gatherDigest(sql, listId, now - 86_400_000, now);
    expect(c.failures.total).toBe(3000);
    expect(c.failures.byCode).toEqual([{ code: 'NET_ECONNREFUSED', count: 1000 }, { code: 'OTHER', count: 1000 }, { code: 'SMTP_550', count: 1000 }]);
    expect(c.failures.addresses).toHaveLength(MAX_LISTED);
    expect(c.failures.more).toBe(3000 - MAX_LISTED);
    expect(c.expiring).toHaveLength(MAX_LISTED);
    expect(c.moreExpiring).toBe(500 - MAX_LISTED);
    const lines = digestLines({ address: 'big@lists.test' } as ListRecord, c, now - 86_400_000, now);
    expect(lines.length).toBeLessThan(2 * MAX_LISTED + 30);
    expect(lines).toContain(`    ... and ${3000 - MAX_LISTED} more`);
    expect(lines.join('\n')).not.toContain('old@example.org');
    expect(lines.join('\n')).not.toContain('later@example.org');
  });

  it('reads the code at the start of a recorded reason', () => {
    expect(reasonCode('SMTP_550: No such user')).toBe('SMTP_550');
    expect(reasonCode('KEY_EXPIRED: missed a post (notice sent)')).toBe('KEY_EXPIRED');
    expect(reasonCode('no code here')).toBe('OTHER');
  });
});

describe('switches and notice text', () => {
  it('switches default on; moderators are stored lower case, once, and bounded', async () => {
    const sql = await memoryDb();
    const id = await addList(sql, 'sw@lists.test');
    expect(await getNotifySettings(sql, id)).toEqual({ held: true, digest: true, moderators: [] });
    expect(await setNotifySettings(sql, id, { held: false, moderators: ['A@Example.org', 'a@example.org', 'b@example.org'] })).toEqual({ held: false, digest: true, moderators: ['a@example.org', 'b@example.org'] });
    await expect(setNotifySettings(sql, id, { moderators: Array.from({ length: 51 }, (_, i) => `m${i}@x.org`) })).rejects.toThrow(/at most 50/);
    // They go into mail headers: no line breaks, no display names, no lists of addresses.
    for (const bad of ['a@x.org\r\nBcc: b@y.org', 'Ann <a@x.org>', 'a@x.org, b@y.org', 'no-at-sign', '']) {
      await expect(setNotifySettings(sql, id, { moderators: [bad] }), bad).rejects.toThrow(/not a valid moderator address/);
    }
    (await sql.run('UPDATE lists SET moderators = ? WHERE id = ?', [JSON.stringify(['ok@x.org', 'x@y.org\nBcc: z@w.org', 42]), id]));
    expect((await getNotifySettings(sql, id)).moderators).toEqual(['ok@x.org']);
  });

  it('moderators: the owner, those set on the list, and for a list bound to Mailman its owners and moderators', async () => {
    const sql = await memoryDb();
    const id = await addList(sql, 'mm@lists.test');
    const list = { id, owner: 'owner@example.org' } as ListRecord;
    await setNotifySettings(sql, id, { moderators: ['mod@example.org', 'owner@example.org'] });
    expect(await moderatorsOf(sql, list)).toEqual(['owner@example.org', 'mod@example.org']);
    // The roster table of server/mailman/store.ts (issue 11); openSqlite makes it, with a foreign key to lists.
    await sql.exec(`CREATE TABLE IF NOT EXISTS mailman_roster (list_id INTEGER NOT NULL, address TEXT NOT NULL, role TEXT NOT NULL, delivery_enabled INTEGER NOT NULL DEFAULT 1,
      moderation_action TEXT, PRIMARY KEY (list_id, address, role))`);
    const roster = { run: (...a: SqlParam[]) => sql.run('INSERT INTO mailman_roster (list_id, address, role) VALUES (?,?,?)', a) };
    await roster.run(id, 'mmowner@example.org', 'owner');
    await roster.run(id, 'mmmod@example.org', 'moderator');
    await roster.run(id, 'mod@example.org', 'moderator');
    await roster.run(id, 'member@example.org', 'member');
    await roster.run(id, 'x@y.org\r\nBcc: z@w.org', 'moderator');
    await roster.run(await addList(sql, 'other@lists.test'), 'elsewhere@example.org', 'moderator');
    expect(await moderatorsOf(sql, list)).toEqual(['owner@example.org', 'mod@example.org', 'mmmod@example.org', 'mmowner@example.org']);
  });

  it('a held notice is metadata only; a sender address cannot add lines', () => {
    const held = {
      id: 7, listId: 1, sender: 'evil@example.org\r\nBcc: x@y.z', envelopeFrom: null, payload: 'ciphertext', size: 1234, reason: 'moderated', receivedAt: 0,
      outer: { from: null, messageId: '<bad id>', inReplyTo: null, references: [], date: null, autoSubmitted: false },
    } as HeldRecord;
    const lines = heldNoticeLines({ address: 'l@lists.test' } as ListRecord, held, 'https://lists.example.org/');
    const text = lines.join('\n');
    expect(lines.filter((l) => l.includes('Bcc'))).toEqual(['  From:       evil@example.org??Bcc:?x@y.z (signature checked against this member\'s registered key)']);
    expect(text).toContain('Message-ID: (none)');
    expect(text).toContain('https://lists.example.org/v1/admin/lists/l%40lists.test/held/7/approve');
    expect(text).not.toContain('ciphertext');
    expect(reasonWords('x\r\ny')).toBe('held by the list\'s policy (x??y)');
  });
});
