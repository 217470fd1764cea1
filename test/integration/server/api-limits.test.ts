// The HTTP API's limits under attack, over real HTTP against the whole server.
// Each client IP is a loopback source address (Linux accepts any 127/8 source),
// so the tests show that limits are per IP and that one IP's flood does not
// lock out another. Mail leaves through the real delivery queue to an SMTP sink.

import http from 'node:http';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { getList } from '../../../server/store/lists.ts';
import { upsertMember } from '../../../server/store/members.ts';
import type { Sql } from '../../../server/store/db.ts';
import { addList, initData, SECRET, Sink, tempDir } from './harness.ts';
import type { SqlParam } from '../../../server/store/sql.ts';

const LIST = 'club@lists.test';
const OTHER = ['two@lists.test', 'three@lists.test', 'four@lists.test', 'five@lists.test', 'six@lists.test', 'seven@lists.test', 'eight@lists.test', 'nine@lists.test'] as const;
// Defaults except where a test needs a smaller number to reach, or (sensitivePerIp)
// a route limit looser than the per-IP one, to show the per-IP one still holds.
const LIMITS = {
  sensitivePerIp: { max: 1000 },
  mailPerList: { max: 15 },
  maxPendingSubscriptionsPerList: 50,
  maxPendingSubscriptions: 300,
  maxPendingChallenges: 100,
  purgeIntervalSeconds: 2,
};
const PER_IP = 300; // the default
const CHALLENGES_PER_IP = 30; // the default
const SUBSCRIBES_PER_IP = 10; // the default
const MAILS_PER_ADDRESS = 5; // the default
const MAILS_PER_IP = 20; // the default

let sink: Sink, dataDir: string, server: RunningServer, port: number;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('api-limits');
  await initData(dataDir, sink.port, { http: { port: 0, limits: LIMITS } });
  await addList(dataDir, LIST, {}, []);
  for (const a of OTHER) await addList(dataDir, a, {}, []);
  // Stale rows left by an earlier run, to be purged at start, beside live ones that must stay.
  const sql = await openData(dataDir, SECRET);
  try {
    await plant(sql, 'boot', (await getList(sql, LIST))!.id);
  } finally {
    await sql.close();
  }
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
  port = server.httpPort;
}, 60_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  for (const a of agents.values()) a.destroy();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ---- HTTP from a chosen source address ---------------------------------------------

interface Reply { status: number; body: { error?: string; message?: string; [k: string]: unknown }; retryAfter: string | undefined }

const agents = new Map<string, http.Agent>();
function agentFor(ip: string): http.Agent {
  let a = agents.get(ip);
  if (!a) {
    a = new http.Agent({ keepAlive: true, maxSockets: 8 });
    agents.set(ip, a);
  }
  return a;
}

function call(ip: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method, path, localAddress: ip, agent: agentFor(ip), timeout: 60_000,
      headers: { ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Reply['body'] = {};
        try {
          parsed = JSON.parse(text) as Reply['body'];
        } catch { /* not JSON */ }
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, body: parsed, retryAfter: Array.isArray(ra) ? ra[0] : ra });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** n calls, `concurrency` at a time; the replies in call order. */
async function flood(n: number, concurrency: number, one: (i: number) => Promise<Reply>): Promise<Reply[]> {
  const out: Reply[] = new Array<Reply>(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await one(i);
    }
  }));
  return out;
}

const statuses = (rs: Reply[]) => rs.reduce<Record<number, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {});

function expectRefusal(r: Reply, status: number, code: string, maxRetry: number): void {
  expect(r.status).toBe(status);
  expect(r.body.error).toBe(code);
  expect(typeof r.body.message).toBe('string');
  expect(r.retryAfter).toMatch(/^\d+$/);
  expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(r.retryAfter)).toBeLessThanOrEqual(maxRetry);
}

// ---- helpers on the server's state ------------------------------------------------------

async function keyFor(address: string): Promise<string> {
  return (await openpgp.generateKey({ userIDs: [{ email: address }], format: 'armored' })).publicKey;
}

async function liveChallenges(): Promise<number> {
  return ((await server.sql.get('SELECT count(*) AS n FROM challenges WHERE expires_at > ? AND used_at IS NULL', [Date.now()])) as { n: number }).n;
}

