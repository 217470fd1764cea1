// The crash test: the server is killed with SIGKILL while it delivers one post to
// 2,000 subscribers, then restarted. Every subscriber must end up with the post;
// the test prints how many got it twice (at most the copies that were in flight).

import { rmSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { openData } from '../../../server/app.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { addList, compose, initData, listPublicKey, person, seedMembers, send, Sink, SECRET, spawnServer, stopChild, tempDir, type Child } from './harness.ts';

const LIST = 'crash@lists.test';
const N = 2000;
let sink: Sink | null = null;
let child: Child | null = null;
let dataDir = '';

afterAll(async () => {
  if (child) await stopChild(child, 'SIGKILL');
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

it(`SIGKILL during delivery to ${N} subscribers: everyone gets the post after restart`, async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('crash');
  await initData(dataDir, sink.port, { delivery: { concurrency: 32, batch: 64, retryBaseMs: 150, retryMaxMs: 1000 } });
  const t0 = performance.now();
  const pool = await Promise.all(Array.from({ length: 8 }, (_, i) => person(`pool${i}@pool.test`)));
  const sender = await person('sender@example.org');
  await addList(dataDir, LIST, {}, [sender]);
  const addresses = await seedMembers(dataDir, LIST, N - 1, pool);
  addresses.push(sender.address);
  console.log(`crash test: ${N} members set up in ${(performance.now() - t0).toFixed(0)} ms`);

  child = await spawnServer(dataDir);
  const listKey = await listPublicKey(dataDir, LIST);
  const reply = await send(child.smtpPort, sender.address, LIST, await compose(sender, LIST, listKey, 'crash test post'));
  expect(reply).toMatch(/accepted/);
  const copies = () => sink!.messages.filter((m) => m.from.startsWith('crash+bounces-'));
  await sink.waitFor(() => copies().length >= N / 4, 60_000, 'a quarter of the copies');
  await stopChild(child, 'SIGKILL');
  const atKill = copies().length;
  expect(atKill).toBeLessThan(N); // killed mid-delivery, not after

  const sql = await openData(dataDir, SECRET);
  const before = await new QueueStore(sql).stats();
  await sql.close();
  child = await spawnServer(dataDir);
  await sink.waitFor(() => new Set(copies().flatMap((m) => m.to)).size >= N, 120_000, 'every subscriber');
  await new Promise((r) => setTimeout(r, 500)); // let stragglers (duplicates) arrive
  await stopChild(child);
  child = null;

  const perRcpt = new Map<string, number>();
  for (const m of copies()) for (const t of m.to) perRcpt.set(t, (perRcpt.get(t) ?? 0) + 1);
  expect(addresses.every((a) => (perRcpt.get(a) ?? 0) >= 1)).toBe(true);
  const twice = [...perRcpt.values()].filter((n) => n > 1).length;
  const db2 = await openData(dataDir, SECRET);
  const after = await new QueueStore(db2).stats();
  await db2.close();
  console.log(`crash test: killed after ${atKill}/${N} copies; state at kill ${JSON.stringify(before)}; ` +
    `after restart every subscriber has the post; ${twice} got it twice (server counted ${after.resent_after_crash} possibly re-sent)`);
  expect(after.sent).toBe(N);
  expect(twice).toBeLessThanOrEqual(after.resent_after_crash!); // every duplicate is one the server counted
  expect(twice).toBeLessThanOrEqual(64 + 32); // at most one claimed batch plus the copies in flight
});
