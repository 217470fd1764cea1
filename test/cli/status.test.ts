// `letterlock status` and `held` against a real fan-out: the list server runs as a
// child process (started once for this file), delivering to a loopback SMTP sink
// that accepts most copies, defers some (451) and refuses some (550). Status must
// count exactly what the sink saw, with a rate and an ETA; --watch must refresh
// until Ctrl-C; held posts are listed with their list address and date, approved
// and rejected, human and --json.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import type { PublicKey } from 'openpgp';
import {
  addList, compose, initData, listPublicKey, person, SECRET, seedMembers, send, Sink, spawnServer, stopChild, tempDir,
  type Child, type Person,
} from '../integration/server/harness.ts';
import { BIN, letterlockAsync, oneLine, ROOT, type Run } from './run.ts';
import { spawn } from 'node:child_process';

vi.setConfig({ testTimeout: 600_000, hookTimeout: 300_000 });

const OPEN = 'open@lists.test';
const MOD = 'mod@lists.test';
const root = tempDir('cli-status');
const dataDir = join(root, 'data');
const env = { LETTERLOCK_SECRET: SECRET };
const sink = new Sink();
let child: Child | null = null;
let alice: Person;
let bob: Person;
let keys: Record<string, PublicKey> = {};
let seeded: string[] = [];
const DEFER = 10;
const FAIL = 5;

const cli = (args: string[]): Promise<Run> => letterlockAsync([...args, '--data', dataDir], env);

interface PostStatus {
  id: number; list: string; members: number; wrapped: number; wrapDone: boolean; queued: number; sending: number; deferred: number;
  sent: number; failed: number; bounced: number; ratePerSecond: number | null; etaSeconds: number | null; state: string;
}
interface Snapshot { at: string; held: number; queue: Record<string, number>; posts: PostStatus[] }