/** Waits until the delivery queue holds nothing to send. */
async function queueDrained(): Promise<void> {
  await sink.waitFor(async () => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE state IN ('queued','sending')")) as { n: number }).n === 0, 60_000, 'the delivery queue to drain');
}

/** Stale rows of every kind the purge handles, plus live ones that must survive; tagged. */
async function plant(sql: Sql, tag: string, listId: number): Promise<void> {
  const t = Date.now();
  const ch = { run: (...a: SqlParam[]) => sql.run('INSERT INTO challenges (id_hash, list_id, address, statement, expires_at, used_at) VALUES (?,?,?,?,?,?)', a) };
  await ch.run(`${tag}-stale-expired`, listId, 'a@example.org', 's', t - 1000, null);
  await ch.run(`${tag}-stale-used`, listId, 'a@example.org', 's', t + 3_600_000, t - 1000);
  await ch.run(`${tag}-live`, listId, 'a@example.org', 's', t + 3_600_000, null);
  const tok = { run: (...a: SqlParam[]) => sql.run(`INSERT INTO pending_tokens (token_hash, purpose, list_id, address, created_at, expires_at, used_at) VALUES (?,'subscribe',?,?,?,?,?)`, a) };
  await tok.run(`${tag}-stale-expired`, listId, 'a@example.org', t - 49 * 3_600_000, t - 1000, null);
  await tok.run(`${tag}-stale-used`, listId, 'a@example.org', t - 1000, t + 3_600_000, t - 500);
  await tok.run(`${tag}-live`, listId, 'a@example.org', t, t + 3_600_000, null);
  const ses = { run: (...a: SqlParam[]) => sql.run('INSERT INTO sessions (token_hash, list_id, address, fingerprint, created_at, expires_at) VALUES (?,?,?,?,?,?)', a) };
  await ses.run(`${tag}-stale-expired`, listId, 'a@example.org', 'F', t - 3_600_000, t - 1000);
  await ses.run(`${tag}-live`, listId, 'a@example.org', 'F', t, t + 3_600_000);
  const non = { run: (...a: SqlParam[]) => sql.run('INSERT INTO request_nonces (list_id, nonce, seen_at) VALUES (?,?,?)', a) };
  await non.run(listId, `${tag}-stale-old`, t - 2 * 86_400_000);
  await non.run(listId, `${tag}-live`, t);
  const ev = { run: (...a: SqlParam[]) => sql.run('INSERT INTO rate_events (bucket, key, at, until) VALUES (?,?,?,?)', a) };
  await ev.run('test', `${tag}-stale-old`, t - 7_200_000, t - 3_600_000);
  await ev.run('test', `${tag}-live`, t, t + 3_600_000);
}

/** The tagged rows still present, per table. */
async function planted(tag: string): Promise<Record<string, string[]>> {
  const q = async (sql: string) => ((await server.sql.all(sql, [`${tag}-%`])) as Array<{ k: string }>).map((r) => r.k.slice(tag.length + 1)).sort();
  return {
    challenges: await q('SELECT id_hash AS k FROM challenges WHERE id_hash LIKE ?'),
    pending_tokens: await q('SELECT token_hash AS k FROM pending_tokens WHERE token_hash LIKE ?'),
    sessions: await q('SELECT token_hash AS k FROM sessions WHERE token_hash LIKE ?'),
    request_nonces: await q('SELECT nonce AS k FROM request_nonces WHERE nonce LIKE ?'),
    rate_events: await q('SELECT key AS k FROM rate_events WHERE key LIKE ?'),
  };
}

const onlyLive = { challenges: ['live'], pending_tokens: ['live'], sessions: ['live'], request_nonces: ['live'], rate_events: ['live'] };

// ---- the tests --------------------------------------------------------------------------

// First, before any test ages or expires rows on purpose.
describe('start', () => {
  it('purges stale rows: expired and used challenges and tokens, expired sessions, old nonces, past rate-limit rows; live ones stay', async () => {
    expect(await planted('boot')).toEqual(onlyLive);
  });
});

describe('log-in challenges', () => {
  it('400 challenges from one IP: the per-IP bound are answered 200, the rest 429 with Retry-After; another IP still gets in', async () => {
    const replies = await flood(400, 16, (i) => call('127.0.0.2', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: `victim${i}@example.org` }));
    expect(statuses(replies)).toEqual({ 200: CHALLENGES_PER_IP, 429: 400 - CHALLENGES_PER_IP });
    for (const r of replies.filter((x) => x.status === 429)) expectRefusal(r, 429, 'RATE_LIMITED', 600);
    // Per IP: a neighbour is not locked out by the flood.
    expect((await call('127.0.0.3', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'calm@example.org' })).status).toBe(200);
  });

  it('X-Forwarded-For is not believed by default: a forged header does not make a new client', async () => {
    const replies = await flood(40, 8, (i) => call('127.0.0.4', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: `forged${i}@example.org` }, { 'x-forwarded-for': `10.9.${i}.1` }));
    expect(statuses(replies)).toEqual({ 200: CHALLENGES_PER_IP, 429: 40 - CHALLENGES_PER_IP });
  });

  it('pending challenges have a total cap: past it every IP gets 503 BUSY with Retry-After, and the table holds no more', async () => {
    const before = await liveChallenges();
    expect(before).toBeLessThan(LIMITS.maxPendingChallenges);
    let ok = 0;
    let busy: Reply | undefined;
    // Fresh IPs, each under its own per-IP bound, until the server-wide cap answers.
    for (let host = 30; host < 40 && !busy; host++) {
      const replies = await flood(CHALLENGES_PER_IP, 4, (i) => call(`127.0.0.${host}`, 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: `many${host}-${i}@example.org` }));
      ok += replies.filter((r) => r.status === 200).length;
      busy = replies.find((r) => r.status === 503);
      expect(replies.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    }
    expect(busy).toBeDefined();
    expectRefusal(busy!, 503, 'BUSY', 120);
    expect(before + ok).toBeGreaterThanOrEqual(LIMITS.maxPendingChallenges); // the cap was reached, not some other limit
    expect(await liveChallenges()).toBeLessThanOrEqual(LIMITS.maxPendingChallenges);
    expectRefusal(await call('127.0.0.41', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'late@example.org' }), 503, 'BUSY', 120);
    // Once the pending ones expire (made so here) and are purged, log-ins work again.
    (await server.sql.run('UPDATE challenges SET expires_at = ? WHERE expires_at > ?', [Date.now() - 1, Date.now()]));
    await sink.waitFor(async () => (await liveChallenges()) === 0 && ((await server.sql.get('SELECT count(*) AS n FROM challenges')) as { n: number }).n === 0, 30_000, 'the purge of expired challenges');
    expect((await call('127.0.0.41', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'late@example.org' })).status).toBe(200);
  });
});

