// Wires one running list server: database, unlocked list keys, pipeline, SMTP
// ingest, HTTP port and the delivery worker. `serve` and the demo both use it.

import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { SMTPServer } from 'smtp-server';
import type { Config } from './config/config.ts';
import { ConfigError } from './config/config.ts';
import { verifySecret } from './config/secret.ts';
import { MaildirRelay, SmtpRelay, type Relay } from './delivery/relay.ts';
import { createTokens } from './delivery/tokens.ts';
import { DeliveryWorker } from './delivery/worker.ts';
import { ensureAdminToken } from './http/admin-token.ts';
import { createApi } from './http/api.ts';
import { unlockList, type ListKeys } from './lists/lists.ts';
import { codeOf, createEventLog, type EventLog } from './log/log.ts';
import { OpenPool } from './pipeline/pool.ts';
import { Pipeline } from './pipeline/run.ts';
import { WorkQueue } from './pipeline/workqueue.ts';
import { Fanout } from './pipeline/wrap.ts';
import { createIngest } from './smtp/ingest.ts';
import { RequestHandler } from './commands/request.ts';
import { getMeta, openDb, type Db } from './store/db.ts';
import { allLists, type ListRecord } from './store/lists.ts';
import { QueueStore } from './store/queue.ts';

export const DB_FILE = 'letterlock.db';

/** Opens the data folder's database and checks the secret against its verifier. */
export function openData(dataDir: string, secret: string): Db {
  const db = openDb(join(dataDir, DB_FILE));
  const verifier = getMeta(db, 'secret_verifier');
  if (!verifier) throw new ConfigError(`${dataDir} is not initialized (run: letterlock init)`);
  if (!verifySecret(secret, verifier)) throw new ConfigError('the server secret does not match the one this data folder was created with');
  return db;
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
  smtpPort: number;
  httpPort: number;
  relay: string;
  worker: DeliveryWorker;
  db: Db;
  log: EventLog;
  close(): Promise<void>;
}

function listen(server: { listen(port: number, host: string, cb: () => void): unknown; once(e: 'error', cb: (e: Error) => void): unknown }, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

export async function startServer(dataDir: string, config: Config, secret: string, options: { log?: EventLog } = {}): Promise<RunningServer> {
  const log = options.log ?? createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: config.logLevel });
  const db = openData(dataDir, secret);
  const queue = new QueueStore(db);
  const tokens = createTokens(secret);
  const relay = makeRelay(dataDir, config);
  let worker: DeliveryWorker | null = null;
  const keysFor = listKeyCache(secret);
  // Unlock every list key now: the S2K work is paid at start, not by the first post.
  await Promise.all(allLists(db).map((l) => keysFor(l)));
  const fanout = new Fanout({ db, queue, log, keysFor, onQueued: () => worker?.kick() });
  const pool = new OpenPool({ threads: config.pipeline.threads, budgetMs: config.pipeline.budgetMs });
  const pipeline = new Pipeline({ db, queue, log, keysFor, fanout, pool, onQueued: () => worker?.kick() });
  const work = new WorkQueue(config.pipeline.concurrency, config.pipeline.maxWaiting);

  const smtp: SMTPServer = createIngest({
    host: config.smtp.host, port: config.smtp.port, maxMessageBytes: config.smtp.maxMessageBytes, maxClients: config.smtp.maxClients,
    db, queue, pipeline, work, tokens, log,
    requests: new RequestHandler({ db, queue, log, keysFor, pool, onQueued: () => worker?.kick() }),
  });
  smtp.on('error', (e) => log.error('smtp.error', { code: codeOf(e) }));
  await listen(smtp.server as never, config.smtp.port, config.smtp.host);
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  log.info('smtp.listening', { port: smtpPort });
  // The public URL goes into statements members sign, so it must be known before
  // the HTTP port opens; with port 0 it is taken from the port the OS gave.
  let publicUrl = config.publicUrl ?? '';
  const http = await createApi({
    db, queue, tokens, secret, adminToken: ensureAdminToken(dataDir).token, keysFor, pipeline,
    limits: config.http.limits, trustProxy: config.http.trustProxy,
    get publicUrl() { return publicUrl; },
    onQueued: () => worker?.kick(),
  });
  await http.listen({ port: config.http.port, host: config.http.host });
  const httpPort = (http.server.address() as AddressInfo).port;
  if (!publicUrl) publicUrl = `http://${config.http.host}:${httpPort}`;
  log.info('http.listening', { port: httpPort });
  worker = new DeliveryWorker({ db, queue, relay, tokens, log, delivery: config.delivery, publicUrl });
  worker.start();
  void fanout.resumeAll(); // fan-outs a crash interrupted
  log.info('server.started', {});

  return {
    smtpPort, httpPort, relay: relay.description, worker: worker!, db, log,
    async close() {
      log.info('server.stopping', {});
      await new Promise<void>((r) => smtp.close(() => r()));
      await http.close();
      await fanout.idle();
      await worker!.stop();
      await pool.close();
      db.close();
    },
  };
}
