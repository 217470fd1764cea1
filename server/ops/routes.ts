// The HTTP routes operators' tools scrape: /health (liveness plus readiness,
// 503 when a part is failing) and /metrics (Prometheus text format).
//
// /metrics is an operator endpoint: it needs the operator API's bearer token
// (<data>/admin-token), like /v1/admin. With metrics.access "loopback" a scraper
// on this machine may also read it without the token: the TCP peer must be a
// loopback address and the request must carry no proxy header, because a reverse
// proxy on the same machine would otherwise make every outsider look local.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LoopDelay } from '../http/loop-delay.ts';
import { ApiFailure } from '../http/errors.ts';
import type { ServerMetrics } from '../metrics/metrics.ts';
import { sameSecret } from '../registry/tokens.ts';
import type { QueueStore } from '../store/queue.ts';
import type { HealthCheck } from './health.ts';

export type MetricsAccess = 'token' | 'loopback';

export interface OpsRouteDeps {
  queue: QueueStore;
  loopDelay: LoopDelay;
  adminToken: string;
  health?: HealthCheck;
  metrics?: ServerMetrics;
  metricsAccess?: MetricsAccess;
}

const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-host', 'via'];

export function isLoopbackPeer(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** Admitted: the operator token, or (access "loopback") a direct request from this machine. */
export function metricsAllowed(req: Pick<FastifyRequest, 'headers'> & { socket: { remoteAddress?: string | undefined } }, adminToken: string, access: MetricsAccess): boolean {
  const h = req.headers.authorization;
  if (typeof h === 'string' && h.startsWith('Bearer ') && sameSecret(h.slice(7).trim(), adminToken)) return true;
  if (access !== 'loopback') return false;
  return isLoopbackPeer(req.socket.remoteAddress) && !PROXY_HEADERS.some((p) => req.headers[p] !== undefined);
}

export function registerOpsRoutes(app: FastifyInstance, d: OpsRouteDeps): void {
  app.get('/health', async (_req, reply) => {
    let queue: Record<string, number> | null = null;
    try {
      queue = await d.queue.stats();
    } catch {
      // the database check below says why
    }
    const base = { node: d.queue.nodeId, queue, eventLoopDelay: d.loopDelay.snapshot() };
    if (!d.health) return { ok: true, ...base };
    const r = await d.health.check();
    return reply.status(r.ready ? 200 : 503).send({ ok: r.ready, ready: r.ready, failing: r.failing, checks: r.checks, ...base });
  });

  if (!d.metrics) return;
  const metrics = d.metrics;
  app.get('/metrics', async (req, reply) => {
    if (!metricsAllowed(req, d.adminToken, d.metricsAccess ?? 'token')) {
      throw new ApiFailure(401, 'UNAUTHORIZED', 'The metrics need the admin token (Authorization: Bearer, from the data folder\'s admin-token file).');
    }
    return reply.type(metrics.contentType).send(await metrics.scrape());
  });
}
