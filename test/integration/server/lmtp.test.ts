// The whole server delivering through an LMTP next hop (relay: lmtp://): a post
// to a list large enough that its pages are wrapped on the wrap pool's threads
// reaches every member exactly once, each copy opens with that member's key and
// shows the sender's good signature, and a recipient the LMTP server refuses
// after the data is retried as a temporary failure while the others are delivered.

import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../../server/config/config.ts';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { readMail } from '../../../shared/index.ts';
import { addList, compose, initData, listPublicKey, person, seedMembers, send, tempDir, type Person } from './harness.ts';

const LIST = 'lmtp@lists.test';
const COUNT = 150; // pages of 500: one page, sliced across the pool's threads
let lmtp: SMTPServer;
let server: RunningServer;
let dataDir = '';
let alice: Person;
const pool: Person[] = [];
const got: Array<{ to: string; raw: Buffer }> = [];
let fullRefusals = 0;

beforeAll(async () => {
  lmtp = new SMTPServer({
    lmtp: true, logger: false, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], closeTimeout: 100,
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const to = session.envelope.rcptTo[0]!.address;
        // One mailbox is full the first two times (an LMTP answer after the data).
        if (to === 's00007@sub.test' && fullRefusals < 2) {
          fullRefusals++;
          return cb(Object.assign(new Error('Mailbox full'), { responseCode: 452 }));
        }
        got.push({ to, raw: Buffer.concat(chunks) });
        cb();
      });
    },
  });
  lmtp.on('error', () => {});
  await new Promise<void>((r) => lmtp.listen(0, '127.0.0.1', () => r()));
  const port = (lmtp.server.address() as AddressInfo).port;
  dataDir = tempDir('lmtp');
  await initData(dataDir, 0, { relay: `lmtp://127.0.0.1:${port}` });
  alice = await person('alice@example.org');
  for (let i = 0; i < 3; i++) pool.push(await person(`pool${i}@example.org`));
  await addList(dataDir, LIST, {}, [alice]);
  await seedMembers(dataDir, LIST, COUNT - 1, pool);
  const { config } = loadConfig(dataDir);
  expect(config.relay).toBe(`lmtp://127.0.0.1:${port}`);
  server = await startServer(dataDir, config, 'integration-test-secret-0123456789', { log: createEventLog({ file: `${dataDir}/logs/server.log`, stdout: false }) });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await new Promise<void>((r) => (lmtp ? lmtp.close(() => r()) : r()));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

it('every member gets exactly one copy over LMTP; a refusal after the data is retried', async () => {
  const raw = await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'over lmtp');
  expect(await send(server.smtpPort, alice.address, LIST, raw)).toMatch(/^250/);
  const end = Date.now() + 90_000;
  while (new Set(got.map((g) => g.to)).size < COUNT && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const byRcpt = new Map<string, number>();
  for (const g of got) byRcpt.set(g.to, (byRcpt.get(g.to) ?? 0) + 1);
  expect(byRcpt.size).toBe(COUNT);
  expect([...byRcpt.values()].every((n) => n === 1)).toBe(true);
  expect(fullRefusals).toBe(2);
  // Copies wrapped on the pool open with the member's own key; the sender's signature verifies.
  for (const i of [0, 1, 2, 7, 148]) {
    const to = `s${String(i).padStart(5, '0')}@sub.test`;
    const copy = got.find((g) => g.to === to)!;
    const read = await readMail(copy.raw, { privateKey: pool[i % 3]!.privateKey, senderKeys: [alice.publicKey] });
    expect(read.message.text).toContain('over lmtp');
    expect(read.verification.valid).toBe(true);
  }
}, 120_000);
