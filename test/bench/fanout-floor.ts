// The delivery floor of the fan-out benchmark, in its own process: the list
// server's own relay client (server/delivery/relay.ts, same connections, same
// lanes) sending one pre-built copy of the run's size to the same sink, N times.
// Nothing is encrypted, queued or rendered: what is left is the SMTP client, the
// loopback and the sink's own cost, the least any list server could spend here.
// Prints one JSON line: copies, wall ms, CPU ms (this process).
// Args: SINK_PORT COPIES COPY_BYTES CONNECTIONS LANES

import { randomBytes } from 'node:crypto';
import { SmtpRelay } from '../../server/delivery/relay.ts';

const [port, copies, copyBytes, connections, lanes] = process.argv.slice(2).map(Number) as [number, number, number, number, number];
const body = randomBytes(Math.ceil(copyBytes * 0.75)).toString('base64').slice(0, copyBytes).replace(/(.{64})/g, '$1\r\n');
const mail = Buffer.from(`From: <bench@lists.test>\r\nTo: <bench@lists.test>\r\nSubject: ...\r\n\r\n${body}\r\n`);
const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${port}`, maxConnections: connections, tlsRejectUnauthorized: true, requireTLS: false });
await relay.send({ from: 'b@lists.test', to: 'warm@sub.test' }, mail); // connect once before the clock starts
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
let failed = 0;
await Promise.all(Array.from({ length: lanes }, async () => {
  for (let i = next++; i < copies; i = next++) {
    const r = await relay.send({ from: `b+${i}@lists.test`, to: `r${i}@sub.test` }, mail);
    if (!r.ok) failed++;
  }
}));
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
relay.close();
console.log(JSON.stringify({ copies, failed, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }));
process.exit(0);
