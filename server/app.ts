// Wires one running list server: database, unlocked list keys, pipeline, SMTP
// ingest, HTTP port and the delivery worker. `serve` and the demo both use it.

import type { AddressInfo } from 'node:net';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SMTPServer } from 'smtp-server';
import type { Config } from './config/config.ts';
import { ConfigError, loadConfig, nodeId } from './config/config.ts';
import { verifySecret } from './config/secret.ts';
import { MaildirRelay, SmtpRelay, type Relay } from './delivery/relay.ts';
import { createTokens } from './delivery/tokens.ts';
import { DeliveryWorker } from './delivery/worker.ts';
import { ADMIN_TOKEN_FILE, ensureAdminToken } from './http/admin-token.ts';
import { createApi } from './http/api.ts';
import { watchLoopDelay } from './http/loop-delay.ts';
import { ServerMetrics } from './metrics/metrics.ts';
import { DigestJob } from './ops/digest.ts';
import { HealthCheck, relayTarget } from './ops/health.ts';
import { HeldNotifier } from './ops/held-notice.ts';
import { unlockList, type ListKeys } from './lists/lists.ts';
import { backfillMemberKeyIds } from './lists/members.ts';
import { codeOf, createEventLog, reopenOnSighup, type EventLog } from './log/log.ts';
import { OpenPool } from './pipeline/pool.ts';
import { Pipeline } from './pipeline/run.ts';
import { WorkQueue } from './pipeline/workqueue.ts';
import { Fanout } from './pipeline/wrap.ts';
import { WrapPool } from './pipeline/wrap-pool.ts';
import { createIngest } from './smtp/ingest.ts';
import { RequestHandler } from './commands/request.ts';
import { getMeta, type Sql } from './store/db.ts';
import { isPostgresUrl, openDatabase } from './store/open.ts';
import { allLists, type ListRecord } from './store/lists.ts';
import { QueueStore } from './store/queue.ts';
import { PgSql } from './store/sql-pg.ts';
import { PgWakeups } from './store/wakeup.ts';
import { mailmanClient } from './mailman/endpoint.ts';
import { MailmanService } from './mailman/sync.ts';

export const DB_FILE = 'letterlock.db';

/** The database a data folder uses: its configured URL or file, else letterlock.db inside it. */
export function databaseSpec(dataDir: string, config: Config = loadConfig(dataDir).config): string {
  const d = config.database;
  if (!d) return join(dataDir, DB_FILE);
  return isPostgresUrl(d) ? d : resolve(dataDir, d);
}

/** Opens the data folder's database (migrated) and checks the secret against its verifier. */
export async function openData(dataDir: string, secret: string, config?: Config): Promise<Sql> {
  const sql = await openDatabase(databaseSpec(dataDir, config));
  try {
    const verifier = await getMeta(sql, 'secret_verifier');
    if (!verifier) throw new ConfigError(`${dataDir} is not initialized (run: letterlock init)`);
    if (!verifySecret(secret, verifier)) throw new ConfigError('the server secret does not match the one this data folder was created with');
  } catch (e) {
    await sql.close();
    throw e;
  }
  return sql;
}

/** Unlocked list keys, cached per list for the life of the process (memory only). */
export function listKeyCache(secret: string): (list: ListRecord) => Promise<ListKeys> {
  const cache = new Map<number, Promise<ListKeys>>();
  return (list) => {
    let p = cache.get(list.id);
    if (!p) {
      p = unlockList(list, secret);
      cache.set(list.id, p);
      p.catch(() => cache.delete(list.id));
    }
    return p;
  };
}

export function makeRelay(dataDir: string, config: Config): Relay {
  if (config.relay) return new SmtpRelay({ url: config.relay, ...config.relayOptions });
  return new MaildirRelay(config.maildir ?? join(dataDir, 'maildir'));
}

export interface RunningServer {
  /** This node's id (config `node`, else `<hostname>:<smtp port>`). */
  node: string;
  smtpPort: number;
  httpPort: number;
  relay: string;
  worker: DeliveryWorker;
  sql: Sql;
  log: EventLog;
  /** Observability and the operators' notices (server/ops/, server/metrics/). */
  ops: { metrics: ServerMetrics; health: HealthCheck; held: HeldNotifier; digest: DigestJob };
  close(): Promise<void>;
}

/** A start that failed for a reason the operator can fix: one line, no stack trace. */
export class StartError extends Error {
  override name = 'StartError';
}

function listenError(what: 'HTTP' | 'SMTP', host: string, port: number, e: unknown): StartError {
  const err = listenErrorText(what, host, port, e);
  // Keep the system's code (e.g. EADDRINUSE) for the log line; the message is for the operator.
  const code = (e as { code?: string } | null)?.code;
  if (code) Object.assign(err, { code });
  return err;
}

