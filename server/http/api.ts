// The HTTP port (fastify): list discovery and WKD, the key registry, the
// members-only archive, the operator API, and the RFC 8058 one-click target.
// Bodies are validated with the zod schemas of shared/api/types.ts; every error
// is { error: code, message }; bodies are bounded; CORS admits only extension origins.
//
// Rate limits add up. @fastify/rate-limit gives one limit per request (a route's
// own config replaces the global one), so it is used only for the per-IP limit
// on every route, and routes never configure it; the limits of single routes,
// named addresses, confirmation mails and pending rows are checked on top, in
// the database (server/registry/limits.ts). The client IP is the TCP peer unless
// http.trustProxy names the reverse proxies whose X-Forwarded-For may be believed.

import { runOnce } from '../store/coordination.ts';
import { RosterUnavailable } from '../mailman/sync.ts';
import cors from '@fastify/cors';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import * as openpgp from 'openpgp';
import { z, ZodError, type ZodType } from 'zod';
import {
  Address, ArchiveMessagesRequest, ChallengeRequest, ConfirmRequest, isLetterlockError, LoginRequest, RevocationRequest,
  SignedRequest, SubscribeRequest, Token, UnsubscribeByMailRequest, type ListInfo,
} from '../../shared/index.ts';
import { ArchiveAccess } from '../archive/access.ts';
import { HttpLimitsSchema, type HttpLimits } from '../config/config.ts';
import type { Tokens } from '../delivery/tokens.ts';
import type { EventLog } from '../log/log.ts';
import { HeldUnavailable, type Pipeline } from '../pipeline/run.ts';
import { watchLoopDelay, type LoopDelay } from './loop-delay.ts';
import { registerOpsRoutes, type OpsRouteDeps } from '../ops/routes.ts';
import { Limiter, type Rate, type Rule } from '../registry/limits.ts';
import { Registry } from '../registry/registry.ts';
import { getListSettings, setListSettings } from '../store/settings.ts';
import { sameSecret } from '../registry/tokens.ts';
import type { Sql } from '../store/db.ts';
import { getHeld, listHeld } from '../store/held.ts';
import { allLists, getList, getListById, MAX_REPLAY_WINDOW_DAYS, updatePolicy, type ListRecord } from '../store/lists.ts';
import { countMembers, memberPage } from '../store/members.ts';
import { countPosts } from '../store/posts.ts';
import type { QueueStore } from '../store/queue.ts';
import { listPendingMembers, purgeStale } from '../store/registry.ts';
import type { ListKeys } from '../lists/lists.ts';
import { ApiFailure, badRequest, busy, notFound } from './errors.ts';
import { wkdHash } from './wkd.ts';
import { registerModerationRoutes } from './moderation.ts';
import { joinUrl, registerJoinPage } from './join-page.ts';

export interface ApiDeps {
  sql: Sql;
  queue: QueueStore;
  tokens: Tokens;
  secret: string;
  publicUrl: string;
  adminToken: string;
  keysFor(list: ListRecord): Promise<ListKeys>;
  pipeline?: Pick<Pipeline, 'approve' | 'reject'>;
  onQueued(): void;
  /** Extension origins admitted by CORS; defaults to any chrome-extension:// or moz-extension:// origin. */
  corsOrigins?: RegExp[];
  /** The limits of config http.limits; absent: its defaults. */
  limits?: HttpLimits;
  /** config http.trustProxy: false (the TCP peer is the client) or the proxies' addresses/CIDRs. */
  trustProxy?: false | string[];
  bodyLimit?: number;
  now?: () => number;
  /** /health readiness, /metrics and the loop-delay watcher (server/ops/routes.ts); absent: liveness only, own watcher. */
  ops?: Pick<OpsRouteDeps, 'health' | 'metrics' | 'metricsAccess'> & { loopDelay?: LoopDelay };
  /** Events of the daily key-expiry check; absent: not logged. */
  log?: EventLog;
}

const EXTENSION_ORIGINS = [/^chrome-extension:\/\/[a-p]{32}$/, /^moz-extension:\/\/[0-9a-f-]{36}$/];

