// The native wrap must not deadlock its thread. On Node 20, exporting a fresh X25519
// public key after generateKeyPairSync returned could wait forever on a mutex the same
// thread held (a garbage collection inside the export freed the key-generation job,
// whose destructor takes the key's mutex): bench:seal and pool threads stopped for
// good, idle. recipient.ts now has the key generation encode the key. A child process
// wraps with an ephemeral key per recipient, many times; a deadlocked child stops
// using CPU while unfinished, which is what this test looks for (not wall time, so a
// busy machine only makes it slower). Before the fix, test/bench/keygen-race.mjs hung
// within 10,000 keys in every process.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { generateKey, readPublicKey } from '../../../shared/index.ts';
import { buildWorker } from '../../../server/pipeline/worker-build.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-keygen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEYS = 20_000;

/** CPU ticks (user + system) the process has used, from /proc. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

it.skipIf(process.platform !== 'linux')(`wrapping with ${KEYS} fresh ephemeral keys finishes (no thread waits on itself)`, async () => {
  const g = await generateKey({ kind: 'subscriber', address: 'k@x.test', passphrase: 'p' });
  const { key } = await readPublicKey(g.publicKeyArmored);
  const packet = Buffer.from((await key.getEncryptionKey()).keyPacket.write()).toString('hex');
  const recipient = fileURLToPath(new URL('../../../server/pipeline/recipient.ts', import.meta.url));
  writeFileSync(join(dir, 'child.ts'), `
import { wrapSlice } from ${JSON.stringify(recipient)};
const packet = Buffer.from(process.argv[2]!, 'hex');
const key = { data: new Uint8Array(32).fill(7), algorithm: 'aes256' as const };
for (let done = 0; done < ${KEYS}; done += 500) {
  const out = await wrapSlice(key, Array.from({ length: 500 }, () => packet), { ephemeral: 'recipient' });
  if (out.some((p) => !p)) throw new Error('a wrap failed');
  process.stdout.write(String(done + 500) + '\\n');
}
`);
  const file = await buildWorker(join(dir, 'child.ts'), join(dir, 'cache'));
  const child = spawn(process.execPath, [file, packet], { stdio: ['ignore', 'pipe', 'inherit'] });
  let last = 0;
  child.stdout.setEncoding('utf8').on('data', (s: string) => { last = Number(s.trim().split('\n').pop()); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let finished: number | null | undefined;
  void exited.then((code) => { finished = code; });
  let ticks = 0;
  let idleSince = Date.now();
  try {
    while (finished === undefined) {
      await new Promise((r) => setTimeout(r, 1000));
      if (finished !== undefined) break;
      const now = cpuTicks(child.pid!);
      if (now !== ticks) {
        ticks = now;
        idleSince = Date.now();
      } else if (Date.now() - idleSince > 20_000) {
        throw new Error(`the child stopped using CPU after ${last} of ${KEYS} wraps: deadlocked`);
      }
    }
  } finally {
    child.kill('SIGKILL');
  }
  expect(finished).toBe(0);
  expect(last).toBe(KEYS);
}, 900_000);
