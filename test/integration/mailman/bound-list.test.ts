// A Letterlock list bound to a list of a real Mailman 3 Core (issue 11), over
// real SMTP into Letterlock and REST into Mailman, as Postorius would drive it:
// Mailman's roster decides who gets copies (keys still from Letterlock's
// registry), a keyless member gets a notice and never the post, a member
// removed in Mailman gets nothing and loses their archive session, Mailman's
// moderation settings hold or refuse posts, subscribing through the API creates
// the Mailman member, and with the Core down posts wait (451) unless the last
// roster is young enough; never a stale one.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PublicKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIRMATION_TOKEN_LINE, readMail, signStatement } from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { createBoundList } from '../../../server/mailman/bind.ts';
import type { MailmanRest } from '../../../server/mailman/rest.ts';
import { compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person, type SinkMessage } from '../server/harness.ts';
import { MailmanCore } from '../../support/mailman.ts';
import { rawDb } from '../../support/raw-db.ts';

const LIST = 'news@lists.example.test';
const MODERATOR = 'moderator@example.test';

let core: MailmanCore;
let rest: MailmanRest;
let mlId: string;
let sink: Sink;
let dataDir: string;
let server: RunningServer;
let base: string;
let listKey: PublicKey;
let listId: number;
let alice: Person, bob: Person, carol: Person, dave: Person, erin: Person, frank: Person, gina: Person, moderator: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  core = await MailmanCore.start({ restOnly: true });
  rest = core.rest();
  mlId = await core.createList(LIST, { send_welcome_message: false, default_nonmember_action: 'hold', subscription_policy: 'confirm' });
  [alice, bob, carol, dave, erin, frank, gina] = await Promise.all([
    person('alice@example.test'), person('bob@example.test'), person('carol@example.test'), person('dave@example.test'),
    person('erin@example.test'), person('frank@example.test'), person('gina@example.test'),
  ]);
  moderator = await person(MODERATOR);
  // In Mailman: alice, bob and carol are members; a moderator; dave and erin are not on the list.
  for (const p of [alice, bob, carol]) await rest.subscribe({ listId: mlId, address: p.address, preVerified: true, preConfirmed: true, preApproved: true });
  await rest.subscribe({ listId: mlId, address: MODERATOR, role: 'moderator' });

  dataDir = tempDir('mailman-bound');
  await initData(dataDir, sink.port, {
    http: { port: 0, limits: { subscribePerIp: { max: 1000 }, challengePerIp: { max: 1000 }, mailPerIp: { max: 1000 } } },
    // Every post syncs (postSyncMinAgeMs 0) and waits for it (generous bounds for a busy machine);
    // a down Core is seen at once (refused connection).
    // The interval is the shortest allowed, so a removal is seen without any post.
    mailman: { url: core.url, user: core.user, pass: core.pass, syncIntervalSeconds: 5, maxRosterAgeSeconds: 600, syncTimeoutMs: 30_000, postSyncMinAgeMs: 0, postSyncWaitMs: 30_000 },
  });
  const sql = await openData(dataDir, SECRET);
  try {
    const list = await createBoundList(sql, SECRET, rest, LIST, mlId, { owner: 'owner@example.test', maxBytes: 5 * 1024 * 1024 });
    listId = list.id;
    expect(list.mailmanListId).toBe(mlId);
    // Keys in Letterlock's registry: alice and bob; dave has a key but is not on the Mailman list. carol has none.
    for (const p of [alice, bob, dave]) await registerMember(sql, list.id, p.address, p.publicArmored);
    // Mailman's moderator has a registered key too: held-post notices are sealed to it (never in clear).
    await registerMember(sql, list.id, MODERATOR, moderator.publicArmored);
  } finally {
    await sql.close();
  }
  listKey = await listPublicKey(dataDir, LIST);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'debug', stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
}, 240_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  await core?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

let seq = 0;
/** A post with a unique marker in its (encrypted) body; returns the marker and the SMTP reply. */
async function post(from: Person, label: string): Promise<{ marker: string; reply: string }> {
  const marker = `MARKER-${label}-${++seq}-${Math.random().toString(36).slice(2)}`;
  const raw = await compose(from, LIST, listKey, `Body ${marker}`);
  return { marker, reply: await send(server.smtpPort, from.address, LIST, raw) };
}

const copies = (rcpt: string) => sink.to(rcpt).filter((m) => m.raw.toString('utf8').includes('multipart/encrypted') || m.raw.toString('utf8').includes('BEGIN PGP MESSAGE'));

