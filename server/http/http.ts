// The HTTP port: health and public list information, plus the RFC 8058 one-click
// unsubscribe target. The archive and member API come later (issue 4).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Tokens } from '../delivery/tokens.ts';
import type { Db } from '../store/db.ts';
import { allLists, getList, type ListRecord } from '../store/lists.ts';
import { countMembers, removeMember } from '../store/members.ts';
import { countPosts } from '../store/posts.ts';
import type { QueueStore } from '../store/queue.ts';

export interface HttpOptions {
  db: Db;
  queue: QueueStore;
  tokens: Tokens;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function info(db: Db, l: ListRecord) {
  return {
    address: l.address,
    fingerprint: l.listFingerprint,
    postPolicy: l.postPolicy,
    requireSignature: l.requireSignature,
    maxBytes: l.maxBytes,
    members: countMembers(db, l.id),
    posts: countPosts(db, l.id),
  };
}

async function drain(req: IncomingMessage, limit: number): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function createHttp(o: HttpOptions): Server {
  return createServer((req, res) => {
    handle(o, req, res).catch(() => json(res, 500, { error: 'internal error' }));
  });
}

async function handle(o: HttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (req.method === 'GET' && url.pathname === '/health') return json(res, 200, { ok: true, queue: o.queue.stats() });
  if (req.method === 'GET' && url.pathname === '/lists') return json(res, 200, allLists(o.db).map((l) => info(o.db, l)));
  if (parts[0] === 'lists' && parts[1]) {
    const list = getList(o.db, parts[1]);
    if (!list) return json(res, 404, { error: 'no such list' });
    if (req.method === 'GET' && parts.length === 2) return json(res, 200, { ...info(o.db, list), publicKey: list.listPublic });
    if (req.method === 'GET' && parts[2] === 'key') {
      res.writeHead(200, { 'content-type': 'application/pgp-keys' });
      return void res.end(list.listPublic);
    }
    if (parts[2] === 'archive') return json(res, 501, { error: 'the archive API (member log-in with a key) is not available yet' });
    if (req.method === 'POST' && parts[2] === 'unsubscribe') {
      const member = (url.searchParams.get('m') ?? '').toLowerCase();
      const token = url.searchParams.get('t') ?? '';
      await drain(req, 4096);
      if (!member || token !== o.tokens.unsubscribeToken(list.address, member)) return json(res, 403, { error: 'invalid unsubscribe link' });
      removeMember(o.db, list.id, member);
      return json(res, 200, { unsubscribed: true });
    }
  }
  json(res, 404, { error: 'not found' });
}
