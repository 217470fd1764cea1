// Several nodes on one PostgreSQL: a node that queues delivery rows tells the
// others at once (NOTIFY), so their workers start on them without waiting for
// their next poll. Each node LISTENs on a dedicated connection of its own (a
// pooled one would be handed to other statements); when that connection drops,
// it reconnects with a growing pause, and meanwhile the workers' bounded poll
// (worker.ts: at most a second idle) still finds the rows. A notification
// carries nothing: it only means "look at the queue".

import pg from 'pg';
import { PgSql } from './sql-pg.ts';
import type { Sql } from './sql.ts';

export const WAKE_CHANNEL = 'letterlock_queue';
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 30_000;
/** Notifications sent at most this often by one node: a fan-out's pages come fast. */
const NOTIFY_EVERY_MS = 50;

export interface WakeupOptions {
  /** Called for each notification from any node (this one too); must not throw. */
  onWake(): void;
  /** Told when the listening connection is up or lost (logs); must not throw. */
  onState?(up: boolean): void;
}

export class PgWakeups {
  private client: pg.Client | null = null;
  private stopped = false;
  private pause = RECONNECT_MIN_MS;
  private retry: NodeJS.Timeout | null = null;
  private lastNotify = 0;
  private notifyTimer: NodeJS.Timeout | null = null;
  /** True while LISTEN is in force (tests, health). */
  listening = false;

  constructor(private readonly sql: PgSql, private readonly o: WakeupOptions) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    // The pool's own settings (URL, timeouts), on a connection outside it.
    const client = new pg.Client({ ...(this.sql.pool.options as pg.ClientConfig), statement_timeout: undefined, query_timeout: undefined } as pg.ClientConfig);
    this.client = client;
    const lost = () => {
      if (this.client !== client) return;
      this.client = null;
      if (this.listening) this.o.onState?.(false);
      this.listening = false;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      this.later();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => { if (n.channel === WAKE_CHANNEL) this.o.onWake(); });
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
    } catch {
      lost();
      return;
    }
    if (this.client !== client || this.stopped) {
      client.end().catch(() => {});
      return;
    }
    this.listening = true;
    this.pause = RECONNECT_MIN_MS;
    this.o.onState?.(true);
    // Rows queued while this node was not listening: look once.
    this.o.onWake();
  }

  private later(): void {
    if (this.stopped || this.retry) return;
    const wait = this.pause;
    this.pause = Math.min(RECONNECT_MAX_MS, this.pause * 2);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect();
    }, wait);
    this.retry.unref();
  }

  /** Tells every node (through the pool); at most one notification per NOTIFY_EVERY_MS, never throws. */
  notify(): void {
    if (this.stopped || this.notifyTimer) return;
    const send = () => {
      this.lastNotify = Date.now();
      this.sql.run('SELECT pg_notify(?, ?)', [WAKE_CHANNEL, '']).catch(() => { /* the others' poll finds the rows */ });
    };
    const wait = this.lastNotify + NOTIFY_EVERY_MS - Date.now();
    if (wait <= 0) return send();
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = null;
      send();
    }, wait);
    this.notifyTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    if (this.notifyTimer) clearTimeout(this.notifyTimer);
    this.retry = null;
    this.notifyTimer = null;
    const c = this.client;
    this.client = null;
    this.listening = false;
    if (c) await c.end().catch(() => {});
  }
}

/**
 * For a command outside the server (letterlock held approve, mailman import) that
 * queued rows: one notification, so the running nodes start on them now rather
 * than at their next poll. SQLite: nothing (the server polls its own file). Never
 * throws: the poll still finds the rows.
 */
export async function notifyQueued(sql: Sql): Promise<void> {
  if (!(sql instanceof PgSql)) return;
  await sql.run('SELECT pg_notify(?, ?)', [WAKE_CHANNEL, '']).catch(() => undefined);
}