function parse<T>(schema: ZodType<T>, data: unknown): T {
  const r = schema.safeParse(data);
  if (!r.success) {
    // Name the fields and what is wrong with them; never echo the values.
    const what = r.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw badRequest(`The request is not valid (${what}).`);
  }
  return r.data;
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return typeof h === 'string' && h.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

function page(title: string, body: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

export async function createApi(deps: ApiDeps): Promise<FastifyInstance> {
  const limits = deps.limits ?? HttpLimitsSchema.parse(undefined);
  const now = () => deps.now?.() ?? Date.now();
  const limiter = new Limiter(deps.sql, deps.secret, now);
  // publicUrl is read when used (a getter): it may be fixed only once the port is bound.
  const registry = new Registry({
    sql: deps.sql, queue: deps.queue, get publicUrl() { return deps.publicUrl; }, keysFor: deps.keysFor, onQueued: deps.onQueued, limits, limiter, ...(deps.now ? { now: deps.now } : {}), ...(deps.log ? { log: deps.log } : {}),
  });
  const archive = new ArchiveAccess({
    sql: deps.sql, secret: deps.secret, get publicUrl() { return deps.publicUrl; }, maxPendingChallenges: limits.maxPendingChallenges, ...(deps.now ? { now: deps.now } : {}),
  });

  // Housekeeping of stale rows, at start and then every purgeIntervalSeconds, in
  // chunks with a yield between them so a large backlog never blocks the loop.
  let purging = false;
  const purge = async (): Promise<void> => {
    if (purging) return;
    purging = true;
    try {
      for (let round = 0; round < 10_000 && (await purgeStale(deps.sql, now())).more; round++) await new Promise((r) => setImmediate(r));
    } catch {
      // A failed purge (say, a full disk) is tried again at the next interval.
    } finally {
      purging = false;
    }
  };
  await purge();
  // The daily key-expiry check (first run a minute after start). A failure in a
  // timer must not end the process: it is tried again next time.
  const guarded = (f: () => unknown) => () => {
    try {
      void Promise.resolve(f()).catch(() => {});
    } catch { /* tried again at the next tick */ }
  };
  const timers = [
    // Several nodes on one database: each job runs on one node at a time (coordination.ts runOnce);
    // the expiry warnings at most once a day across them.
    setTimeout(guarded(() => runOnce(deps.sql, 'key-expiry', () => registry.checkExpiringKeys(), { minIntervalMs: 23 * 3600_000 })), 60_000),
    setInterval(guarded(() => runOnce(deps.sql, 'key-expiry', () => registry.checkExpiringKeys(), { minIntervalMs: 23 * 3600_000 })), 24 * 3600_000),
    setInterval(guarded(() => runOnce(deps.sql, 'purge', purge)), limits.purgeIntervalSeconds * 1000),
  ];
  for (const t of timers) t.unref();

  // trustProxy false: req.ip is the socket's peer address, whatever X-Forwarded-For says.
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimit ?? 128 * 1024, trustProxy: deps.trustProxy ?? false });
  app.addHook('onClose', async () => timers.forEach((t) => clearTimeout(t)));
  // A plain HTML form (confirmation pages for people without the extension) posts urlencoded.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 8192 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  // RFC 8058 one-click POSTs "List-Unsubscribe=One-Click" as a form; some clients
  // send it as multipart or plain text. The body is never used beyond that.
  app.addContentTypeParser(['multipart/form-data', 'text/plain'], { parseAs: 'string', bodyLimit: 8192 }, (_req, body, done) => done(null, body));

  // The per-IP limit on every route (onRequest: before the body is read). It is
  // registered first so the CORS preflight route gets it too; no route sets its
  // own rateLimit config, which would replace this one.
  await app.register(rateLimit, {
    global: true,
    max: limits.perIp.max,
    // Room for many clients before the LRU forgets one (a forgotten IP starts afresh).
    cache: 50_000,
    timeWindow: limits.perIp.windowSeconds * 1000,
    // The default key: req.ip, IPv4-mapped IPv6 as IPv4, other IPv6 per /64.
    errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'RATE_LIMITED', message: `Too many requests; try again in ${Math.ceil(ctx.ttl / 1000)} s.` }),
  });
  await app.register(cors, {
    origin: (origin, cb) => cb(null, origin !== undefined && (deps.corsOrigins ?? EXTENSION_ORIGINS).some((r) => r.test(origin))),
    methods: ['GET', 'POST', 'PUT', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization'],
    maxAge: 600,
  });

  app.setErrorHandler((error: unknown, _req, reply) => {
    // A held post of a list bound to Mailman, approved while its roster cannot be read (issue 11).
    if (error instanceof RosterUnavailable) error = busy('The list\'s membership cannot be read from Mailman right now. Try again later.', 60);
    // Two decisions on one held post at once (moderators, the CLI, other nodes): one runs.
    if (error instanceof HeldUnavailable) {
      error = error.why === 'gone' ? notFound('No such held post (another moderator may have decided it already).') : new ApiFailure(409, 'CONFLICT', 'A decision on this held post is under way.');
    }
    if (error instanceof ApiFailure) {
      if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
      return reply.status(error.status).send({ error: error.code, message: error.message });
    }
    if (isLetterlockError(error)) return reply.status(422).send({ error: error.code, message: error.message.split(' (')[0] });
    if (error instanceof ZodError) return reply.status(400).send({ error: 'BAD_REQUEST', message: 'The request is not valid.' });
    const e = error as { statusCode?: number; code?: string; error?: string; message?: string };
    if (e.statusCode === 429 || e.error === 'RATE_LIMITED') return reply.status(429).send({ error: 'RATE_LIMITED', message: e.message ?? 'Too many requests.' });
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.status(413).send({ error: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large.' });
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.status(e.statusCode).send({ error: 'BAD_REQUEST', message: 'The request could not be read (malformed JSON or unsupported content type).' });
    }
    return reply.status(500).send({ error: 'INTERNAL', message: 'Something went wrong on the server.' });
  });
  // Unknown paths count against the per-IP limit too.
  app.setNotFoundHandler({ preHandler: app.rateLimit() }, (_req, reply) => reply.status(404).send({ error: 'NOT_FOUND', message: 'No such endpoint.' }));

  const listOf = async (address: string): Promise<ListRecord> => {
    const a = Address.safeParse(address);
    const list = a.success ? await getList(deps.sql, a.data) : null;
    if (!list) throw notFound('No such list here.');
    return list;
  };
  // Route limits, on top of the per-IP one. The IP key is normalized as the
  // per-IP limit's is; the address is the one the body names, if valid.
  // req.ip is undefined only for a socket already gone; such a request is refused anyway.
  const clientOf = (req: FastifyRequest): string => normalizeIP(req.ip ?? '0.0.0.0');
  type Rules = (req: FastifyRequest) => Rule[];
  const perIp = (route: string, rate: Rate): Rules => (req) => [{ bucket: `ip:${route}`, key: clientOf(req), rate }];
  const perAddress = (route: string): Rules => (req) => {
    const a = Address.safeParse((req.body as { address?: unknown } | undefined)?.address);
    return a.success ? [{ bucket: `address:${route}`, key: a.data, rate: limits.perAddress }] : [];
  };
  // preHandler: after the body is parsed (the address is in it), before any work.
  const limited = (...rules: Rules[]) => ({
    preHandler: async (req: FastifyRequest) => await limiter.take(rules.flatMap((r) => r(req))),
  });

  // ---- health and discovery --------------------------------------------------------------

  const loopDelay = deps.ops?.loopDelay ?? watchLoopDelay();
  if (!deps.ops?.loopDelay) app.addHook('onClose', async () => loopDelay.stop());
  registerOpsRoutes(app, { ...deps.ops, queue: deps.queue, loopDelay, adminToken: deps.adminToken });
  // Unversioned summary routes for operators and the demo (public facts only: no member addresses).
  app.get('/lists', async () => {
    const out = [];
    for (const l of await allLists(deps.sql)) {
      out.push({
        address: l.address, fingerprint: l.listFingerprint, postPolicy: l.postPolicy, requireSignature: l.requireSignature,
        maxBytes: l.maxBytes, members: await countMembers(deps.sql, l.id), posts: await countPosts(deps.sql, l.id), join: joinUrl(deps.publicUrl, l.address),
      });
    }
    return out;
  });
  // The public join page of each list (server/http/join-page.ts).
  registerJoinPage(app, { sql: deps.sql, publicUrl: () => deps.publicUrl });
  app.get<{ Params: { address: string } }>('/lists/:address', async (req) => {
    const l = await listOf(req.params.address);
    return { ...listInfo(l), fingerprint: l.listFingerprint, publicKey: l.listPublic };
  });
  app.get<{ Params: { address: string } }>('/lists/:address/key', async (req, reply) => reply.type('application/pgp-keys').send((await listOf(req.params.address)).listPublic));

  const listInfo = async (list: ListRecord): Promise<ListInfo> => {
    const s = await getListSettings(deps.sql, list.id);
    return {
      address: list.address, name: s.name ?? list.address, description: s.description,
      policy: { posting: list.postPolicy, signatureRequired: list.requireSignature, maxBytes: list.maxBytes, subscription: s.subscription, replayWindowDays: list.replayWindowDays },
      listKey: { fingerprint: list.listFingerprint, armored: list.listPublic },
      apiBase: deps.publicUrl,
    };
  };
  app.get<{ Params: { address: string } }>('/v1/lists/:address', async (req) => await listInfo(await listOf(req.params.address)));

  app.get<{ Params: { domain: string } }>('/.well-known/openpgpkey/:domain/policy', async (_req, reply) => reply.type('text/plain').send(''));
  app.get<{ Params: { domain: string; hash: string } }>('/.well-known/openpgpkey/:domain/hu/:hash', async (req, reply) => {
    const domain = req.params.domain.toLowerCase();
    const list = (await allLists(deps.sql)).find((l) => {
      const at = l.address.lastIndexOf('@');
      return l.address.slice(at + 1) === domain && wkdHash(l.address.slice(0, at)) === req.params.hash;
    });
    if (!list) throw notFound('No key for that address.');
    const key = await openpgp.readKey({ armoredKey: list.listPublic });
    return reply.type('application/octet-stream').header('access-control-allow-origin', '*').send(Buffer.from(key.write()));
  });

  // ---- subscription and the key life cycle ------------------------------------------------------

  app.post<{ Params: { address: string } }>('/v1/lists/:address/subscriptions', limited(perAddress('subscribe'), perIp('subscribe', limits.subscribePerIp)), async (req, reply) => {
    const list = await listOf(req.params.address);
    const body = parse(SubscribeRequest, req.body);
    const { expiresAt } = await registry.subscribe(list, body, clientOf(req));
    return reply.status(202).send({ status: 'confirmation-sent', expiresAt });
  });

  app.post<{ Params: { address: string } }>('/v1/lists/:address/subscriptions/confirm', limited(perIp('confirm', limits.sensitivePerIp)), async (req, reply) => {
    const list = await listOf(req.params.address);
    const form = req.headers['content-type']?.startsWith('application/x-www-form-urlencoded');
    const { token } = parse(ConfirmRequest, req.body);
    const result = await registry.confirm(list, token);
    if (form) {
      return reply.type('text/html').send(page(result.status === 'member' ? `You are now subscribed to ${list.address}` : `Your subscription to ${list.address} awaits a moderator`, ''));
    }
    return result;
  });

  // People without the extension follow the link in the (decrypted) confirmation
  // mail: GET shows a button, only the POST changes anything.
  const confirmPage = (action: string, title: string, button: string) => async (req: FastifyRequest<{ Params: { address: string }; Querystring: { token?: string } }>, reply: FastifyReply) => {
    const list = await listOf(req.params.address);
    const token = parse(z.object({ token: Token }), req.query).token;
    return reply.type('text/html').header('content-security-policy', "default-src 'none'; form-action 'self'").send(page(`${title} ${list.address}`,
      `<form method="post" action="${action}"><input type="hidden" name="token" value="${token}"><button type="submit">${button}</button></form>`));
  };
  app.get('/v1/lists/:address/subscriptions/confirm', confirmPage('confirm', 'Confirm your subscription to', 'Confirm subscription'));

  app.post<{ Params: { address: string } }>('/v1/lists/:address/requests', limited(perIp('requests', limits.sensitivePerIp)), async (req) => {
    const list = await listOf(req.params.address);
    return { status: await registry.signedRequest(list, parse(SignedRequest, req.body)) };
  });

  app.post<{ Params: { address: string } }>('/v1/lists/:address/revocations', limited(perIp('revocations', limits.sensitivePerIp)), async (req) => {
    const list = await listOf(req.params.address);
    const { revocationCertificate } = parse(RevocationRequest, req.body);
    await registry.revoke(list, revocationCertificate);
    return { status: 'revoked' };
  });

  app.post<{ Params: { address: string } }>('/v1/lists/:address/unsubscribe', limited(perAddress('unsubscribe'), perIp('unsubscribe', limits.sensitivePerIp)), async (req, reply) => {
    const list = await listOf(req.params.address);
    const { address } = parse(UnsubscribeByMailRequest, req.body);
    await registry.requestUnsubscribe(list, address, clientOf(req));
    // The same answer for members and strangers.
    return reply.status(202).send({ status: 'confirmation-sent-if-subscribed' });
  });
  app.get('/v1/lists/:address/unsubscribe/confirm', confirmPage('confirm', 'Leave', 'Unsubscribe'));
  app.post<{ Params: { address: string } }>('/v1/lists/:address/unsubscribe/confirm', limited(perIp('unsubscribe-confirm', limits.sensitivePerIp)), async (req, reply) => {
    const list = await listOf(req.params.address);
    const { token } = parse(ConfirmRequest, req.body);
    await registry.confirmUnsubscribe(list, token);
    if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return reply.type('text/html').send(page(`You have left ${list.address}`, ''));
    return { status: 'unsubscribed' };
  });

  // RFC 8058 one-click, the target of List-Unsubscribe in list mail.
  app.post<{ Params: { address: string }; Querystring: { m?: string; t?: string } }>('/lists/:address/unsubscribe', async (req) => {
    const list = await listOf(req.params.address);
    const member = (req.query.m ?? '').toLowerCase();
    const token = req.query.t ?? '';
    if (!member || !token || !sameSecret(token, deps.tokens.unsubscribeToken(list.address, member))) {
      throw new ApiFailure(403, 'TOKEN_INVALID', 'This unsubscribe link is not valid.');
    }
    await registry.removeMember(list, member);
    return { status: 'unsubscribed' };
  });
  app.get<{ Params: { address: string } }>('/lists/:address/archive', async (req, reply) => {
    const list = await listOf(req.params.address);
    return reply.type('text/html').send(page(`Archive of ${list.address}`, '<p>This archive is end-to-end encrypted. Members read it with the Letterlock browser extension, which decrypts it on their own machine.</p>'));
  });

  // ---- the archive ------------------------------------------------------------------------------------

  app.post<{ Params: { address: string } }>('/v1/lists/:address/auth/challenge', limited(perAddress('challenge'), perIp('challenge', limits.challengePerIp)), async (req) => {
    const list = await listOf(req.params.address);
    return await archive.challenge(list, parse(ChallengeRequest, req.body).address);
  });
  app.post<{ Params: { address: string } }>('/v1/lists/:address/auth/login', limited(perIp('login', limits.sensitivePerIp)), async (req) => {
    const list = await listOf(req.params.address);
    const { challengeId, signature } = parse(LoginRequest, req.body);
    return archive.login(list, challengeId, signature);
  });
  app.get<{ Params: { address: string }; Querystring: { before?: string; limit?: string } }>('/v1/lists/:address/archive/threads', async (req) => {
    const list = await listOf(req.params.address);
    const session = await archive.session(list, bearer(req));
    const q = parse(z.object({ before: z.coerce.number().int().positive().optional(), limit: z.coerce.number().int().min(1).max(100).default(20) }), req.query);
    return await archive.threads(session, q.before ?? null, q.limit);
  });
  // One thread by a post's archive id or Message-ID (a permalink); at most 500 posts, like a page's thread.
  app.get<{ Params: { address: string }; Querystring: { id?: string; messageId?: string } }>('/v1/lists/:address/archive/thread', async (req) => {
    const list = await listOf(req.params.address);
    const session = await archive.session(list, bearer(req));
    const q = parse(z.union([
      z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) }).strict(),
      z.object({ messageId: z.string().min(1).max(998) }).strict(),
    ]), req.query);
    return await archive.thread(session, q);
  });
  app.post<{ Params: { address: string } }>('/v1/lists/:address/archive/messages', async (req) => {
    const list = await listOf(req.params.address);
    const session = await archive.session(list, bearer(req));
    return { messages: await archive.messages(session, parse(ArchiveMessagesRequest, req.body).ids) };
  });
  app.get<{ Params: { address: string; id: string } }>('/v1/lists/:address/members/keys/:id', async (req) => {
    const list = await listOf(req.params.address);
    const session = await archive.session(list, bearer(req));
    const id = parse(z.string().regex(/^([0-9A-Fa-f]{16}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/), req.params.id);
    return await archive.memberKey(session, id);
  });

  // ---- moderating in the browser (server/http/moderation.ts) ----------------------------------------

  registerModerationRoutes(app, {
    sql: deps.sql, get publicUrl() { return deps.publicUrl; }, keysFor: deps.keysFor, ...(deps.pipeline ? { pipeline: deps.pipeline } : {}),
    ...(deps.now ? { now: deps.now } : {}), maxPendingChallenges: limits.maxPendingChallenges,
    limits, parse, bearer, listOf, limited, perIp, perAddress,
  });

  // ---- the operator API --------------------------------------------------------------------------------

  await app.register(async (admin) => {
    admin.addHook('onRequest', async (req) => {
      const token = bearer(req);
      if (!token || !sameSecret(token, deps.adminToken)) throw new ApiFailure(401, 'UNAUTHORIZED', 'The operator API needs the admin token.');
    });
    admin.get('/lists', async () => {
      const out = [];
      for (const l of await allLists(deps.sql)) out.push({ ...await listInfo(l), members: await countMembers(deps.sql, l.id), posts: await countPosts(deps.sql, l.id) });
      return out;
    });
    admin.put<{ Params: { address: string } }>('/lists/:address/settings', async (req) => {
      const list = await listOf(req.params.address);
      const { replayWindowDays, replyTo, hideSubjects, ...settings } = parse(z.object({
        name: z.string().max(200).optional(), description: z.string().max(2000).optional(), subscription: z.enum(['open', 'moderated']).optional(),
        replayWindowDays: z.number().int().min(1).max(MAX_REPLAY_WINDOW_DAYS).optional(),
        replyTo: z.enum(['author', 'list']).optional(),
        hideSubjects: z.boolean().optional(),
      }), req.body);
      await setListSettings(deps.sql, list.id, settings);
      await updatePolicy(deps.sql, list.id, { replayWindowDays, replyTo, hideSubjects });
      return await listInfo(await getListById(deps.sql, list.id) ?? list);
    });
    admin.get<{ Params: { address: string }; Querystring: { after?: string; limit?: string } }>('/lists/:address/members', async (req) => {
      const list = await listOf(req.params.address);
      const q = parse(z.object({ after: z.string().max(254).default(''), limit: z.coerce.number().int().min(1).max(1000).default(200) }), req.query);
      const rows = await memberPage(deps.sql, list.id, q.after, q.limit);
      return { members: rows.map((r) => ({ address: r.address, fingerprint: r.fingerprint, keyState: r.key_state, expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null })) };
    });
    admin.post<{ Params: { address: string } }>('/lists/:address/members', async (req, reply) => {
      const list = await listOf(req.params.address);
      const body = parse(SubscribeRequest, req.body);
      await registry.admit(list, body.address, body.publicKey, body.delivery);
      return reply.status(201).send({ status: 'member', address: body.address });
    });
    admin.delete<{ Params: { address: string; member: string } }>('/lists/:address/members/:member', async (req) => {
      const list = await listOf(req.params.address);
      if (!await registry.removeMember(list, parse(Address, req.params.member))) throw notFound('No such member.');
      return { status: 'removed' };
    });
    admin.get<{ Params: { address: string } }>('/lists/:address/pending', async (req) => ({ pending: await listPendingMembers(deps.sql, (await listOf(req.params.address)).id) }));
    admin.post<{ Params: { address: string; member: string } }>('/lists/:address/pending/:member/approve', async (req) => {
      const list = await listOf(req.params.address);
      await registry.approvePending(list, parse(Address, req.params.member));
      return { status: 'member' };
    });
    admin.get<{ Params: { address: string } }>('/lists/:address/held', async (req) => ({
      held: (await listHeld(deps.sql, (await listOf(req.params.address)).id)).map((h) => ({ id: h.id, sender: h.sender, size: h.size, reason: h.reason, receivedAt: new Date(h.receivedAt).toISOString() })),
    }));
    admin.post<{ Params: { address: string; id: string; action: string } }>('/lists/:address/held/:id/:action', async (req) => {
      const list = await listOf(req.params.address);
      const id = parse(z.coerce.number().int().positive(), req.params.id);
      const held = await getHeld(deps.sql, id);
      if (!held || held.listId !== list.id || !deps.pipeline) throw notFound('No such held post.');
      if (req.params.action === 'approve') return { outcome: await deps.pipeline.approve(id) };
      if (req.params.action === 'reject') return { outcome: await deps.pipeline.reject(id) };
      throw notFound('No such action.');
    });
    admin.post('/key-expiry-check', async () => registry.checkExpiringKeys());
    admin.get<{ Params: { address: string } }>('/lists/:address/failures', async (req) => {
      const list = await listOf(req.params.address);
      const rows = await deps.queue.failures(list.id, 500);
      return { failures: rows.map((r) => ({ delivery: r.id, post: r.post_id, rcpt: r.rcpt, state: r.state, attempts: r.attempts, reason: r.last_error })) };
    });
  }, { prefix: '/v1/admin' });

  return app;
}
