// SMTP connection hygiene (issue 10, item 8). 32 idle connections that sent NOOP
// now and then once held every slot (maxClients) for 60 s at a time, renewably.
// Here one address floods the real server from 127.0.0.2 (Linux loopback accepts
// any 127/8 source address) while a real post comes from 127.0.0.1: the post
// gets through, the flooder gets 421s, and its admitted connections are cut at
// the DATA deadline although they keep sending NOOP. Also: the command cap, the
// flood cool-down, and the operator's trusted clients.

import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir, type Person } from './harness.ts';

const LIST = 'hygiene@lists.test';
const DEADLINE_MS = 4000;
const PER_IP = 10;
const FLOOD_PER_MINUTE = 45;
let sink: Sink;
let dataDir = '';
let server: RunningServer;
let alice: Person, bob: Person;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('hygiene');
  await initData(dataDir, sink.port, {
    smtp: {
      port: 0, dataDeadlineMs: DEADLINE_MS, maxCommandsBeforeData: 20, perIpConnections: PER_IP,
      floodConnectionsPerMinute: FLOOD_PER_MINUTE, floodCooldownMs: 60_000, trustedClients: ['127.0.0.6'],
    },
  });
  [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, {}, [alice, bob]);
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
});

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** A bare SMTP client from a chosen loopback address that records every reply line. */
class RawClient {
  readonly lines: string[] = [];
  readonly socket: Socket;
  closedAt: number | null = null;
  readonly openedAt = performance.now();
  private buf = '';

  constructor(localAddress: string) {
    this.socket = connect({ host: '127.0.0.1', port: server.smtpPort, localAddress });
    this.socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      let i;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => { this.closedAt = performance.now(); });
  }

  write(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\r\n`);
  }

  async waitFor(test: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!test()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.lines.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The first reply: 220 (admitted) or 421 (refused). */
  async greeting(): Promise<string> {
    await this.waitFor(() => this.lines.length > 0 || this.closedAt !== null, 15_000, 'a greeting');
    return this.lines[0] ?? '(closed)';
  }

  end(): void {
    this.socket.destroy();
  }
}

it('a flood of NOOP-ing connections from one address: the flooder gets 421s and is cut at the deadline; a real post gets through', { timeout: 120_000 }, async () => {
  const flood = Array.from({ length: 40 }, () => new RawClient('127.0.0.2'));
  const noop = setInterval(() => { for (const c of flood) c.write('NOOP'); }, 1000);
  try {
    const greetings = await Promise.all(flood.map((c) => c.greeting()));
    const admitted = flood.filter((_, i) => greetings[i]!.startsWith('220'));
    const refused = greetings.filter((g) => g.startsWith('421'));
    expect(admitted.length).toBe(PER_IP);
    expect(refused.length).toBe(40 - PER_IP);
    for (const c of admitted) c.write('EHLO flood.test');

    // A real sender on another address is not locked out (an MTA would retry a 421; so may we).
    const listKey = await listPublicKey(dataDir, LIST);
    const post = await compose(alice, LIST, listKey, 'through the flood');
    const t0 = performance.now();
    let reply = '';
    for (let attempt = 0; attempt < 5 && !reply; attempt++) {
      try {
        reply = await send(server.smtpPort, alice.address, LIST, post);
      } catch (e) {
        if ((e as { responseCode?: number }).responseCode !== 421) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    console.log(`hygiene test: post accepted ${(performance.now() - t0).toFixed(0)} ms into a flood of 40 connections`);
    expect(reply).toMatch(/accepted/);
    await sink.waitFor(() => sink.to(bob.address).length > 0, 60_000, "bob's copy");

    // The admitted flooders keep sending NOOP, yet each is cut at the deadline.
    for (const c of admitted) await c.waitFor(() => c.closedAt !== null, DEADLINE_MS + 10_000, 'the deadline cut');
    for (const c of admitted) {
      expect(c.lines.some((l) => /^421 .*no message in time/i.test(l))).toBe(true);
      expect(c.closedAt! - c.openedAt).toBeGreaterThanOrEqual(DEADLINE_MS - 200);
      expect(c.closedAt! - c.openedAt).toBeLessThan(DEADLINE_MS + 8000);
      expect(c.lines.filter((l) => l.startsWith('250')).length).toBeGreaterThan(1); // NOOPs were answered meanwhile
    }
  } finally {
    clearInterval(noop);
    for (const c of flood) c.end();
  }
});

it('too many commands before DATA: 421 and the connection is closed', async () => {
  const c = new RawClient('127.0.0.4');
  expect(await c.greeting()).toMatch(/^220/);
  c.write('EHLO cmd.test');
  for (let i = 0; i < 40; i++) c.write('NOOP');
  await c.waitFor(() => c.closedAt !== null, 15_000, 'the close');
  expect(c.lines.some((l) => /^421 .*too many commands/i.test(l))).toBe(true);
  expect(c.lines.filter((l) => /^250 /.test(l)).length).toBeLessThan(21);
});

it('more than N connections a minute from one address: 421 for a cool-down, even one at a time', { timeout: 120_000 }, async () => {
  const replies: string[] = [];
  for (let i = 0; i < FLOOD_PER_MINUTE + 5; i++) {
    const c = new RawClient('127.0.0.5');
    replies.push(await c.greeting());
    c.write('QUIT');
    await c.waitFor(() => c.closedAt !== null, 15_000, 'the close');
  }
  expect(replies.slice(0, FLOOD_PER_MINUTE).every((r) => r.startsWith('220'))).toBe(true);
  expect(replies.slice(FLOOD_PER_MINUTE).every((r) => /^421 .*too many connections/i.test(r))).toBe(true);
  // Another address is not affected.
  const other = new RawClient('127.0.0.7');
  expect(await other.greeting()).toMatch(/^220/);
  other.end();
});

it('a trusted client (the operator list) skips the per-address cap', async () => {
  const many = Array.from({ length: PER_IP + 5 }, () => new RawClient('127.0.0.6'));
  try {
    const greetings = await Promise.all(many.map((c) => c.greeting()));
    expect(greetings.every((g) => g.startsWith('220'))).toBe(true);
  } finally {
    for (const c of many) c.end();
  }
});
