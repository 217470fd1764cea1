// Reproduction (not a test) of the hang that bench:seal, pool threads and a server's
// fan-out met now and then on Node 20: plain node, no tsx, no worker threads.
// 'after' (recipient.ts before the fix) exports a fresh X25519 public key as JWK
// after generateKeyPairSync returned: ExportJWKEdKey holds the key's mutex while it
// allocates, a garbage collection then frees the finished key-generation job (no
// longer referenced), whose destructor takes the same mutex, and the thread waits
// on itself for good (gdb: ~KeyGenJob under ExportJWKEdKey, state S, no CPU).
// 'inside' (recipient.ts now) has the key generation encode the public key, while
// the job is still referenced.
// 'webcrypto' is what openpgp.js does for each Curve25519 recipient (generateKey, then
// exportKey 'jwk'), on Node's WebCrypto.
// Run: node test/bench/keygen-race.mjs after|inside|webcrypto [count]; a hang shows as the
// progress lines stopping with the process idle (in our runs within 100,000 keys).
import { generateKeyPairSync } from 'node:crypto';

const mode = process.argv[2];
const n = Number(process.argv[3] ?? 1_000_000);
if (!['after', 'inside', 'webcrypto'].includes(mode) || !Number.isSafeInteger(n) || n < 1) {
  console.error('usage: node test/bench/keygen-race.mjs after|inside|webcrypto [count]');
  process.exit(2);
}
const t0 = performance.now();
for (let i = 1; i <= n; i++) {
  const x = mode === 'webcrypto'
    ? (await crypto.subtle.exportKey('jwk', (await crypto.subtle.generateKey('X25519', true, ['deriveBits'])).publicKey)).x
    : mode === 'after'
    ? generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x
    : generateKeyPairSync('x25519', { publicKeyEncoding: { format: 'jwk' } }).publicKey.x;
  if (x.length !== 43) throw new Error('unexpected X25519 public key');
  if (i % 10_000 === 0) console.log(`${mode}: ${i} keys, ${Math.round(performance.now() - t0)} ms`);
}
console.log(`${mode}: done, ${n} keys`);
