// Reproduction (not a test): 120 pages of 500 wraps through the wrap pool, one
// page ahead as the fan-out does. With piscina's default 'sync' Atomics (an idle
// worker blocks in Atomics.wait between tasks) a slice now and then stayed pending
// with every pool thread asleep, until the pool's time budget aborted it (5 runs in
// 8 here); the pool now runs with atomics 'disabled' (none in 12 runs). Prints the
// threads' states (/proc) when a page is pending after 3 s, and "done" at the end.
// Run: npx tsx test/bench/wrap-stall.ts
import { readdirSync, readFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { WrapPool } from '../../server/pipeline/wrap-pool.ts';
import { generateSessionKey } from '../../shared/index.ts';
const pkts: Uint8Array[] = [];
for (let i = 0; i < 8; i++) { const { publicKey } = await openpgp.generateKey({ userIDs: [{ email: `a${i}@b.c` }], format: 'object' }); pkts.push((await publicKey.getEncryptionKey()).keyPacket.write()); }
const pool = new WrapPool();
const k = generateSessionKey();
const page = Array.from({ length: 500 }, (_, i) => pkts[i % 8]!);
const dump = () => readdirSync('/proc/self/task').map((t) => { const s = readFileSync(`/proc/self/task/${t}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); const name = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(); return `${t}:${name}:${f[0]}:${f[11]}+${f[12]}`; }).join(' ');
let prev: Promise<unknown> | null = null;
for (let p = 0; p < 120; p++) {
  const cur = pool.wrap(k, page);
  let done = false; cur.finally(() => { done = true; }).catch(() => {});
  setTimeout(() => { if (!done) { console.log(`page ${p} pending after 3 s: ${dump()}`); setTimeout(() => { if (!done) console.log(`  +3 s: ${dump()}`); }, 3000); } }, 3000);
  if (prev) await prev.catch((e) => console.log('rejected', String(e).slice(0, 60)));
  prev = cur;
  const until = performance.now() + 5; while (performance.now() < until);
}
await prev?.catch(() => {});
console.log('done');
await pool.close();
process.exit(0);