async function decrypts(m: SinkMessage, p: Person, marker: string): Promise<void> {
  const r = await readMail(m.raw, { privateKey: p.privateKey, senderKeys: [] });
  expect(r.message.text ?? '').toContain(marker);
}

function log(): string {
  return readFileSync(join(dataDir, 'logs', 'server.log'), 'utf8');
}

/** Waits until every accepted post's fan-out is done and nothing is left in the queue to send. */
async function settle(): Promise<void> {
  await waitUntil('an idle queue', () => {
    const wrapping = (rawDb(server.sql).prepare('SELECT count(*) AS n FROM posts WHERE wrap_done = 0').get() as { n: number }).n;
    const sending = (rawDb(server.sql).prepare(`SELECT count(*) AS n FROM deliveries WHERE state IN ('queued','claimed','sending')`).get() as { n: number }).n;
    return wrapping === 0 && sending === 0;
  }, 60_000);
}

interface Reply<T = Record<string, unknown>> { status: number; body: T }
async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown, token?: string): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed as T };
}

async function login(p: Person): Promise<Reply<{ token: string }>> {
  const c = await api<{ challengeId: string; statement: string }>('POST', `/v1/lists/${LIST}/auth/challenge`, { address: p.address });
  expect(c.status).toBe(200);
  return api<{ token: string }>('POST', `/v1/lists/${LIST}/auth/login`, { challengeId: c.body.challengeId, signature: await signStatement(c.body.statement, p.privateKey) });
}

