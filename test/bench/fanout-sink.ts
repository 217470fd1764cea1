// The loopback SMTP sink for the fan-out benchmark, in its own process so its CPU
// is not counted as the list server's. It counts accepted messages and bytes and
// reports them to the parent over IPC.

import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

let messages = 0;
let bytes = 0;
const server = new SMTPServer({
  authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], logger: false, size: 64 * 1024 * 1024, maxClients: 200, closeTimeout: 100,
  onData(stream, _session, cb) {
    stream.on('data', (c: Buffer) => { bytes += c.length; });
    stream.on('end', () => {
      messages++;
      cb();
    });
  },
});
server.on('error', () => {}); // a killed list server resets its connections
server.listen(0, '127.0.0.1', () => {
  process.send!({ port: (server.server.address() as AddressInfo).port });
});
setInterval(() => process.send!({ messages, bytes }), 20).unref();
process.on('message', (m: { reset?: boolean }) => {
  if (m.reset) {
    messages = 0;
    bytes = 0;
    process.send!({ messages, bytes, reset: true });
  }
});
process.on('disconnect', () => process.exit(0));