function listenErrorText(what: 'HTTP' | 'SMTP', host: string, port: number, e: unknown): StartError {
  const code = (e as { code?: string } | null)?.code;
  const key = what === 'HTTP' ? 'http' : 'smtp';
  const fix = `set ${key}.port in letterlock.json or LETTERLOCK_${what}_PORT`;
  if (code === 'EADDRINUSE') return new StartError(`${what} port ${host}:${port} is in use: ${fix}`);
  if (code === 'EACCES') return new StartError(`${what} port ${host}:${port} is not allowed for this user (ports below 1024 need privileges): ${fix}`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartError(`${what} host ${host} is not an address of this machine: set ${key}.host in letterlock.json`);
  return new StartError(`${what} could not listen on ${host}:${port} (${codeOf(e)})`);
}

function adminToken(dataDir: string): string {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  try {
    if (existsSync(path) && !statSync(path).isFile()) throw new StartError(`the admin token ${path} is not a file: remove it and start again`);
    return ensureAdminToken(dataDir).token;
  } catch (e) {
    if (e instanceof StartError) throw e;
    const code = (e as { code?: string } | null)?.code;
    throw new StartError(code ? `cannot write the admin token ${path} (${code})` : `admin token: ${(e as Error).message}`);
  }
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; once(e: 'error', cb: (e: Error) => void): unknown; off(e: 'error', cb: (e: Error) => void): unknown }, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Starts everything or nothing: the admin token, HTTP and the delivery worker
 * come first and SMTP listens last, so a server that says 250 can also deliver.
 * If any step fails, what was opened is closed again and the error is thrown
 * (a StartError carries a one-line reason for the operator).
 */
export async function startServer(dataDir: string, config: Config, secret: string, options: { log?: EventLog } = {}): Promise<RunningServer> {
  const baseLog = options.log ?? createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: config.logLevel });
  const sql = await openData(dataDir, secret, config);
  // One metrics registry per server. Refusals and holds are counted from the event log's codes on their way through.
  const metrics = new ServerMetrics({ sql });
  const log = metrics.tap(baseLog);
  // What is open so far, closed in reverse order if a later step fails.
  const undo: Array<() => Promise<unknown> | void> = [() => sql.close()];
  undo.push(reopenOnSighup(log)); // log rotation: see docs/deploy-logs.md
  const rollback = async () => {
    for (const u of undo.reverse()) {
      try { await u(); } catch { /* keep closing the rest */ }
    }
  };
  try {
    const node = nodeId(config);
    const queue = new QueueStore(sql, { nodeId: node, leaseMs: config.cluster.leaseMs });
    const tokens = createTokens(secret);
    const relay = makeRelay(dataDir, config);
    undo.push(() => relay.close());
    let worker: DeliveryWorker | null = null;
    // Several nodes on PostgreSQL: rows queued here wake the other nodes' workers at once (NOTIFY);
    // their bounded idle poll is the fallback while the listening connection is down.
    const wake = sql instanceof PgSql ? new PgWakeups(sql, { onWake: () => worker?.kick() }) : null;
    if (wake) {
      wake.start();
      undo.push(() => wake.stop());
    }
    const queued = (): void => {
      worker?.kick();
      wake?.notify();
    };
    const keysFor = listKeyCache(secret);
    // Unlock every list key now: the S2K work is paid at start, not by the first post.
    await Promise.all((await allLists(sql)).map((l) => keysFor(l)));
    // Data folders from before the key-ID index: index their members' subkeys, in the background.
    void backfillMemberKeyIds(sql).catch((e: unknown) => log.warn('server.error', { code: codeOf(e) }));
    // Lists bound to a Mailman Core (issue 11): without the Core's address their roster is unknown, so refuse to start.
    const bound = (await allLists(sql)).filter((l) => l.mailmanListId);
    if (bound.length && !config.mailman) throw new StartError(`list ${bound[0]!.address} is bound to Mailman list ${bound[0]!.mailmanListId}: add a "mailman" section (url, user/pass or credentialsFile) to letterlock.json`);
    // The public URL goes into statements members sign, so it must be known before
    // the HTTP port opens; with port 0 it is taken from the port the OS gave (below).
    // Held-post notices and Mailman members' key notices read it when they are written.
    let publicUrl = config.publicUrl ?? '';
    const rest = mailmanClient(config, dataDir);
    const mailman = rest ? new MailmanService({
      sql, queue, log, rest, settings: config.mailman!, publicUrl: () => publicUrl, onQueued: queued,
    }) : undefined;
    if (mailman) undo.push(() => mailman.stop());
    // The wrap step on every core (closed after the fan-out stops: undo runs in reverse).
    const wrapPool = new WrapPool({ threads: config.pipeline.threads });
    wrapPool.warm();
    undo.push(() => wrapPool.close());
    const fanout = new Fanout({ sql, queue, log, keysFor, wrapPool, nodeId: node, leaseMs: config.cluster.leaseMs, onQueued: queued, observe: metrics, ...(mailman ? { mailman } : {}) });
    undo.push(async () => { fanout.stop(); await fanout.idle(); });
    const pool = new OpenPool({ threads: config.pipeline.threads, budgetMs: config.pipeline.budgetMs });
    pool.warm();
    undo.push(() => pool.close());
    const held = new HeldNotifier({ sql, queue, log, keysFor, get publicUrl() { return publicUrl; }, perHour: config.notify.heldPerHour, onQueued: queued });
    undo.push(async () => { held.stop(); await held.idle(); });
    const pipeline = new Pipeline({ sql, queue, log, keysFor, fanout, pool, nodeId: node, onQueued: queued, onHeld: (list, id) => held.held(list, id), ...(mailman ? { mailman } : {}) });
    const health = new HealthCheck({
      sql, keysFor, relay: relayTarget(config.relay, config.maildir ?? join(dataDir, 'maildir')), timeoutMs: config.health.relayTimeoutMs, cacheMs: config.health.cacheMs,
    });
    const work = new WorkQueue(config.pipeline.concurrency, config.pipeline.maxWaiting);

    // One loop-delay watcher for /health and /metrics, started after the key unlocking
    // above: that start-up work is not a delay any post or request caused.
    const loopDelay = watchLoopDelay();
    undo.push(() => loopDelay.stop());
    metrics.watchLoop(loopDelay);
    const http = await createApi({
      sql, queue, tokens, secret, adminToken: adminToken(dataDir), keysFor, pipeline, log,
      limits: config.http.limits, trustProxy: config.http.trustProxy,
      get publicUrl() { return publicUrl; },
      onQueued: queued,
      ops: { health, metrics, metricsAccess: config.metrics.access, loopDelay },
    });
    undo.push(() => http.close());
    try {
      await http.listen({ port: config.http.port, host: config.http.host });
    } catch (e) {
      throw listenError('HTTP', config.http.host, config.http.port, e);
    }
    const httpPort = (http.server.address() as AddressInfo).port;
    if (!publicUrl) publicUrl = `http://${config.http.host}:${httpPort}`;
    log.info('http.listening', { port: httpPort });

    worker = new DeliveryWorker({
      sql, queue, relay, tokens, log, delivery: config.delivery, publicUrl, keysFor,
      observe: (e) => { metrics.delivery(e); health.observeDelivery(e); },
    });
    worker.start();
    undo.push(() => worker!.stop());
    const digest = new DigestJob({ sql, queue, log, keysFor, nodeId: node, intervalMs: config.notify.digestIntervalSeconds * 1000, onQueued: queued });
    digest.start();
    undo.push(async () => { digest.stop(); await digest.idle(); });
    mailman?.start(); // first roster read of every bound list, then on the interval
    void fanout.resumeAll(); // fan-outs a crash interrupted
    // Fan-outs another node left (it died mid-post): taken over once its lease runs out.
    if (sql.dialect === 'postgres') fanout.watchTakeovers(config.cluster.pollMs);

    const smtp: SMTPServer = createIngest({
      host: config.smtp.host, port: config.smtp.port, maxMessageBytes: config.smtp.maxMessageBytes, maxClients: config.smtp.maxClients,
      hygiene: config.smtp,
      sql, queue, pipeline, work, tokens, log,
      requests: new RequestHandler({ sql, queue, log, keysFor, pool, onQueued: queued }),
    });
    smtp.on('error', (e) => log.error('smtp.error', { code: codeOf(e) }));
    try {
      await listen(smtp.server as never, config.smtp.port, config.smtp.host);
    } catch (e) {
      throw listenError('SMTP', config.smtp.host, config.smtp.port, e);
    }
    undo.push(() => new Promise<void>((r) => smtp.close(() => r())));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    log.info('smtp.listening', { port: smtpPort });
    log.info('server.started', {});

    let closing: Promise<void> | null = null;
    return {
      node, smtpPort, httpPort, relay: relay.description, worker, sql, log, ops: { metrics, health, held, digest },
      close() {
        closing ??= (async () => {
          log.info('server.stopping', {});
          await rollback();
        })();
        return closing;
      },
    };
  } catch (e) {
    log.error('server.start_failed', { code: codeOf(e) });
    await rollback();
    throw e;
  }
}
