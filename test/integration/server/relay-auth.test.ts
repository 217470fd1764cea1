// Delivery through a relay that demands STARTTLS and a login (smtp://user:pass@…
// with requireTLS): copies arrive; with a wrong password nothing is dropped, the
// copies wait in the queue for the operator to fix the relay settings.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { addList, compose, initData, listPublicKey, person, send, Sink, SECRET, tempDir } from './harness.ts';

const LIST = 'tls@lists.test';
const dirs: string[] = [];
const servers: RunningServer[] = [];
const sink = new Sink({ user: 'relayuser', pass: 'relay-pass' });
afterAll(async () => {
  for (const s of servers) await s.close();
  await sink.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function serverWith(password: string) {
  const dataDir = tempDir('relay');
  dirs.push(dataDir);
  await initData(dataDir, sink.port, { relay: `smtp://relayuser:${password}@127.0.0.1:${sink.port}`, relayOptions: { requireTLS: true, tlsRejectUnauthorized: false } });
  const [alice, bob] = await Promise.all([person('alice@example.org'), person('bob@example.org')]);
  await addList(dataDir, LIST, {}, [alice, bob]);
  const { config } = loadConfig(dataDir);
  const server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'server.log'), stdout: false }) });
  servers.push(server);
  await send(server.smtpPort, alice.address, LIST, await compose(alice, LIST, await listPublicKey(dataDir, LIST), 'over TLS'));
  return { dataDir, server, bob };
}

it('logs in over STARTTLS and delivers; a wrong password keeps the copies queued', async () => {
  await sink.start();
  const ok = await serverWith('relay-pass');
  await sink.waitFor(() => sink.to(ok.bob.address).length === 1, 20_000, 'copy over TLS');
  expect(sink.logins).toContain('relayuser');

  const bad = await serverWith('wrong-pass');
  const sql = await openData(bad.dataDir, SECRET);
  const q = new QueueStore(sql);
  await sink.waitFor(async () => ((await sql.get('SELECT min(attempts) AS n FROM deliveries')) as { n: number }).n >= 2, 20_000, 'retries');
  expect(await q.stats()).not.toHaveProperty('failed');
  expect(sink.messages).toHaveLength(2); // only the first server's two copies
  await sql.close();
});
