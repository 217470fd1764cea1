// The event loop never blocks on input (issue 10): while the worst inputs known
// for the MIME parser and the payload finder are processed, the server's HTTP
// API keeps answering within 1 s, every hostile mail gets an SMTP answer, and a
// valid post afterwards is accepted and delivered. The server runs as a child
// process, so its event loop is not the test's.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addList, compose, initData, listPublicKey, person, send, Sink, spawnServer, stopChild, tempDir, type Child, type Person } from './harness.ts';

const LIST = 'loop@lists.test';
let sink: Sink;
let child: Child;
let dataDir = '';
let alice: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('loop');
  // A short budget so the test's slowest input (a parser blow-up) is cut off quickly.
  await initData(dataDir, sink.port, { pipeline: { concurrency: 2, maxWaiting: 32, budgetMs: 8_000 } });
  alice = await person('alice@example.org');
  await addList(dataDir, LIST, {}, [alice]);
  child = await spawnServer(dataDir);
});

afterAll(async () => {
  if (child) await stopChild(child, 'SIGKILL');
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function mail(headers: string, body: string): string {
  return `From: <alice@example.org>\r\nTo: <${LIST}>\r\nMessage-ID: <hostile-${Math.random()}@example.org>\r\n${headers}\r\n${body}`;
}

const encodedWords = Array.from({ length: 100_000 }, (_, i) => `=?utf-8?b?${Buffer.from(`w${i}`).toString('base64')}?=`).join(' ');

const HOSTILE: Array<[string, () => string]> = [
  ['257 KB of "<" in an HTML body', () => mail('Content-Type: text/html\r\n', '<'.repeat(257 * 1024))],
  ['"<a" 200,000 times in an HTML body', () => mail('Content-Type: text/html\r\n', '<a'.repeat(200_000))],
  ['a 1.7 MB Subject of 100,000 encoded words', () => mail(`Subject: ${encodedWords}\r\nContent-Type: text/plain\r\n`, 'hi\r\n')],
  ['200,000 armor BEGIN lines without an END', () => mail('Content-Type: text/plain\r\n', '-----BEGIN PGP MESSAGE-----\r\n'.repeat(200_000))],
  ['20 MB of short lines (the MIME parser takes ~30 s)', () => mail('Content-Type: text/plain\r\n', 'xxxxxx\r\n'.repeat(2_500_000))],
  ['5,000 nested multiparts', () => mail('Content-Type: multipart/mixed; boundary=b0\r\n', Array.from({ length: 5000 }, (_, i) => `--b${i}\r\nContent-Type: multipart/mixed; boundary=b${i + 1}\r\n\r\n`).join(''))],
];

interface Health { eventLoopDelay: { lastSecondMs: number; maxLastMinuteMs: number } }

async function health(port: number): Promise<Health> {
  const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(30_000) });
  return (await r.json()) as Health;
}

/**
 * Polls GET /health until stopped; returns the answer times seen, sorted, and the worst
 * of the server's own loop delay over the last completed second in those answers: its
 * loop over the storm only (its minute figure would also count the server's start-up).
 */
function watchLatency(port: number): { stop(): Promise<{ times: number[]; loopWorstMs: number }> } {
  let running = true;
  const times: number[] = [];
  let loopWorstMs = 0;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const h = await health(port);
      times.push(performance.now() - t);
      loopWorstMs = Math.max(loopWorstMs, h.eventLoopDelay.lastSecondMs);
      await new Promise((res) => setTimeout(res, 25));
    }
  })();
  return { async stop() { running = false; await loop; return { times: times.sort((a, b) => a - b), loopWorstMs }; } };
}

async function reply(raw: string): Promise<string> {
  try {
    return await send(child.smtpPort, 'alice@example.org', LIST, raw);
  } catch (e) {
    return `${(e as { responseCode?: number }).responseCode ?? 'no reply'} ${(e as Error).message}`;
  }
}

describe('hostile input does not block the event loop', () => {
  it('HTTP answers within 1 s while the worst inputs are processed; each gets an answer; a valid post follows', async () => {
    // Start from a settled server: its start-up (module compilation, pools) is not the subject.
    const settleBy = Date.now() + 60_000;
    while ((await health(child.httpPort)).eventLoopDelay.lastSecondMs > 200) {
      if (Date.now() > settleBy) throw new Error('the server\'s event loop did not settle within 60 s of its start');
      await new Promise((res) => setTimeout(res, 250));
    }
    const watch = watchLatency(child.httpPort);
    const t0 = performance.now();
    const replies = await Promise.all(HOSTILE.map(async ([name, make]) => [name, await reply(make()), Math.round(performance.now() - t0)] as const));
    const watched = await watch.stop();
    const times = watched.times;
    // The server's own measure of its event loop over the storm: each second's worst, as
    // polled, and the last second once every answer is in.
    const loopWorstMs = Math.max(watched.loopWorstMs, (await health(child.httpPort)).eventLoopDelay.lastSecondMs);
    for (const [name, r, ms] of replies) console.log(`event loop: ${name}: ${r.slice(0, 90)} after ${ms} ms`);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
    console.log(`event loop: ${times.length} health requests: median ${at(0.5).toFixed(0)} ms, p95 ${at(0.95).toFixed(0)} ms, ` +
      `worst ${at(1).toFixed(0)} ms; the server's own worst event-loop delay ${loopWorstMs} ms`);
    expect(times.length).toBeGreaterThan(10);
    // The property: the server's loop never stalled for a second. From outside, the
    // answer time also counts CPU the machine gave to other processes, so the
    // bound there is on the 95th percentile; the worst is printed.
    expect(loopWorstMs).toBeLessThan(1000);
    expect(at(0.95)).toBeLessThan(1000);
    for (const [, r] of replies) {
      expect(r).not.toMatch(/^no reply|^4\d\d/); // decided, not left to retry
      expect(r).not.toMatch(/accepted/);
    }
    expect(replies.find(([n]) => n.startsWith('a 1.7 MB'))![1]).toMatch(/HEADERS_TOO_LARGE|header/i);
    expect(replies.find(([n]) => n.startsWith('20 MB'))![1]).toMatch(/TOO_COMPLEX|too long/i);

    const listKey = await listPublicKey(dataDir, LIST);
    expect(await reply(await compose(alice, LIST, listKey, 'after the storm'))).toMatch(/accepted/);
    await sink.waitFor(() => sink.to(alice.address).length >= 1, 60_000, 'the valid post delivered');
  });
});