describe('the per-IP limit on every route', () => {
  it('holds on a route whose own limit is looser, on other routes and on unknown paths; other IPs are unaffected', async () => {
    // The confirm route's own limit is 1000 here; the per-IP one (300) must still hold.
    const replies = await flood(PER_IP + 20, 8, () => call('127.0.0.5', 'POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token: 'A'.repeat(43) }));
    expect(statuses(replies)).toEqual({ 400: PER_IP, 429: 20 });
    for (const r of replies.filter((x) => x.status === 429)) expectRefusal(r, 429, 'RATE_LIMITED', 60);
    expectRefusal(await call('127.0.0.5', 'GET', `/v1/lists/${LIST}`), 429, 'RATE_LIMITED', 60);
    expectRefusal(await call('127.0.0.5', 'POST', `/v1/lists/${LIST}/auth/challenge`, { address: 'x@example.org' }), 429, 'RATE_LIMITED', 60);
    expectRefusal(await call('127.0.0.5', 'GET', '/no/such/path'), 429, 'RATE_LIMITED', 60);
    expect((await call('127.0.0.6', 'GET', `/v1/lists/${LIST}`)).status).toBe(200);
    expect((await call('127.0.0.6', 'GET', '/no/such/path')).status).toBe(404);
  });
});

describe('subscriptions and confirmation mails', () => {
  it('60 subscriptions for other people from one IP: the per-IP bound are accepted and mailed, the rest 429', async () => {
    const addresses = Array.from({ length: 60 }, (_, i) => `person${i}@victims.test`);
    const keys = await Promise.all(addresses.map(keyFor));
    const replies = await flood(60, 4, (i) => call('127.0.0.7', 'POST', `/v1/lists/${LIST}/subscriptions`, { address: addresses[i], publicKey: keys[i] }));
    expect(statuses(replies)).toEqual({ 202: SUBSCRIBES_PER_IP, 429: 60 - SUBSCRIBES_PER_IP });
    for (const r of replies.filter((x) => x.status === 429)) expectRefusal(r, 429, 'RATE_LIMITED', 3600);
    await sink.waitFor(() => sink.messages.filter((m) => m.to.some((t) => t.endsWith('@victims.test'))).length >= SUBSCRIBES_PER_IP, 30_000, 'the confirmation mails');
    await queueDrained();
    expect(sink.messages.filter((m) => m.to.some((t) => t.endsWith('@victims.test')))).toHaveLength(SUBSCRIBES_PER_IP);
    // Another IP may still subscribe.
    expect((await call('127.0.0.8', 'POST', `/v1/lists/${LIST}/subscriptions`, { address: 'real@people.test', publicKey: await keyFor('real@people.test') })).status).toBe(202);
  });

  it('confirmation mails to one address are bounded over all lists and all IPs', async () => {
    const target = 'target@victims2.test';
    const key = await keyFor(target);
    const replies: Reply[] = [];
    for (let i = 0; i < MAILS_PER_ADDRESS + 2; i++) {
      replies.push(await call(`127.0.1.${i + 1}`, 'POST', `/v1/lists/${OTHER[i % 2]}/subscriptions`, { address: target, publicKey: key }));
    }
    expect(replies.map((r) => r.status)).toEqual([...Array<number>(MAILS_PER_ADDRESS).fill(202), 429, 429]);
    expectRefusal(replies.at(-1)!, 429, 'RATE_LIMITED', 3600);
    await sink.waitFor(() => sink.to(target).length >= MAILS_PER_ADDRESS, 30_000, 'mails to the target');
    await queueDrained();
    expect(sink.to(target)).toHaveLength(MAILS_PER_ADDRESS);
  });

  it('confirmation mails of one list are bounded per hour, whatever the IPs', async () => {
    const list = OTHER[2];
    const addresses = Array.from({ length: 20 }, (_, i) => `p${i}@victims3.test`);
    const keys = await Promise.all(addresses.map(keyFor));
    // Two IPs, each within its own subscription bound: only the list's bound refuses.
    const replies = await flood(20, 2, (i) => call(i % 2 ? '127.0.2.1' : '127.0.2.2', 'POST', `/v1/lists/${list}/subscriptions`, { address: addresses[i], publicKey: keys[i] }));
    expect(statuses(replies)).toEqual({ 202: LIMITS.mailPerList.max, 429: 20 - LIMITS.mailPerList.max });
    await queueDrained();
    expect(sink.messages.filter((m) => m.to.some((t) => t.endsWith('@victims3.test')))).toHaveLength(LIMITS.mailPerList.max);
  });

  it('unsubscribe mails asked for from one IP are bounded, dropped silently (the answer never tells who is subscribed)', async () => {
    // 25 members over three fresh lists (each within its own hourly mail bound).
    const members = Array.from({ length: 25 }, (_, i) => ({ list: [OTHER[5], OTHER[6], OTHER[7]][i % 3]!, address: `m${i}@members.test` }));
    for (const m of members) {
      await upsertMember(server.sql, { listId: (await getList(server.sql, m.list))!.id, address: m.address, fingerprint: 'F'.repeat(40), publicKey: 'unused', encryptionKey: new Uint8Array(1), expiresAt: null, keyState: 'valid' });
    }
    const replies = await flood(25, 2, (i) => call('127.0.4.1', 'POST', `/v1/lists/${members[i]!.list}/unsubscribe`, { address: members[i]!.address }));
    expect(statuses(replies)).toEqual({ 202: 25 });
    await sink.waitFor(() => sink.messages.filter((m) => m.to.some((t) => t.endsWith('@members.test'))).length >= MAILS_PER_IP, 30_000, 'the unsubscribe mails');
    await queueDrained();
    expect(sink.messages.filter((m) => m.to.some((t) => t.endsWith('@members.test')))).toHaveLength(MAILS_PER_IP);
  });

  it('pending subscriptions have caps per list and in all: past them 503 BUSY with Retry-After', async () => {
    const full = OTHER[3];
    const open = OTHER[4];
    const fullId = (await getList(server.sql, full))!.id;
    const openId = (await getList(server.sql, open))!.id;
    const insert = { run: (...a: SqlParam[]) => server.sql.run(`INSERT INTO pending_tokens (token_hash, purpose, list_id, address, created_at, expires_at) VALUES (?,'subscribe',?,?,?,?)`, a) };
    const live = async (listId: number | null) => ((await server.sql.get(`SELECT count(*) AS n FROM pending_tokens WHERE purpose = 'subscribe' AND used_at IS NULL AND expires_at > ?${listId === null ? '' : ' AND list_id = ?'}`, [...(listId === null ? [Date.now()] : [Date.now(), listId])])) as { n: number }).n;
    // Earlier floods from many IPs, as rows: one list at its cap.
    const t = Date.now();
    for (let i = 0; i < LIMITS.maxPendingSubscriptionsPerList; i++) await insert.run(`flood-${full}-${i}`, fullId, `f${i}@flood.test`, t, t + 48 * 3_600_000);
    const r1 = await call('127.0.3.1', 'POST', `/v1/lists/${full}/subscriptions`, { address: 'one@people.test', publicKey: await keyFor('one@people.test') });
    expectRefusal(r1, 503, 'BUSY', 3600);
    expect(await live(fullId)).toBe(LIMITS.maxPendingSubscriptionsPerList);
    expect((await call('127.0.3.1', 'POST', `/v1/lists/${open}/subscriptions`, { address: 'two@people.test', publicKey: await keyFor('two@people.test') })).status).toBe(202);
    // The whole server at its cap: another list refuses too.
    const missing = LIMITS.maxPendingSubscriptions - (await live(null));
    for (let i = 0; i < missing; i++) await insert.run(`flood-${open}-${i}`, openId, `g${i}@flood.test`, t, t + 48 * 3_600_000);
    const r2 = await call('127.0.3.2', 'POST', `/v1/lists/${open}/subscriptions`, { address: 'three@people.test', publicKey: await keyFor('three@people.test') });
    expectRefusal(r2, 503, 'BUSY', 3600);
    expect(await live(null)).toBe(LIMITS.maxPendingSubscriptions);
    // Expired (made so here) and purged, they no longer count.
    (await server.sql.run("UPDATE pending_tokens SET expires_at = ? WHERE token_hash LIKE 'flood-%'", [Date.now() - 1]));
    await sink.waitFor(async () => ((await server.sql.get("SELECT count(*) AS n FROM pending_tokens WHERE token_hash LIKE 'flood-%'")) as { n: number }).n === 0, 30_000, 'the purge of expired subscriptions');
    expect((await call('127.0.3.2', 'POST', `/v1/lists/${full}/subscriptions`, { address: 'three@people.test', publicKey: await keyFor('three@people.test') })).status).toBe(202);
  });
});

describe('stale rows', () => {
  it('are purged on an interval while the server runs', async () => {
    await plant(server.sql, 'run', (await getList(server.sql, LIST))!.id);
    expect((await planted('run')).challenges).toHaveLength(3);
    await sink.waitFor(async () => JSON.stringify(await planted('run')) === JSON.stringify(onlyLive), 30_000, 'the interval purge');
    expect(await planted('run')).toEqual(onlyLive);
  });

  it('the rate-limit table holds keyed hashes, not IP or mail addresses', async () => {
    const keys = ((await server.sql.all("SELECT DISTINCT key FROM rate_events WHERE bucket != 'test'")) as Array<{ key: string }>).map((r) => r.key);
    expect(keys.length).toBeGreaterThan(10);
    for (const k of keys) expect(k).toMatch(/^[A-Za-z0-9_-]{27}$/);
    const dump = JSON.stringify((await server.sql.all('SELECT * FROM rate_events')));
    expect(dump).not.toContain('127.0.0');
    expect(dump).not.toContain('victims');
  });
});
