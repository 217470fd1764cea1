// The Mailman REST client against a misbehaving server (a proxy in front of the
// Core, a Core that hangs or answers garbage): every call ends within its
// timeout, answers are read up to a cap and checked, and paging is bounded.
// The real Core is test/integration/mailman/rest.test.ts.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailmanRest } from '../../../server/mailman/rest.ts';

let server: Server;
let url: string;
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end('{}');
const seenAuth: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seenAuth.push(req.headers.authorization ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const client = (o: ConstructorParameters<typeof MailmanRest>[1] = {}) => new MailmanRest({ url, user: 'rest', pass: 'pw' }, { timeoutMs: 1000, ...o });
const member = (i: number) => ({ email: `m${i}@x.test`, role: 'member', member_id: `id${i}` });

describe('Mailman REST client, hostile answers', () => {
  it('sends basic auth and reads a good answer', async () => {
    handler = (_q, r) => r.end(JSON.stringify({ mailman_version: 'GNU Mailman 3.3.8', api_version: '3.1' }));
    expect((await client().versions()).api_version).toBe('3.1');
    expect(seenAuth.at(-1)).toBe(`Basic ${Buffer.from('rest:pw').toString('base64')}`);
  });

  it('a Core that never answers: TIMEOUT within the timeout', async () => {
    handler = () => { /* never answers */ };
    const t = Date.now();
    await expect(client().versions()).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - t).toBeLessThan(10_000);
  });

  it('a body over the cap: TOO_LARGE, whether announced or streamed', async () => {
    handler = (_q, r) => { r.setHeader('content-length', String(10_000_000)); r.end(); };
    await expect(client({ maxBodyBytes: 1000 }).versions()).rejects.toMatchObject({ code: 'TOO_LARGE' });
    handler = (_q, r) => { r.write('x'.repeat(600)); r.write('x'.repeat(600)); r.end(); };
    await expect(client({ maxBodyBytes: 1000 }).versions()).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('not JSON, or JSON of the wrong shape: BAD_RESPONSE; Mailman error text is cut short', async () => {
    handler = (_q, r) => r.end('<html>proxy error</html>');
    await expect(client().versions()).rejects.toMatchObject({ code: 'BAD_RESPONSE' });
    handler = (_q, r) => r.end(JSON.stringify({ start: 0, total_size: 1, entries: [{ email: 'a@x.test', role: 'emperor' }] }));
    await expect(client().roster('l.x.test', 'member')).rejects.toMatchObject({ code: 'BAD_RESPONSE' });
    handler = (_q, r) => { r.statusCode = 500; r.end(JSON.stringify({ description: 'y'.repeat(5000) })); };
    const e = (await client().versions().catch((x: unknown) => x)) as Error;
    expect(e).toMatchObject({ code: 'HTTP', status: 500 });
    expect(e.message.length).toBeLessThan(400);
  });

  it('paging: every page read, and a roster larger than pageSize * maxPages refused before it is read', async () => {
    const total = 7;
    let calls = 0;
    handler = (req, r) => {
      calls++;
      const u = new URL(req.url!, url);
      const count = Number(u.searchParams.get('count'));
      const page = Number(u.searchParams.get('page'));
      const entries = Array.from({ length: total }, (_, i) => member(i)).slice((page - 1) * count, page * count);
      r.end(JSON.stringify({ start: (page - 1) * count, total_size: total, entries }));
    };
    expect((await client({ pageSize: 3 }).roster('l.x.test', 'member')).map((m) => m.email)).toHaveLength(7);
    expect(calls).toBe(3);
    calls = 0;
    await expect(client({ pageSize: 3, maxPages: 2 }).roster('l.x.test', 'member')).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(calls).toBe(1);
    // A server that keeps sending full pages and claims a small total: the read stops at the total.
    calls = 0;
    handler = (_q, r) => { calls++; r.end(JSON.stringify({ start: 0, total_size: 4, entries: [member(1), member(2)] })); };
    await client({ pageSize: 2 }).roster('l.x.test', 'member');
    expect(calls).toBe(2);
  });
});
