// The relay's own SMTP/LMTP client, against real servers on loopback: copies go
// out over at most maxConnections persistent connections, a message's MAIL, RCPT
// and DATA leave together when the relay offers PIPELINING (RFC 2920), a refused
// recipient fails alone and the connection goes on, a connection the relay drops
// while idle is replaced without failing the copy, and lmtp:// speaks LMTP with
// per-recipient answers after the data.

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { SmtpRelay } from '../../../server/delivery/relay.ts';

const mail = (n: number) => Buffer.from(`From: <l@x.test>\r\nTo: <l@x.test>\r\nSubject: ...\r\n\r\n.line starting with a dot ${n}\r\n${'z'.repeat(2000)}\r\n`);

interface Started { server: SMTPServer; port: number; connections: number; got: Array<{ to: string; raw: Buffer }> }

async function start(extra: Partial<SMTPServerOptions> = {}, refuse: (rcpt: string) => number | undefined = () => undefined): Promise<Started> {
  const s: Started = { server: null as unknown as SMTPServer, port: 0, connections: 0, got: [] };
  s.server = new SMTPServer({
    logger: false, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], closeTimeout: 100,
    onConnect: (_session, cb) => { s.connections++; cb(); },
    onRcptTo: (address, _session, cb) => {
      const code = refuse(address.address);
      if (code) return cb(Object.assign(new Error('No such user'), { responseCode: code }));
      cb();
    },
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        for (const r of session.envelope.rcptTo) s.got.push({ to: r.address, raw: Buffer.concat(chunks) });
        cb();
      });
    },
    ...extra,
  });
  s.server.on('error', () => {});
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', () => r()));
  s.port = (s.server.server.address() as AddressInfo).port;
  return s;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

