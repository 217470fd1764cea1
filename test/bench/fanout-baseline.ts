// The baseline of the fan-out benchmark, in its own process: the way other
// encrypted list servers deliver, a full OpenPGP encryption of the post per
// recipient (openpgp.encrypt), each sent over the same pooled SMTP to the sink.
// Prints one JSON line: copies, wall ms, CPU ms, peak RSS.
// Args: SINK_PORT COPIES BODY_BYTES CONCURRENCY

import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import nodemailer from 'nodemailer';
import { buildPgpMimeMail, formatDate, generateKey, readPublicKey } from '../../shared/index.ts';

const [port, copies, bodyBytes, concurrency] = process.argv.slice(2).map(Number) as [number, number, number, number];
const keys = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
  const g = await generateKey({ kind: 'subscriber', address: `b${i}@pool.test`, passphrase: 'p' });
  return (await readPublicKey(g.publicKeyArmored)).key;
}));
// Incompressible content of the post's size (what the list would re-encrypt).
const inner = new Uint8Array(Buffer.from(randomBytes(Math.ceil(bodyBytes * 0.75)).toString('base64').slice(0, bodyBytes)));
const transport = nodemailer.createTransport({ pool: true, host: '127.0.0.1', port, secure: false, ignoreTLS: true, maxConnections: 8, maxMessages: Infinity });

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
async function worker(): Promise<void> {
  for (let i = next++; i < copies; i = next++) {
    const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: inner }), encryptionKeys: keys[i % keys.length]! });
    const mail = buildPgpMimeMail([['From', '<list@lists.test>'], ['To', '<list@lists.test>'], ['Subject', '...'], ['Date', formatDate(new Date())]], armored);
    await transport.sendMail({ envelope: { from: 'list@lists.test', to: [`r${i}@sub.test`] }, raw: mail });
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
transport.close();
console.log(JSON.stringify({ copies, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
process.exit(0);
