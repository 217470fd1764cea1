// Disk full (issue 10, item 7). An ENOSPC on the log writer once crashed the
// process. Here the data folder (database, log) lives on a 4 MB tmpfs: it is
// filled to the last byte while `letterlock serve` (a child process) runs; posts
// must then be answered 451 (a sending MTA retries) with the process up; once
// space is freed the next post is answered 250 and delivered, and the log says
// how many lines it had to drop. Mounting needs root (CI runs as root).

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addList, compose, initData, listPublicKey, person, send, Sink, spawnServer, stopChild, tempDir, type Child, type Person } from './harness.ts';
import type { PublicKey } from 'openpgp';

const LIST = 'full@lists.test';
const isRoot = process.getuid?.() === 0;
let mountDir = '';
let mounted = false;
let sink: Sink;
let child: Child | null = null;
let dataDir = '';
let alice: Person, bob: Person;
let listKey: PublicKey;

function alive(): boolean {
  return child !== null && child.proc.exitCode === null && child.proc.signalCode === null;
}

beforeAll(async () => {
  if (!isRoot) return;
  mountDir = tempDir('diskfull');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountDir]);
  mounted = true;
  sink = new Sink();
  await sink.start();
  dataDir = join(mountDir, 'data');
  mkdirSync(dataDir);
  await initData(dataDir, sink.port);
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, {}, [alice, bob]);
  listKey = await listPublicKey(dataDir, LIST);
  child = await spawnServer(dataDir);
});

afterAll(async () => {
  if (child) await stopChild(child, 'SIGKILL');
  await sink?.stop();
  if (mounted) execFileSync('umount', ['-l', mountDir]);
  if (mountDir) rmSync(mountDir, { recursive: true, force: true });
});

/** Fills the file system to the last byte; returns the filler's path. */
function fill(): string {
  const path = join(mountDir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      for (;;) {
        try {
          writeSync(fd, chunk, 0, size);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  // The log file's last page may still have room: top it up with whole padding
  // lines, so the server's next log line finds no space either.
  const log = openSync(join(dataDir, 'logs', 'server.log'), 'a');
  try {
    for (let pad = 4096; pad >= 0; pad = pad > 0 ? Math.floor(pad / 2) : -1) {
      for (;;) {
        try {
          writeSync(log, `{"pad":"${'x'.repeat(pad)}"}\n`);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    closeSync(log);
  }
  return path;
}

/** A post big enough that the database must grow to take it. */
async function bigPost(n: number): Promise<string> {
  return compose(alice, LIST, listKey, `disk full ${n}\n${randomBytes(150 * 1024).toString('base64')}`);
}

async function reply(raw: string): Promise<{ code: number; text: string }> {
  try {
    return { code: 250, text: await send(child!.smtpPort, alice.address, LIST, raw) };
  } catch (e) {
    const err = e as { responseCode?: number; response?: string };
    return { code: err.responseCode ?? 0, text: err.response ?? String(e) };
  }
}

it.skipIf(!isRoot)('disk full: posts get 451 and the server stays up; with space back the next post is answered 250 and delivered', { timeout: 240_000 }, async () => {
  const copies = () => sink.to(bob.address).filter((m) => m.from.startsWith('full+bounces-')).length;
  expect((await reply(await compose(alice, LIST, listKey, 'before the disk fills'))).code).toBe(250);
  await sink.waitFor(() => copies() === 1, 60_000, 'the first copy');

  const filler = fill();
  const replies: number[] = [];
  for (let i = 0; i < 6 && !replies.includes(451); i++) replies.push((await reply(await bigPost(i))).code);
  // Keep the disk full a little longer: more posts, and the worker and logger keep trying.
  for (let i = 0; i < 3; i++) replies.push((await reply(await bigPost(10 + i))).code);
  console.log(`disk full test: replies while full ${JSON.stringify(replies)}`);
  expect(replies).toContain(451);
  expect(replies.every((c) => c === 451 || c === 250)).toBe(true);
  expect(alive(), child!.output().slice(-2000)).toBe(true);

  unlinkSync(filler);
  const before = copies();
  const after = await reply(await compose(alice, LIST, listKey, 'after space returns'));
  expect(after.code, after.text).toBe(250);
  expect(after.text).toMatch(/accepted/);
  await sink.waitFor(() => copies() > before, 60_000, 'the copy after space returned');
  expect(alive()).toBe(true);

  // The log lost lines while the disk was full, counted them, and writes again.
  const log = readFileSync(join(dataDir, 'logs', 'server.log'), 'utf8');
  // (The padding written above may end in a torn line of its own, so match rather than parse.)
  const dropped = Array.from(log.matchAll(/"event":"log\.dropped","count":(\d+)/g), (m) => Number(m[1]));
  console.log(`disk full test: log.dropped counts ${JSON.stringify(dropped)}`);
  expect(dropped.length).toBeGreaterThan(0);
  expect(dropped.every((n) => n > 0)).toBe(true);
});

it.runIf(!isRoot)('disk full: skipped, mounting a tmpfs needs root (CI runs as root)', () => {
  console.log('diskfull.test.ts: not root, so the tmpfs disk-full test is skipped');
});