describe('SmtpRelay', () => {
  it('sends many copies over at most maxConnections persistent connections, bytes intact', async () => {
    const s = await start();
    cleanup.push(() => new Promise<void>((r) => s.server.close(() => r())));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${s.port}`, maxConnections: 3, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => relay.send({ from: `b+${i}@x.test`, to: `r${i}@x.test` }, mail(i))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(s.got).toHaveLength(60);
    expect(s.connections).toBeLessThanOrEqual(3);
    // Dot-stuffing is undone by the server: the copy arrives byte for byte.
    expect(s.got.find((g) => g.to === 'r7@x.test')!.raw.equals(mail(7))).toBe(true);
  }, 60_000);

  it('a refused recipient fails alone (5xx permanent, 4xx temporary); the connection goes on', async () => {
    const s = await start({}, (rcpt) => (rcpt.startsWith('gone') ? 550 : rcpt.startsWith('later') ? 451 : undefined));
    cleanup.push(() => new Promise<void>((r) => s.server.close(() => r())));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${s.port}`, maxConnections: 1, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    expect(await relay.send({ from: 'b@x.test', to: 'a@x.test' }, mail(1))).toEqual({ ok: true });
    expect(await relay.send({ from: 'b@x.test', to: 'gone@x.test' }, mail(2))).toMatchObject({ ok: false, permanent: true, code: 'SMTP_550' });
    expect(await relay.send({ from: 'b@x.test', to: 'later@x.test' }, mail(3))).toMatchObject({ ok: false, permanent: false, code: 'SMTP_451' });
    expect(await relay.send({ from: 'b@x.test', to: 'c@x.test' }, mail(4))).toEqual({ ok: true });
    expect(s.got.map((g) => g.to)).toEqual(['a@x.test', 'c@x.test']);
    expect(s.connections).toBe(1);
  }, 60_000);

  it('a connection the relay closed while idle is replaced; the copy is not failed', async () => {
    const s = await start({ socketTimeout: 300 });
    cleanup.push(() => new Promise<void>((r) => s.server.close(() => r())));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${s.port}`, maxConnections: 1, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    expect(await relay.send({ from: 'b@x.test', to: 'a@x.test' }, mail(1))).toEqual({ ok: true });
    // The server times the idle connection out (its socketTimeout), then a copy comes.
    const until = Date.now() + 20_000;
    while (s.connections < 2 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 400));
      expect(await relay.send({ from: 'b@x.test', to: 'b@x.test' }, mail(2))).toEqual({ ok: true });
    }
    expect(s.connections).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('an unreachable relay is a temporary NET_ failure, not a hang or a crash', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${port}`, maxConnections: 2, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    const r = await Promise.all([1, 2, 3].map((i) => relay.send({ from: 'b@x.test', to: `r${i}@x.test` }, mail(i))));
    for (const x of r) expect(x).toMatchObject({ ok: false, permanent: false, code: expect.stringMatching(/^NET_/) });
  }, 60_000);

  it('pipelines MAIL, RCPT and DATA in one write when the relay offers PIPELINING', async () => {
    // A minimal scripted SMTP server, to see the client's writes as they arrive.
    const writes: string[] = [];
    const server: Server = createServer((sock: Socket) => {
      let inData = false;
      let buf = '';
      sock.write('220 t ESMTP\r\n');
      sock.on('data', (d: Buffer) => {
        const text = d.toString('latin1');
        if (!inData) writes.push(text);
        buf += text;
        for (;;) {
          if (inData) {
            const end = buf.indexOf('\r\n.\r\n');
            if (end < 0) return;
            buf = buf.slice(end + 5);
            inData = false;
            sock.write('250 queued\r\n');
            continue;
          }
          const nl = buf.indexOf('\r\n');
          if (nl < 0) return;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 2);
          if (/^EHLO/i.test(line)) sock.write('250-t\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
          else if (/^(MAIL|RCPT)/i.test(line)) sock.write('250 ok\r\n');
          else if (/^DATA/i.test(line)) { sock.write('354 go\r\n'); inData = true; }
          else if (/^QUIT/i.test(line)) { sock.end('221 bye\r\n'); return; }
          else sock.write('250 ok\r\n');
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
    const relay = new SmtpRelay({ url: `smtp://127.0.0.1:${(server.address() as AddressInfo).port}`, maxConnections: 1, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    expect(await relay.send({ from: 'b@x.test', to: 'a@x.test' }, mail(1))).toEqual({ ok: true });
    expect(await relay.send({ from: 'b@x.test', to: 'c@x.test' }, mail(2))).toEqual({ ok: true });
    const envelopes = writes.filter((w) => w.startsWith('MAIL FROM'));
    expect(envelopes).toHaveLength(2);
    for (const w of envelopes) expect(w).toMatch(/^MAIL FROM:<b@x\.test>[^\r]*\r\nRCPT TO:<[ac]@x\.test>\r\nDATA\r\n$/);
  }, 60_000);

  it('lmtp:// speaks LMTP: delivered per recipient; a refusal at RCPT or after the data is a per-copy failure', async () => {
    let s: Started;
    s = await start({
      lmtp: true,
      // LMTP answers each recipient after the data: a full mailbox says so there (RFC 2033 4.2).
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const rcpt = session.envelope.rcptTo[0]!.address;
          if (rcpt.startsWith('full')) return cb(Object.assign(new Error('Mailbox full'), { responseCode: 452 }));
          s.got.push({ to: rcpt, raw: Buffer.concat(chunks) });
          cb();
        });
      },
    }, (rcpt) => (rcpt.startsWith('gone') ? 550 : undefined));
    cleanup.push(() => new Promise<void>((r) => s.server.close(() => r())));
    const relay = new SmtpRelay({ url: `lmtp://127.0.0.1:${s.port}`, maxConnections: 2, tlsRejectUnauthorized: true, requireTLS: false });
    cleanup.push(() => relay.close());
    expect(relay.description).toBe(`lmtp://127.0.0.1:${s.port}`);
    const r = await Promise.all(Array.from({ length: 20 }, (_, i) => relay.send({ from: 'b@x.test', to: `r${i}@x.test` }, mail(i))));
    expect(r.every((x) => x.ok)).toBe(true);
    expect(await relay.send({ from: 'b@x.test', to: 'gone@x.test' }, mail(99))).toMatchObject({ ok: false, permanent: true, code: 'SMTP_550' });
    expect(await relay.send({ from: 'b@x.test', to: 'full@x.test' }, mail(98))).toMatchObject({ ok: false, permanent: false, code: 'SMTP_452' });
    expect(await relay.send({ from: 'b@x.test', to: 'r99@x.test' }, mail(99))).toEqual({ ok: true });
    expect(s.got).toHaveLength(21);
    expect(s.connections).toBeLessThanOrEqual(2);
  }, 60_000);
});