async function waitUntil(what: string, f: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a Letterlock list bound to Mailman', () => {
  it("copies go to Mailman's members with keys; a keyless member gets one notice, never the post; a key holder Mailman does not list gets nothing", async () => {
    const { marker, reply } = await post(alice, 'first');
    expect(reply).toMatch(/accepted/);
    await sink.waitFor(() => copies(alice.address).length >= 1 && copies(bob.address).length >= 1 && sink.to(carol.address).length >= 1, 60_000, 'copies and the notice');
    await decrypts(copies(bob.address)[0]!, bob, marker);
    const notice = sink.to(carol.address)[0]!.raw.toString('utf8');
    expect(notice).toMatch(/register a key/);
    expect(notice).toContain(`/v1/lists/${encodeURIComponent(LIST)}/subscriptions`);
    expect(notice).not.toContain(marker);
    expect(copies(carol.address)).toHaveLength(0);

    // A second post: copies again, and no second notice to carol.
    await post(bob, 'second');
    await sink.waitFor(() => copies(alice.address).length >= 2, 60_000, 'second copy');
    await settle();
    expect(sink.to(carol.address)).toHaveLength(1);
    expect(sink.to(dave.address)).toHaveLength(0);
  });

  it('a member added in Mailman gets the notice, then the next post once their key is registered', async () => {
    await rest.subscribe({ listId: mlId, address: frank.address, preVerified: true, preConfirmed: true, preApproved: true });
    await post(alice, 'before-key');
    await sink.waitFor(() => sink.to(frank.address).length >= 1, 60_000, 'notice to frank');
    expect(copies(frank.address)).toHaveLength(0);

    await registerMember(server.sql, listId, frank.address, frank.publicArmored);
    const { marker } = await post(alice, 'after-key');
    await sink.waitFor(() => copies(frank.address).length >= 1, 60_000, 'copy to frank');
    await decrypts(copies(frank.address)[0]!, frank, marker);
  });

  it('a member whose delivery Mailman disabled gets no copy, and gets copies again once enabled', async () => {
    const bobId = (await rest.findMember(mlId, bob.address))!.member_id!;
    await rest.setDeliveryStatus(bobId, 'by_user');
    const before = copies(bob.address).length;
    const beforeAlice = copies(alice.address).length;
    await post(alice, 'bob-disabled');
    await sink.waitFor(() => copies(alice.address).length > beforeAlice, 60_000, 'copy to alice');
    await settle();
    expect(copies(bob.address)).toHaveLength(before);
    await rest.setDeliveryStatus(bobId, 'enabled');
    await post(alice, 'bob-enabled');
    await sink.waitFor(() => copies(bob.address).length > before, 60_000, 'copy to bob again');
  });

  it('a member removed in Mailman gets no copy and their archive session ends within one sync', async () => {
    const session = await login(bob);
    expect(session.status).toBe(200);
    expect((await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, session.body.token)).status).toBe(200);

    expect(await rest.unsubscribe(mlId, bob.address)).toBe(true);
    const before = copies(bob.address).length;
    const beforeAlice = copies(alice.address).length;
    await post(alice, 'bob-removed'); // the post's own sync sees the removal
    await sink.waitFor(() => copies(alice.address).length > beforeAlice, 60_000, 'copy to alice');
    await settle();
    expect(copies(bob.address)).toHaveLength(before);
    expect((await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, session.body.token)).status).toBe(401);
    expect((await login(bob)).status).toBe(401);
    expect(log()).toMatch(/"event":"mailman.member_removed"/);
  });

  it('a member removed in Mailman loses their archive session at the next interval sync, with no post at all', async () => {
    const session = await login(frank);
    expect(session.status).toBe(200);
    const posts = (rawDb(server.sql).prepare('SELECT count(*) AS n FROM posts').get() as { n: number }).n;
    expect(await rest.unsubscribe(mlId, frank.address)).toBe(true);
    await waitUntil('the session to end', async () => (await api('GET', `/v1/lists/${LIST}/archive/threads`, undefined, session.body.token)).status === 401, 60_000);
    expect((rawDb(server.sql).prepare('SELECT count(*) AS n FROM posts').get() as { n: number }).n).toBe(posts);
  });

  it("a nonmember's post is held (moderators Mailman names are told) or refused, per Mailman's setting", async () => {
    const held = await post(erin, 'nonmember-held');
    expect(held.reply).toMatch(/held/);
    await sink.waitFor(() => sink.to(MODERATOR).length >= 1, 30_000, 'held notice to the moderator Mailman names');
    const notice = sink.to(MODERATOR)[0]!;
    expect(notice.raw.toString('utf8')).not.toContain(held.marker);
    const opened = await readMail(notice.raw, { privateKey: moderator.privateKey, senderKeys: [listKey] });
    expect(opened.message.text ?? '').toMatch(/approve/i);
    expect(opened.message.text ?? '').not.toContain(held.marker);
    // Held posts stay ciphertext.
    const row = rawDb(server.sql).prepare('SELECT payload FROM held WHERE list_id = ? ORDER BY id DESC LIMIT 1').get(listId) as { payload: Buffer };
    expect(Buffer.from(row.payload).toString('utf8')).not.toContain(held.marker);

    await rest.patchConfig(mlId, { default_nonmember_action: 'reject' });
    await expect(post(erin, 'nonmember-rejected')).rejects.toThrow(/550.*NOT_MEMBER/);
    expect(copies(erin.address)).toHaveLength(0);
  });

  it("a member's own moderation action applies: hold, then discard", async () => {
    const aliceId = (await rest.findMember(mlId, alice.address))!.member_id!;
    await rest.setModeration(aliceId, 'hold');
    const heldPost = await post(alice, 'member-held');
    expect(heldPost.reply).toMatch(/held/);
    // A moderator approves it (operator API): delivered, to Mailman's members only.
    const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const heldId = (rawDb(server.sql).prepare('SELECT id FROM held WHERE list_id = ? ORDER BY id DESC LIMIT 1').get(listId) as { id: number }).id;
    const beforeApprove = copies(alice.address).length;
    expect((await api('POST', `/v1/admin/lists/${LIST}/held/${heldId}/approve`, undefined, adminToken)).status).toBe(200);
    await sink.waitFor(() => copies(alice.address).length > beforeApprove, 60_000, 'the approved post');
    await decrypts(copies(alice.address).at(-1)!, alice, heldPost.marker);
    // The nonmember's held post: approved, but no registered key can check its signature, so it is refused, not delivered.
    const erinHeld = (rawDb(server.sql).prepare('SELECT id FROM held WHERE list_id = ? AND sender = ?').get(listId, erin.address) as { id: number }).id;
    const r = await api<{ outcome: { result: string; code?: string } }>('POST', `/v1/admin/lists/${LIST}/held/${erinHeld}/approve`, undefined, adminToken);
    expect(r.body.outcome).toMatchObject({ result: 'refused', code: 'NOT_MEMBER' });
    await settle();
    expect(copies(dave.address)).toHaveLength(0);
    await rest.setModeration(aliceId, 'discard');
    const before = copies(alice.address).length;
    expect((await post(alice, 'member-discarded')).reply).toMatch(/discarded/);
    await settle();
    expect(copies(alice.address)).toHaveLength(before);
    await rest.setModeration(aliceId, '');
    expect((await post(alice, 'member-back')).reply).toMatch(/accepted/);
  });

  it('subscribing through the API (after the encrypted confirmation) creates the Mailman member; removing them removes it', async () => {
    const r = await api('POST', `/v1/lists/${LIST}/subscriptions`, { address: gina.address, publicKey: gina.publicArmored });
    expect(r.status).toBe(202);
    await sink.waitFor(() => sink.to(gina.address).length >= 1, 30_000, 'confirmation to gina');
    const read = await readMail(sink.to(gina.address)[0]!.raw, { privateKey: gina.privateKey, senderKeys: [listKey] });
    const token = CONFIRMATION_TOKEN_LINE.exec(read.message.text ?? '')![1]!;
    expect((await api('POST', `/v1/lists/${LIST}/subscriptions/confirm`, { token })).status).toBe(200);
    await waitUntil('gina in Mailman', async () => (await rest.findMember(mlId, gina.address)) !== null);

    const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect((await api('DELETE', `/v1/admin/lists/${LIST}/members/${gina.address}`, undefined, adminToken)).status).toBe(200);
    await waitUntil('gina gone from Mailman', async () => (await rest.findMember(mlId, gina.address)) === null);
  });

  it('with the Core down a post uses a young-enough roster, waits (451) with an old one, and goes through once the Core is back', async () => {
    // A held post to approve while the Core is down.
    const aliceId = (await rest.findMember(mlId, alice.address))!.member_id!;
    await rest.setModeration(aliceId, 'hold');
    const heldPost = await post(alice, 'held-while-down');
    expect(heldPost.reply).toMatch(/held/);
    await rest.setModeration(aliceId, '');
    // The young roster used below must be one read after that change (the interval sync, every 5 s).
    await waitUntil('the roster without alice\'s hold', () => (rawDb(server.sql).prepare(`SELECT moderation_action AS a FROM mailman_roster WHERE list_id = ? AND address = ? AND role = 'member'`).get(listId, alice.address) as { a: string | null }).a === null);
    const heldId = (rawDb(server.sql).prepare('SELECT id FROM held WHERE list_id = ? ORDER BY id DESC LIMIT 1').get(listId) as { id: number }).id;
    const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

    await core.pause();
    try {
      // The roster was read moments ago: young enough, the post goes on (logged).
      const beforeAlice = copies(alice.address).length;
      expect((await post(alice, 'core-down-fresh')).reply).toMatch(/accepted/);
      await sink.waitFor(() => copies(alice.address).length > beforeAlice, 60_000, 'copy with the young roster');
      expect(log()).toMatch(/"event":"mailman.stale_roster_used"/);

      // Age the roster past maxRosterAgeSeconds: the post must wait, not go to a stale roster.
      rawDb(server.sql).prepare('UPDATE mailman_state SET synced_at = ? WHERE list_id = ?').run(Date.now() - 3600_000, listId);
      const marker = `MARKER-wait-${Math.random().toString(36).slice(2)}`;
      const raw = await compose(alice, LIST, listKey, `Body ${marker}`);
      const before = copies(alice.address).length;
      await expect(send(server.smtpPort, alice.address, LIST, raw)).rejects.toThrow(/451/);
      expect(log()).toMatch(/"event":"mailman.post_waits"/);
      // Approving a held post waits too (503, try again), and the post stays held.
      const approve = await api('POST', `/v1/admin/lists/${LIST}/held/${heldId}/approve`, undefined, adminToken);
      expect(approve).toMatchObject({ status: 503, body: { error: 'BUSY' } });
      expect(rawDb(server.sql).prepare('SELECT 1 FROM held WHERE id = ?').get(heldId)).toBeTruthy();
      await settle();
      expect(copies(alice.address)).toHaveLength(before);

      await core.resume();
      // The sending MTA retries the same mail: now it goes through.
      expect(await send(server.smtpPort, alice.address, LIST, raw)).toMatch(/accepted/);
      await sink.waitFor(() => copies(alice.address).length > before, 60_000, 'copy after the Core is back');
      await decrypts(copies(alice.address).at(-1)!, alice, marker);
      const approved = await api<{ outcome: { result: string } }>('POST', `/v1/admin/lists/${LIST}/held/${heldId}/approve`, undefined, adminToken);
      expect(approved.body.outcome.result).toBe('accepted');
      await sink.waitFor(() => copies(alice.address).length > before + 1, 60_000, 'the approved post');
      await decrypts(copies(alice.address).at(-1)!, alice, heldPost.marker);
    } finally {
      if (!(await rest.versions().then(() => true, () => false))) await core.resume();
    }
  }, 240_000);
});



