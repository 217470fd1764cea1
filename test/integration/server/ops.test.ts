// Observability and the operators' notices, against one real server (in-process,
// real SMTP in, a loopback SMTP sink as relay): /metrics scraped during a real
// fan-out, /health readiness going 503 when the relay is unreachable and when the
// database is closed, signed and encrypted held-post notices to each moderator
// (never a word of the post), the owner's digest, and the per-list switches.

import { spawnSync } from 'node:child_process';
import { rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../../shared/index.ts';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { getList } from '../../../server/store/lists.ts';
import { getNotifySettings, setNotifySettings } from '../../../server/store/notify.ts';
import { Gpg } from '../../support/gpg.ts';
import { addList, compose, initData, listPublicKey, person, seedMembers, send, Sink, SECRET, tempDir, type Person, type SinkMessage } from './harness.ts';

const FAN = 'fan@lists.test';
const MOD = 'mod@lists.test';
const DIG = 'dig@lists.test';
const OTHER = 'other@lists.test';
/** The owner has no key anywhere: failure reports are not sent (never in clear). */
const NOKEY = 'nokey@lists.test';
const KEYLESS = 'keyless@example.org';
/** Digest off: the expiry check sends the owner its own summary, sealed. */
const EXP = 'exp@lists.test';
/** Digest off and an owner without a key: no summary at all. */
const EXPNK = 'expnk@lists.test';
const KEYLESS2 = 'keyless2@example.org';
/** Digest on and never switched: the digest lists expiring keys, no separate summary. */
const KEEP = 'keep@lists.test';
const SEEDED = 300;

let sink: Sink;
let dataDir: string;
let server: RunningServer;
let token: string;
let base: string;
let alice: Person, owner: Person, mod1: Person, mod2: Person, expiring: Person, failing: Person, stranger: Person, soon: Person, soon2: Person, soon3: Person;
/** A member whose key expired before the check: it can take no encryption any more. */
let gone: { address: string; fingerprint: string };
const listKeys: Record<string, openpgp.PublicKey> = {};

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('ops');
  // A short cache, so /health sees the relay go and come back within the test.
  await initData(dataDir, sink.port, { health: { relayTimeoutMs: 1000, cacheMs: 200 } });
  [alice, owner, mod1, mod2, expiring, failing, stranger] = await Promise.all([
    person('alice@example.org'), person('owner@example.org'), person('mod1@example.org'), person('mod2@example.org'),
    person('expiring@example.org', 5 * 86_400), person('failing@example.org'), person('stranger@example.org'),
  ]);
  [soon, soon2, soon3] = await Promise.all([person('soon@example.org', 3 * 86_400), person('soon2@example.org', 3 * 86_400), person('soon3@example.org', 3 * 86_400)]);
  await addList(dataDir, FAN, { owner: owner.address }, [alice]);
  await seedMembers(dataDir, FAN, SEEDED, [alice, owner]);
  // mod2 is registered on another list only: an operator notice may use that key.
  await addList(dataDir, MOD, { owner: owner.address, postPolicy: 'moderated' }, [alice, owner, mod1]);
  await addList(dataDir, OTHER, { owner: owner.address }, [mod2]);
  await addList(dataDir, DIG, { owner: owner.address }, [alice, owner, expiring, failing]);
  await addList(dataDir, NOKEY, { owner: KEYLESS }, [alice, failing]);
  await addList(dataDir, EXP, { owner: owner.address }, [soon]);
  await addList(dataDir, EXPNK, { owner: KEYLESS2 }, [soon2]);
  await addList(dataDir, KEEP, { owner: owner.address }, [soon3]);
  {
    // Made ten days ago, valid for five: registered while it was valid, expired now.
    const made = new Date(Date.now() - 10 * 86_400_000);
    const g = await generateKey({ kind: 'subscriber', address: 'gone@example.org', passphrase: 'gone-pass', expiresInSeconds: 5 * 86_400, date: made });
    const sql = await openData(dataDir, SECRET);
    try {
      await registerMember(sql, (await getList(sql, EXP))!.id, 'gone@example.org', g.publicKeyArmored, new Date(made.getTime() + 60_000));
    } finally {
      await sql.close();
    }
    gone = { address: 'gone@example.org', fingerprint: g.facts.fingerprint };
  }
  for (const l of [FAN, MOD, DIG, EXP, EXPNK, KEEP]) listKeys[l] = await listPublicKey(dataDir, l);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'debug', stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
  token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  // Moderators beside the owner; nobody@ has no key anywhere: it gets nothing, never a notice in clear.
  await setNotifySettings(server.sql, (await getList(server.sql, MOD))!.id, { moderators: [mod1.address, mod2.address, 'nobody@example.org'] });
  // Before the first daily key-expiry check (a minute after start).
  for (const l of [EXP, EXPNK]) await setNotifySettings(server.sql, (await getList(server.sql, l))!.id, { digest: false });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ---- helpers -------------------------------------------------------------------------------

/** The real command, on the running server's data folder (SQLite WAL: both may write). */
function letterlock(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', '..', 'server', 'cli', 'letterlock.mjs'), '--data', dataDir, ...args], {
    env: { ...process.env, LETTERLOCK_SECRET: SECRET }, encoding: 'utf8', timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function scrape(auth: string | null = token): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(`${base}/metrics`, { headers: auth ? { authorization: `Bearer ${auth}` } : {} });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') };
}

/** The value of one sample line (`name{labels} value`), 0 if absent. */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function health(): Promise<{ status: number; body: { ok: boolean; ready: boolean; failing: string[]; checks: Record<string, { ok: boolean; code?: string }>; eventLoopDelay: unknown } }> {
  const r = await fetch(`${base}/health`);
  return { status: r.status, body: await r.json() as never };
}

async function waitUntil<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const notices = (rcpt: string, list: string, subject: RegExp) => sink.to(rcpt).filter((m) => m.from.startsWith(list.split('@')[0]!) && subject.test(m.raw.toString('utf8').split('\r\n\r\n')[0]!));
const heldNotices = (rcpt: string) => notices(rcpt, MOD, /^Subject: Moderation request for mod@lists\.test$/m);
const digests = (rcpt: string) => notices(rcpt, DIG, /^Subject: Digest for dig@lists\.test$/m);
const reports = (rcpt: string, list: string) => notices(rcpt, list, new RegExp(`^Subject: Delivery report for ${list.replace(/\./g, '\\.')}$`, 'm'));
const keyNotices = (rcpt: string, list: string) => notices(rcpt, list, new RegExp(`^Subject: Key notice for ${list.replace(/\./g, '\\.')}$`, 'm'));

/** The server's log events (JSON lines) named `event`. */
function logged(event: string): Array<Record<string, unknown>> {
  return readFileSync(join(dataDir, 'logs', 'server.log'), 'utf8').split('\n').filter((l) => l.includes(`"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === event);
}

/** No mail waits in the queue (each queued mail reached the sink or was given up). */
const queueDrained = async () => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE state IN ('queued','claimed','sending')")) as { n: number }).n === 0;

/** GnuPG decrypts `m` with `who`'s key and finds the list key's good signature. */
async function gpgOpens(m: SinkMessage, who: Person, list: string): Promise<string> {
  const gpg = new Gpg();
  try {
    await gpg.importKey(who.privateArmored, who.passphrase);
    await gpg.importKey(listKeys[list]!.armor());
    const r = await gpg.run(['--decrypt'], m.raw, who.passphrase);
    expect(r.code, r.stderr).toBe(0);
    const signer = (await listKeys[list]!.getSigningKey()).getKeyID().toHex().toUpperCase();
    expect(r.status.some((st) => st.startsWith(`GOODSIG ${signer}`))).toBe(true);
    return r.stdout.toString('utf8');
  } finally {
    gpg.cleanup();
  }
}

function armored(m: SinkMessage): string {
  const a = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(m.raw.toString('utf8'));
  if (!a) throw new Error('no OpenPGP message in the mail');
  return a[0];
}

/** Decrypts with `who`'s key and checks the list key's signature; returns the inner entity's subject and text, and the entity itself. */
async function open(m: SinkMessage, who: Person, list: string): Promise<{ subject: string; text: string; entity: string }> {
  const message = await openpgp.readMessage({ armoredMessage: armored(m) });
  const { data, signatures } = await openpgp.decrypt({ message, decryptionKeys: who.privateKey, verificationKeys: listKeys[list]!, format: 'binary', expectSigned: true });
  await signatures[0]!.verified;
  expect(signatures[0]!.keyID.toHex()).toBe((await listKeys[list]!.getSigningKey()).getKeyID().toHex());
  const entity = Buffer.from(data as Uint8Array).toString('utf8');
  const parsed = await PostalMime.parse(entity);
  return { subject: parsed.subject ?? '', text: parsed.text ?? '', entity };
}

// ---- metrics ---------------------------------------------------------------------------------

describe('/metrics', () => {
  it('needs the operator token: an outsider without it, or with a wrong one, is refused', async () => {
    for (const auth of [null, 'not-the-token', `${token}x`]) {
      const r = await scrape(auth);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.text)).toMatchObject({ error: 'UNAUTHORIZED' });
      expect(r.text).not.toContain('letterlock_');
    }
    // A proxy header or a loopback peer changes nothing in token mode (the default).
    const viaProxy = await fetch(`${base}/metrics`, { headers: { 'x-forwarded-for': '127.0.0.1' } });
    expect(viaProxy.status).toBe(401);
  });

  it('counts a real fan-out while it runs: copies sent, wrap and fan-out histograms, queue depth, loop delay, refusals', async () => {
    const before = (await scrape()).text;
    const members = SEEDED + 1;
    const marker = `MARKER-metrics-${Date.now()}`;
    // One copy is refused for good (550), one is deferred once (451 then accepted).
    let deferredOnce = false;
    sink.refuse = (rcpt) => {
      if (rcpt === 's00007@sub.test') return 550;
      if (rcpt === 's00011@sub.test' && !deferredOnce) { deferredOnce = true; return 451; }
      return undefined;
    };
    try {
      const reply = await send(server.smtpPort, alice.address, FAN, await compose(alice, FAN, listKeys[FAN]!, `fan-out ${marker}\n`));
      expect(reply).toMatch(/^250 /);
      // Scrape while the copies go out: every scrape answers, counters only grow.
      const seen: number[] = [];
      const last = await waitUntil('every copy counted', async () => {
        const r = await scrape();
        expect(r.status).toBe(200);
        const sent = sample(r.text, 'letterlock_copies_sent_total', 'kind="copy"') - sample(before, 'letterlock_copies_sent_total', 'kind="copy"');
        seen.push(sent);
        return sent >= members - 1 && sample(r.text, 'letterlock_copies_failed_total', 'kind="copy"') > sample(before, 'letterlock_copies_failed_total', 'kind="copy"') ? r : null;
      }, 90_000);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(last.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const t = last.text;
      const d = (name: string, labels = '') => sample(t, name, labels) - sample(before, name, labels);
      expect(d('letterlock_copies_sent_total', 'kind="copy"')).toBe(members - 1);
      expect(d('letterlock_copies_failed_total', 'kind="copy"')).toBe(1);
      expect(d('letterlock_copies_deferred_total', 'kind="copy"')).toBe(1);
      expect(d('letterlock_fanout_duration_seconds_count')).toBe(1);
      expect(d('letterlock_fanout_duration_seconds_sum')).toBeGreaterThan(0);
      expect(d('letterlock_wrap_page_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(d('letterlock_wrapped_keys_total')).toBe(members);
      expect(d('letterlock_posts_total', 'outcome="accepted"')).toBe(1);
      expect(t).toMatch(/^letterlock_queue_depth\{state="queued"\} \d+$/m);
      expect(t).toMatch(/^letterlock_event_loop_delay_seconds\{window="60s"\} [\d.e-]+$/m);
      expect(t).toMatch(/^process_cpu_user_seconds_total \d/m); // the default process metrics
      expect(t).not.toContain(marker);
    } finally {
      sink.refuse = () => undefined;
    }
    // A refusal counts under its reason code.
    const r0 = sample((await scrape()).text, 'letterlock_refusals_total', 'reason="NOT_MEMBER"');
    await expect(send(server.smtpPort, stranger.address, FAN, await compose(stranger, FAN, listKeys[FAN]!, 'not a member\n'))).rejects.toMatchObject({ responseCode: 550 });
    expect(sample((await scrape()).text, 'letterlock_refusals_total', 'reason="NOT_MEMBER"')).toBe(r0 + 1);
  }, 150_000);
});

// ---- health ----------------------------------------------------------------------------------

describe('/health', () => {
  it('is ready when database, relay and keys are; 503 naming the relay while it is unreachable', async () => {
    const ok = await health();
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, ready: true, failing: [], checks: { database: { ok: true }, relay: { ok: true }, keys: { ok: true } } });
    expect(ok.body.eventLoopDelay).toMatchObject({ lastSecondMs: expect.any(Number), maxLastMinuteMs: expect.any(Number) });
    const port = sink.port;
    await sink.stop();
    try {
      const down = await waitUntil('503 for the relay', async () => { const h = await health(); return h.status === 503 ? h : null; });
      expect(down.body.ready).toBe(false);
      expect(down.body.ok).toBe(false);
      expect(down.body.failing).toEqual(['relay']);
      expect(down.body.checks.relay!.code).toBe('NET_ECONNREFUSED');
      expect(JSON.stringify(down.body)).not.toContain(String(port)); // the relay's address is not told
    } finally {
      await sink.start(port);
    }
    await waitUntil('ready again', async () => (await health()).status === 200);
  }, 60_000);
});

// ---- held-post notices ------------------------------------------------------------------------

describe('held-post notices', () => {
  it('go to each moderator and the owner, signed by the list key, encrypted to each one\'s key, with no word of the post', async () => {
    const marker = `MARKER-held-${Date.now()}`;
    const reply = await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, listKeys[MOD]!, `Body ${marker}\n`, `Subject ${marker}`));
    expect(reply).toMatch(/^250 .*held/);
    const heldId = ((await server.sql.get('SELECT max(id) AS id FROM held')) as { id: number }).id;
    const size = ((await server.sql.get('SELECT size FROM held WHERE id = ?', [heldId])) as { size: number }).size;
    const who = [owner, mod1, mod2];
    await sink.waitFor(() => who.every((p) => heldNotices(p.address).length >= 1), 30_000, 'held notices');
    await server.ops.held.idle();
    for (const p of who) {
      const got = heldNotices(p.address);
      expect(got, p.address).toHaveLength(1);
      const m = got[0]!;
      expect(m.raw.toString('utf8')).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
      const { subject, text, entity } = await open(m, p, MOD);
      expect(text).toContain(`Held id:    ${heldId}`);
      expect(text).toContain(`List:       ${MOD}`);
      expect(text).toContain(`From:       ${alice.address}`);
      expect(text).toContain(`Size:       ${size} bytes`);
      expect(text).toContain('Reason:     the list is moderated');
      expect(text).toContain(`letterlock held approve ${heldId}`);
      expect(text).toContain(`letterlock held reject ${heldId}`);
      expect(text).toContain(`/v1/admin/lists/mod%40lists.test/held/${heldId}/approve`);
      expect(subject).toBe(`Held post ${heldId} on ${MOD} awaits moderation`); // a protected header
      // Neither the raw mail nor its decryption carries anything of the post.
      for (const s of [m.raw.toString('utf8'), m.raw.toString('latin1'), entity, text]) {
        expect(s).not.toContain(marker);
        expect(s).not.toContain(Buffer.from(marker).toString('base64').slice(0, 12));
      }
      // Encrypted to that moderator alone: another one's key does not open it.
      const other = who.find((o) => o !== p)!;
      await expect(openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored(m) }), decryptionKeys: other.privateKey })).rejects.toThrow();
    }
    expect(sink.to('nobody@example.org')).toHaveLength(0);
  }, 60_000);

  it('GnuPG decrypts a notice and finds the list key\'s good signature', async () => {
    const gpg = new Gpg();
    try {
      await gpg.importKey(mod1.privateArmored, mod1.passphrase);
      await gpg.importKey(listKeys[MOD]!.armor());
      const r = await gpg.run(['--decrypt'], heldNotices(mod1.address)[0]!.raw, mod1.passphrase);
      expect(r.code, r.stderr).toBe(0);
      const signer = (await listKeys[MOD]!.getSigningKey()).getKeyID().toHex().toUpperCase();
      expect(r.status.some((s) => s.startsWith(`GOODSIG ${signer}`))).toBe(true);
    } finally {
      gpg.cleanup();
    }
  }, 60_000);

  it('stop when the list switches them off (letterlock list set --no-notify-held), and start again when on', async () => {
    const list = (await getList(server.sql, MOD))!;
    const before = heldNotices(owner.address).length;
    const off = letterlock('list', 'set', MOD, '--no-notify-held', '--json');
    expect(off.code, off.stderr).toBe(0);
    expect(JSON.parse(off.stdout)).toMatchObject({ address: MOD, notifyHeld: false, digest: true, moderators: [mod1.address, mod2.address, 'nobody@example.org'] });
    expect(await getNotifySettings(server.sql, list.id)).toMatchObject({ held: false, digest: true });
    expect(await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, listKeys[MOD]!, 'quiet\n'))).toMatch(/^250 .*held/);
    const quietId = ((await server.sql.get('SELECT max(id) AS id FROM held')) as { id: number }).id;
    const on = letterlock('list', 'set', MOD, '--notify-held');
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toContain('held notices on, digest on, moderators mod1@example.org, mod2@example.org, nobody@example.org');
    expect(await send(server.smtpPort, alice.address, MOD, await compose(alice, MOD, listKeys[MOD]!, 'loud\n'))).toMatch(/^250 .*held/);
    // Notices are made in order: once the second post's is out, the first was decided.
    await sink.waitFor(() => heldNotices(owner.address).length > before, 30_000, 'notice for the second post');
    await server.ops.held.idle();
    const after = heldNotices(owner.address).slice(before);
    expect(after).toHaveLength(1);
    const { text } = await open(after[0]!, owner, MOD);
    expect(text).toContain(`Held id:    ${quietId + 1}`);
  }, 60_000);
});

// ---- the owner's digest ---------------------------------------------------------------------------

describe('the owner\'s digest', () => {
  it('tells the owner of failed deliveries (by reason, with addresses) and of keys about to expire', async () => {
    const marker = `MARKER-digest-${Date.now()}`;
    sink.refuse = (rcpt) => (rcpt === failing.address ? 550 : undefined);
    try {
      expect(await send(server.smtpPort, alice.address, DIG, await compose(alice, DIG, listKeys[DIG]!, `digest ${marker}\n`))).toMatch(/^250 /);
      const list = (await getList(server.sql, DIG))!;
      await waitUntil('the failure recorded', async () => ((await server.sql.get('SELECT count(*) AS n FROM owner_reports WHERE list_id = ? AND rcpt = ?', [list.id, failing.address])) as { n: number }).n > 0);
    } finally {
      sink.refuse = () => undefined;
    }
    const result = await server.ops.digest.run({ force: true });
    expect(result.find((r) => r.list === DIG)?.outcome).toBe('sent');
    await sink.waitFor(() => digests(owner.address).length === 1, 30_000, 'the digest');
    const m = digests(owner.address)[0]!;
    const { text, entity } = await open(m, owner, DIG);
    expect(text).toContain('Delivery failures: 1');
    expect(text).toMatch(/^ {4}SMTP_550 +1$/m);
    expect(text).toContain(`    ${failing.address} (SMTP_550)`);
    expect(text).toContain('Member keys that expire within 14 days: 1');
    expect(text).toMatch(new RegExp(`^ {4}${expiring.address} ${expiring.publicKey.getFingerprint().toUpperCase()} expires \\d{4}-`, 'm'));
    expect(text).not.toContain(alice.address); // delivered fine: not listed
    for (const s of [m.raw.toString('utf8'), entity, text]) expect(s).not.toContain(marker);
    expect(m.raw.toString('utf8')).not.toContain(failing.address); // addresses only inside the encryption
    // Not due again: a regular pass sends nothing.
    expect((await server.ops.digest.run()).find((r) => r.list === DIG)?.outcome).toBe('not-due');
  }, 90_000);

  it('is not sent when the list switches it off (letterlock list set --no-digest)', async () => {
    const list = (await getList(server.sql, DIG))!;
    // The daily key-expiry check (its first run a minute after the start: during this test
    // on a busy machine) tells the owner of the expiring key while the digest is off, a
    // notice row of its own. Run now, with the digest on, it warns the members only, once
    // per key, so it adds nothing while the digest is off (the key-expiry test below allows
    // for a check that has run already).
    const check = await fetch(`${base}/v1/admin/key-expiry-check`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(check.status).toBe(200);
    const off = letterlock('list', 'set', DIG, '--no-digest');
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toContain('held notices on, digest off');
    const rows = async () => ((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE list_id = ? AND kind = 'notice' AND rcpt = ?", [list.id, owner.address])) as { n: number }).n;
    const queued = await rows();
    expect(queued).toBe(1); // the previous test's
    expect((await server.ops.digest.run({ force: true })).find((r) => r.list === DIG)?.outcome).toBe('off');
    expect(await rows()).toBe(queued);
    await setNotifySettings(server.sql, list.id, { digest: true });
    // Still something to tell (the expiring key): on again, it is sent.
    expect((await server.ops.digest.run({ force: true })).find((r) => r.list === DIG)?.outcome).toBe('sent');
    expect(await rows()).toBe(queued + 1);
  }, 60_000);
});

// ---- the owner's immediate failure report ---------------------------------------------------------

describe('the owner\'s failure report', () => {
  it('is signed by the list key and encrypted to the owner\'s key: no address or reason in clear', async () => {
    const marker = `MARKER-report-${Date.now()}`;
    const before = reports(owner.address, DIG).length;
    sink.refuse = (rcpt) => (rcpt === failing.address ? 550 : undefined);
    let got: SinkMessage[] = [];
    let text = '';
    let subject = '';
    try {
      expect(await send(server.smtpPort, alice.address, DIG, await compose(alice, DIG, listKeys[DIG]!, `report ${marker}\n`))).toMatch(/^250 /);
      // Reports gather for a moment: wait for the one that names this failure.
      await waitUntil('the sealed report', async () => {
        got = reports(owner.address, DIG).slice(before);
        for (const m of got) {
          const o = await open(m, owner, DIG);
          if (o.text.includes(`- ${failing.address}: SMTP_550`)) {
            ({ text, subject } = o);
            return true;
          }
        }
        return false;
      }, 60_000);
    } finally {
      sink.refuse = () => undefined;
    }
    expect(subject).toMatch(/^Delivery problems on dig@lists\.test \(\d+\)$/); // a protected header
    expect(text).toContain('did not receive a post');
    expect(text).not.toContain(alice.address); // delivered fine: not listed
    for (const m of got) {
      const raw = m.raw.toString('utf8');
      expect(raw).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
      const body = raw.slice(raw.indexOf('\r\n\r\n'));
      expect(body).not.toContain(failing.address);
      expect(raw).not.toContain('SMTP_550');
      expect(raw).not.toContain('Delivery problems');
      expect(raw).not.toContain(marker);
      expect(text).not.toContain(marker);
      // The owner's key alone opens it.
      await expect(openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored(m) }), decryptionKeys: failing.privateKey })).rejects.toThrow();
    }
    const clear = await gpgOpens(got.at(-1)!, owner, DIG);
    expect(clear).toContain('Delivery problems on dig@lists.test');
  }, 120_000);

  it('is not sent in clear to an owner without a key: a warning is logged and the failure stays listed', async () => {
    const list = (await getList(server.sql, NOKEY))!;
    sink.refuse = (rcpt) => (rcpt === failing.address ? 550 : undefined);
    try {
      expect(await send(server.smtpPort, alice.address, NOKEY, await compose(alice, NOKEY, await listPublicKey(dataDir, NOKEY), 'no key\n'))).toMatch(/^250 /);
      await waitUntil('the failure reported', async () => ((await server.sql.get('SELECT count(*) AS n FROM owner_reports WHERE list_id = ? AND reported = 1', [list.id])) as { n: number }).n > 0, 60_000);
    } finally {
      sink.refuse = () => undefined;
    }
    expect(logged('ops.owner_unreachable').filter((e) => e.list === NOKEY)).toEqual([expect.objectContaining({ level: 40, list: NOKEY, count: 1, code: 'NO_KEY' })]);
    expect((await server.sql.get("SELECT count(*) AS n FROM deliveries WHERE rcpt = ?", [KEYLESS]))).toEqual({ n: 0 });
    await waitUntil('the queue drained', queueDrained);
    expect(sink.to(KEYLESS)).toHaveLength(0);
    const r = await fetch(`${base}/v1/admin/lists/${encodeURIComponent(NOKEY)}/failures`, { headers: { authorization: `Bearer ${token}` } });
    const { failures } = await r.json() as { failures: Array<{ rcpt: string; state: string; reason: string }> };
    expect(failures).toEqual([expect.objectContaining({ rcpt: failing.address, state: 'failed', reason: expect.stringMatching(/^SMTP_550/) })]);
  }, 120_000);
});

// ---- the daily key-expiry check -----------------------------------------------------------------

describe('the daily key-expiry check', () => {
  it('warns each member sealed to their key (in clear only when that key has expired), and the owner only when the digest is off', async () => {
    // The daily timer may have run already (a minute after start): the mails are the same, once per key.
    const r = await fetch(`${base}/v1/admin/key-expiry-check`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const who: Array<[Person, string]> = [[soon, EXP], [soon2, EXPNK], [soon3, KEEP], [expiring, DIG]];
    await sink.waitFor(() => who.every(([p, l]) => keyNotices(p.address, l).length > 0) && sink.to(gone.address).length > 0 && keyNotices(owner.address, EXP).length > 0, 60_000, 'the key notices');
    await waitUntil('the queue drained', queueDrained);

    for (const [p, l] of who) {
      const got = keyNotices(p.address, l);
      expect(got, p.address).toHaveLength(1);
      const raw = got[0]!.raw.toString('utf8');
      expect(raw).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
      const fpr = p.publicKey.getFingerprint().toUpperCase();
      expect(raw).not.toContain(fpr);
      const { subject, text } = await open(got[0]!, p, l);
      expect(subject).toBe(`Your key for ${l} expires soon`);
      expect(text).toContain(`Your OpenPGP key ${fpr}, registered for ${l}, expires on `);
    }
    expect(await gpgOpens(keyNotices(soon.address, EXP)[0]!, soon, EXP)).toContain('expires soon');

    // The expired key: the clear notice (metadata only) is the one way to reach its holder.
    const clear = sink.to(gone.address);
    expect(clear).toHaveLength(1);
    const goneText = clear[0]!.raw.toString('utf8');
    expect(goneText).toContain(`Subject: Your key for ${EXP} expires soon`);
    expect(goneText).toContain(`Your OpenPGP key ${gone.fingerprint}, registered for ${EXP}, expired on `);
    expect(goneText).not.toMatch(/BEGIN PGP MESSAGE/);

    // Digest off: the owner's summary, sealed; the member addresses only inside.
    const summary = keyNotices(owner.address, EXP);
    expect(summary).toHaveLength(1);
    const raw = summary[0]!.raw.toString('utf8');
    for (const a of [soon.address, gone.address]) expect(raw).not.toContain(a);
    const { subject, text } = await open(summary[0]!, owner, EXP);
    expect(subject).toBe(`Member keys of ${EXP} expiring soon`);
    expect(text).toContain(`  ${soon.address} (${soon.publicKey.getFingerprint().toUpperCase()}, `);
    expect(text).toContain(`  ${gone.address} (${gone.fingerprint}, `);
    // Digest on: the digest lists the key; no second mail to the owner.
    expect(keyNotices(owner.address, KEEP)).toHaveLength(0);
    // An owner without a key gets nothing, never the list in clear; the log says so.
    expect(sink.to(KEYLESS2)).toHaveLength(0);
    expect(logged('ops.owner_unreachable').filter((e) => e.list === EXPNK)).toEqual([expect.objectContaining({ level: 40, count: 1, code: 'NO_KEY' })]);

    // Once per key: a second run warns nobody.
    const again = await fetch(`${base}/v1/admin/key-expiry-check`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(await again.json()).toEqual({ warned: 0 });
  }, 120_000);
});

// ---- last: the database goes away -----------------------------------------------------------------

describe('/health with the database closed', () => {
  it('answers 503 naming the database (and the server keeps answering)', async () => {
    await server.ops.held.idle();
    server.sql.close();
    const h = await health();
    expect(h.status).toBe(503);
    expect(h.body.ready).toBe(false);
    expect(h.body.failing).toContain('database');
    expect(h.body.checks.database).toEqual({ ok: false, code: 'DB_CLOSED' });
    // /metrics still answers (the gauges that need the database are left out).
    expect((await scrape()).status).toBe(200);
  });
});
