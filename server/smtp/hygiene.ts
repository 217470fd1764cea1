// SMTP connection hygiene: a client may hold a connection slot only while it is
// on its way to sending a message. smtp-server bounds total clients (maxClients)
// and idle time (socketTimeout, which any NOOP renews); this adds what it lacks:
//   - a per-IP cap on open connections (421), so one address cannot take every slot;
//   - a flood cool-down: an address that opens more than N connections a minute
//     gets 421 for a while (greylisting-style: a real MTA retries later);
//   - an absolute deadline to reach DATA, counted from connect and not renewed by
//     NOOP, RSET or HELO; after a message the next command starts a new one;
//   - a cap on the commands a client may send before DATA.
// Operator-listed trusted clients (e.g. the local MTA) skip the per-IP caps.
// Every map here is bounded, whatever the number of addresses that connect.

import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import type { EventLog, LogCode } from '../log/log.ts';

export interface HygieneOptions {
  dataDeadlineMs: number;
  messageDeadlineMs: number;
  maxCommandsBeforeData: number;
  perIpConnections: number;
  floodConnectionsPerMinute: number;
  floodCooldownMs: number;
  trustedClients: string[];
}

const MINUTE = 60_000;
/** Addresses remembered for the flood window; beyond this the quietest are forgotten. */
const MAX_TRACKED = 20_000;

/** The address a limit applies to: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64). */
export function clientKey(address: string): string {
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('::', 2);
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

interface SessionState {
  key: string;
  counted: boolean;
  commands: number;
  timer: NodeJS.Timeout | null;
}

/** The slice of smtp-server's connection object used here (not in its public types). */
interface Connection {
  id: string;
  session: SMTPServerSession;
  send(code: number, data?: string): void;
  close(): void;
  _onCommand(command: Buffer, callback?: () => void): void;
}

function refusal(message: string): Error {
  return Object.assign(new Error(message), { responseCode: 421 });
}

export class ConnectionGuard {
  private readonly open = new Map<string, number>();
  private readonly recent = new Map<string, number[]>();
  private readonly coolUntil = new Map<string, number>();
  private readonly sessions = new Map<string, SessionState>();
  private readonly trusted: Set<string>;
  private server: SMTPServer | null = null;

  constructor(private readonly o: HygieneOptions, private readonly log: EventLog) {
    this.trusted = new Set(o.trustedClients.map(clientKey));
  }

  /** Call once with the server these hooks belong to (to reach its connections). */
  attach(server: SMTPServer): void {
    this.server = server;
  }

  /** Open connections from one client (for tests and the status of a running server). */
  openFrom(address: string): number {
    return this.open.get(clientKey(address)) ?? 0;
  }

  /** smtp-server's onConnect. */
  onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const key = clientKey(session.remoteAddress || 'unknown');
    const trusted = this.trusted.has(key);
    if (!trusted) {
      const refused = this.admit(key);
      if (refused) {
        this.log.info('smtp.client_refused', { code: refused.code });
        return callback(refusal(refused.message));
      }
      this.open.set(key, (this.open.get(key) ?? 0) + 1);
    }
    const state: SessionState = { key, counted: !trusted, commands: 0, timer: null };
    this.sessions.set(session.id, state);
    const conn = this.connectionOf(session.id);
    if (conn) this.watch(conn, state);
    callback();
  }

  /** smtp-server's onClose: called once per connection, refused ones included. */
  onClose(session: SMTPServerSession): void {
    const state = this.sessions.get(session.id);
    if (!state) return;
    this.sessions.delete(session.id);
    if (state.timer) clearTimeout(state.timer);
    if (state.counted) {
      const n = (this.open.get(state.key) ?? 1) - 1;
      if (n > 0) this.open.set(state.key, n);
      else this.open.delete(state.key);
    }
  }

  /** Counts the attempt, then says whether this client must wait. */
  private admit(key: string): { code: LogCode; message: string } | null {
    const now = Date.now();
    const times = (this.recent.get(key) ?? []).filter((t) => now - t < MINUTE);
    times.push(now);
    // Only "more than N in the window" matters: N + 1 timestamps are enough.
    if (times.length > this.o.floodConnectionsPerMinute + 1) times.splice(0, times.length - this.o.floodConnectionsPerMinute - 1);
    this.recent.delete(key); // re-insert: the map's order is the order of last activity
    this.recent.set(key, times);
    this.prune(now);
    const until = this.coolUntil.get(key);
    if (until !== undefined && until > now) return { code: 'FLOOD', message: 'Too many connections from your address, try again later' };
    if (times.length > this.o.floodConnectionsPerMinute && this.o.floodCooldownMs > 0) {
      this.coolUntil.set(key, now + this.o.floodCooldownMs);
      return { code: 'FLOOD', message: 'Too many connections from your address, try again later' };
    }
    if ((this.open.get(key) ?? 0) >= this.o.perIpConnections) {
      return { code: 'PER_IP_LIMIT', message: 'Too many open connections from your address, try again later' };
    }
    return null;
  }

  private prune(now: number): void {
    if (this.recent.size <= MAX_TRACKED && this.coolUntil.size <= MAX_TRACKED) return;
    for (const [k, until] of this.coolUntil) if (until <= now) this.coolUntil.delete(k);
    // The map is ordered by last activity: forget the quietest first.
    for (const k of this.recent.keys()) {
      if (this.recent.size <= MAX_TRACKED / 2) break;
      this.recent.delete(k);
    }
    // Still too many cooling addresses: forget the oldest (they are refused a little less long).
    for (const k of this.coolUntil.keys()) {
      if (this.coolUntil.size <= MAX_TRACKED) break;
      this.coolUntil.delete(k);
    }
  }

  private connectionOf(id: string): Connection | null {
    for (const c of (this.server?.connections ?? []) as Iterable<unknown>) {
      if ((c as Connection).id === id) return c as Connection;
    }
    return null;
  }

  private cut(conn: Connection, state: SessionState, code: LogCode, message: string): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = null;
    this.log.info('smtp.client_cut', { code });
    conn.send(421, message);
    conn.close();
  }

  private arm(conn: Connection, state: SessionState, ms: number): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(() => this.cut(conn, state, 'DATA_DEADLINE', 'Timeout: no message in time, closing connection'), ms);
    state.timer.unref();
  }

  /**
   * Counts the commands of one connection. smtp-server has no per-command hook,
   * so the connection's own dispatcher is wrapped (its parser calls it by name).
   */
  private watch(conn: Connection, state: SessionState): void {
    const dispatch = conn._onCommand.bind(conn);
    this.arm(conn, state, this.o.dataDeadlineMs);
    let deadlineFromData = false;
    conn._onCommand = (command: Buffer, callback?: () => void) => {
      if (deadlineFromData) {
        // The first command after a message: a new deadline for the next one.
        deadlineFromData = false;
        state.commands = 0;
        this.arm(conn, state, this.o.dataDeadlineMs);
      }
      state.commands++;
      if (state.commands > this.o.maxCommandsBeforeData) {
        return this.cut(conn, state, 'TOO_MANY_COMMANDS', 'Too many commands without a message, closing connection');
      }
      const name = command.subarray(0, 8).toString('latin1').split(/[\s:]/, 1)[0]!.toUpperCase();
      if (name === 'DATA' && conn.session.envelope.rcptTo.length > 0) {
        // The message itself has a longer, separate bound (a slow link may need it).
        deadlineFromData = true;
        this.arm(conn, state, this.o.messageDeadlineMs);
      }
      dispatch(command, callback);
    };
  }
}