async function snapshot(): Promise<Snapshot> {
  const r = await cli(['status', '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Snapshot;
}

/** Polls `status --json` until the condition holds (each run takes seconds on a busy machine). */
async function statusUntil(what: string, ok: (s: Snapshot) => boolean, timeoutMs = 180_000): Promise<Snapshot> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await snapshot();
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`status never showed ${what}: ${JSON.stringify(s.posts)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  const relayPort = await sink.start();
  // Long retry delays: a deferred copy stays deferred while the test looks at it.
  await initData(dataDir, relayPort, { delivery: { retryBaseMs: 120_000, retryMaxMs: 120_000, reportDelayMs: 200 } });
  await addList(dataDir, OPEN, { postPolicy: 'members' }, [alice, bob]);
  await addList(dataDir, MOD, { postPolicy: 'moderated' }, [alice, bob]);
  seeded = await seedMembers(dataDir, OPEN, 150, [alice, bob]);
  const deferred = new Set(seeded.slice(0, DEFER));
  const failed = new Set(seeded.slice(DEFER, DEFER + FAIL));
  sink.refuse = (rcpt) => (deferred.has(rcpt) ? 451 : failed.has(rcpt) ? 550 : undefined);
  keys = { [OPEN]: await listPublicKey(dataDir, OPEN), [MOD]: await listPublicKey(dataDir, MOD) };
  child = await spawnServer(dataDir);
});

afterAll(async () => {
  if (child) await stopChild(child);
  await sink.stop();
  rmSync(root, { recursive: true, force: true });
});

it('status counts a real fan-out: wrapped, sent, deferred, failed, with rate and ETA', async () => {
  const members = seeded.length + 2;
  await send(child!.smtpPort, alice.address, OPEN, await compose(alice, OPEN, keys[OPEN]!, 'a post for the status test'));
  const accepted = members - DEFER - FAIL;
  await sink.waitFor(() => new Set(sink.messages.filter((m) => m.from.startsWith('open+bounces-')).flatMap((m) => m.to)).size >= accepted, 180_000, 'accepted copies');
  const s = await statusUntil('every copy settled or deferred', (x) => {
    const p = x.posts[0];
    return Boolean(p && p.wrapDone && p.sent === accepted && p.failed + p.bounced === FAIL && p.deferred === DEFER);
  });
  const p = s.posts[0]!;
  expect(p).toMatchObject({ list: OPEN, members, wrapped: members, wrapDone: true, queued: 0, sending: 0, state: 'delivering' });
  expect(p.ratePerSecond).toBeGreaterThan(0);
  // The deferred copies are still due, and not before their next attempt (about 2 minutes away).
  expect(p.etaSeconds).toBeGreaterThan(30);
  expect(s.queue.failed! + s.queue.bounced!).toBeGreaterThanOrEqual(FAIL);
  expect(Object.keys(p).sort()).toEqual(['bounced', 'deferred', 'etaSeconds', 'failed', 'id', 'list', 'members', 'messageId', 'queued',
    'ratePerSecond', 'received', 'sending', 'sent', 'size', 'state', 'wrapDone', 'wrapped'].sort());

  const human = await cli(['status']);
  expect(human.status, human.stderr).toBe(0);
  expect(human.stdout).toMatch(/^queue: \d+ queued, \d+ sending, \d+ sent, \d+ failed, \d+ bounced; 0 held posts$/m);
  expect(human.stdout).toMatch(/^node \S+$/m); // this node's id (several nodes on one database), on a line of its own
  expect(human.stdout).toMatch(/^POST\s+LIST\s+RECEIVED\s+SIZE\s+WRAPPED\s+QUEUED\s+DEFERRED\s+SENT\s+FAILED\s+RATE\s+ETA\s+STATE$/m);
  expect(human.stdout).toMatch(new RegExp(`^${p.id}\\s+open@lists\\.test\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\s+[\\d.]+ K?B\\s+${members}/${members}\\s+0\\s+${DEFER}\\s+${accepted}\\s+${FAIL}\\s+[\\d.]+/s\\s+(\\d+s|\\d+m \\d\\ds)\\s+delivering$`, 'm'));
});

it('status --watch refreshes until Ctrl-C; with --json, one snapshot a line', async () => {
  for (const json of [false, true]) {
    const proc = spawn(process.execPath, [BIN, 'status', '--watch', '--interval', '1', '--data', dataDir, ...(json ? ['--json'] : [])], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const count = () => (json ? out.split('\n').filter((l) => l.startsWith('{')).length : out.split('\nqueue: ').length - 1);
    const end = Date.now() + 120_000;
    while (count() < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(count(), out).toBeGreaterThanOrEqual(3);
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    if (json) for (const l of out.split('\n').filter(Boolean)) expect((JSON.parse(l) as Snapshot).posts[0]!.list).toBe(OPEN);
  }
});

it('held posts: listed with list address, sender, date and size; approved and rejected; human and --json', async () => {
  await send(child!.smtpPort, alice.address, MOD, await compose(alice, MOD, keys[MOD]!, 'held one'));
  await send(child!.smtpPort, bob.address, MOD, await compose(bob, MOD, keys[MOD]!, 'held two'));
  const end = Date.now() + 120_000;
  let listed: Array<{ id: number; list: string; sender: string; messageId: string | null; size: number; received: string; reason: string }> = [];
  while (listed.length < 2 && Date.now() < end) listed = JSON.parse((await cli(['held', 'list', '--json'])).stdout);
  expect(listed).toHaveLength(2);
  expect(listed[0]).toMatchObject({ list: MOD, sender: 'alice@example.org', reason: 'moderated' });
  expect(Object.keys(listed[0]!).sort()).toEqual(['id', 'list', 'messageId', 'reason', 'received', 'sender', 'size']);
  expect(Date.parse(listed[0]!.received)).toBeGreaterThan(Date.now() - 600_000);

  const human = await cli(['held', 'list', MOD]);
  expect(human.status).toBe(0);
  expect(human.stdout).toMatch(new RegExp(`^${listed[0]!.id}\\s+mod@lists\\.test\\s+from alice@example\\.org\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\\s+[\\d.]+ KB\\s+moderated list$`, 'm'));
  expect(human.stdout).toMatch(new RegExp(`^${listed[1]!.id}\\s+mod@lists\\.test\\s+from bob@example\\.org\\s`, 'm'));
  expect(human.stdout).not.toMatch(/list \d/);
  expect((await cli(['status'])).stdout).toMatch(/; 2 held posts$/m);

  const approved = await cli(['held', 'approve', String(listed[0]!.id), '--json']);
  expect(approved.status, approved.stderr).toBe(0);
  expect(JSON.parse(approved.stdout)).toEqual({ id: listed[0]!.id, result: 'accepted', copies: 2, code: null });
  const rejected = await cli(['held', 'reject', String(listed[1]!.id)]);
  expect(rejected.status).toBe(0);
  expect(rejected.stdout.trim()).toBe(`held post ${listed[1]!.id}: refused (REJECTED_BY_MODERATOR)`);
  const again = await cli(['held', 'reject', String(listed[1]!.id)]);
  expect(again.status).toBe(1);
  expect(oneLine(again)).toBe(`letterlock: no held post ${listed[1]!.id} (see: letterlock held list)`);

  // The approved post's fan-out finishes: both copies sent, state done, ETA done.
  const s = await statusUntil('the approved post done', (x) => x.posts.some((p) => p.list === MOD && p.state === 'done'));
  expect(s.posts.find((p) => p.list === MOD)).toMatchObject({ members: 2, wrapped: 2, sent: 2, failed: 0, etaSeconds: 0 });
  expect(s.held).toBe(0);
  expect((await cli(['status'])).stdout).toMatch(/^\d+\s+mod@lists\.test\s.*\s2\/2\s+0\s+0\s+2\s+0\s+[\d.]+\/s\s+done\s+done$/m);
  const empty = await cli(['held', 'list']);
  expect(empty.stdout).toBe('');
  expect(empty.stderr.trim()).toBe('No held posts.');
});
