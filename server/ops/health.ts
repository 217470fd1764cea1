// Readiness for /health: can this server take a post and deliver it now?
// - database: a trivial query on the open connection;
// - relay: the outcome of the last delivery attempt if it is recent, otherwise a
//   TCP connect to the relay (or, for Maildir delivery, a writable folder), with
//   a short timeout; the answer is kept for `cacheMs` and one probe runs at a time;
// - keys: every list's keys unlock (cached by the server: cheap after the first).
// Each part says ok or a code; nothing secret (no relay URL, which may hold a password).

import { accessSync, constants, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { ListKeys } from '../lists/lists.ts';
import type { DeliveryEvent } from '../metrics/metrics.ts';
import { pingDatabase, type Sql } from '../store/db.ts';
import { allLists, type ListRecord } from '../store/lists.ts';

export interface CheckResult {
  ok: boolean;
  code?: string;
  [extra: string]: unknown;
}

export interface Readiness {
  ready: boolean;
  failing: string[];
  checks: { database: CheckResult; relay: CheckResult; keys: CheckResult };
}

export type RelayTarget = { kind: 'smtp'; host: string; port: number } | { kind: 'maildir'; root: string };

export function relayTarget(relayUrl: string | undefined, maildir: string): RelayTarget {
  if (!relayUrl) return { kind: 'maildir', root: maildir };
  const u = new URL(relayUrl);
  return { kind: 'smtp', host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (u.protocol === 'smtps:' ? 465 : 25)) };
}

export interface HealthDeps {
  sql: Sql;
  keysFor(list: ListRecord): Promise<ListKeys>;
  relay: RelayTarget;
  /** A TCP connect to the relay gives up after this. */
  timeoutMs: number;
  /** Relay and key answers are reused this long. */
  cacheMs: number;
  now?: () => number;
}

/** A bound on the lists named in a failing keys check. */
const MAX_NAMED = 10;

export function probeTcp(host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: CheckResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, code: 'NET_TIMEOUT' }), timeoutMs);
    socket.once('connect', () => done({ ok: true }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, code: `NET_${(e.code ?? 'ERROR').replace(/[^A-Z0-9_]/g, '')}` }));
  });
}

function probeMaildir(root: string): CheckResult {
  // The folder is made on the first delivery: its nearest existing ancestor must be writable.
  let dir = root;
  for (let i = 0; i < 64 && !existsSync(dir); i++) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return { ok: true };
  } catch (e) {
    return { ok: false, code: `NET_${String((e as NodeJS.ErrnoException).code ?? 'EACCES')}` };
  }
}

export class HealthCheck {
  private lastDelivery: { at: number; result: CheckResult } | null = null;
  private relayCache: { at: number; result: CheckResult } | null = null;
  private relayProbe: Promise<CheckResult> | null = null;
  private keysCache: { at: number; result: CheckResult } | null = null;
  private keysProbe: Promise<CheckResult> | null = null;

  constructor(private readonly d: HealthDeps) {}

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /** The delivery worker's outcomes: the relay answered (even with a refusal) or could not be reached. */
  observeDelivery(e: DeliveryEvent): void {
    if (e.outcome === 'sent') this.lastDelivery = { at: this.now(), result: { ok: true } };
    else if (e.code?.startsWith('NET_')) this.lastDelivery = { at: this.now(), result: { ok: false, code: e.code } };
    else if (e.code?.startsWith('SMTP_')) this.lastDelivery = { at: this.now(), result: { ok: true } };
  }

  database(): Promise<CheckResult> {
    return pingDatabase(this.d.sql);
  }

  async relay(): Promise<CheckResult> {
    const now = this.now();
    const fresh = (c: { at: number } | null) => c !== null && now - c.at < this.d.cacheMs;
    if (fresh(this.lastDelivery)) return { ...this.lastDelivery!.result, from: 'last-delivery' };
    if (fresh(this.relayCache)) return this.relayCache!.result;
    this.relayProbe ??= (async () => {
      const t = this.d.relay;
      const result = t.kind === 'smtp' ? await probeTcp(t.host, t.port, this.d.timeoutMs) : probeMaildir(t.root);
      const r = { ...result, from: 'probe' };
      this.relayCache = { at: this.now(), result: r };
      return r;
    })().finally(() => { this.relayProbe = null; });
    return this.relayProbe;
  }

  async keys(): Promise<CheckResult> {
    if (this.keysCache && this.now() - this.keysCache.at < this.d.cacheMs) return this.keysCache.result;
    this.keysProbe ??= (async (): Promise<CheckResult> => {
      let lists: ListRecord[];
      try {
        lists = await allLists(this.d.sql);
      } catch {
        return { ok: false, code: 'DB_ERROR' };
      }
      const failed: string[] = [];
      for (const l of lists) {
        try {
          await this.d.keysFor(l);
        } catch {
          failed.push(l.address);
        }
      }
      const result: CheckResult = failed.length === 0
        ? { ok: true, lists: lists.length }
        : { ok: false, code: 'KEYS_UNAVAILABLE', lists: lists.length, failed: failed.slice(0, MAX_NAMED), failedCount: failed.length };
      this.keysCache = { at: this.now(), result };
      return result;
    })().finally(() => { this.keysProbe = null; });
    return this.keysProbe;
  }

  async check(): Promise<Readiness> {
    const database = await this.database();
    const [relay, keys] = await Promise.all([this.relay(), this.keys()]);
    const checks = { database, relay, keys };
    const failing = Object.entries(checks).filter(([, c]) => !c.ok).map(([name]) => name);
    return { ready: failing.length === 0, failing, checks };
  }
}
