// The server's configuration: a JSON file in the data folder, validated with zod,
// with a few environment overrides. Defaults bind everything to loopback.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const Port = z.number().int().min(0).max(65535);
const Host = z.string().min(1).max(255);

/** An IP address, a CIDR, or one of proxy-addr's names (loopback, linklocal, uniquelocal). */
const ProxyAddress = z.string().max(64).refine((s) => {
  if (s === 'loopback' || s === 'linklocal' || s === 'uniquelocal') return true;
  const [ip, bits, ...rest] = s.split('/');
  const v = isIP(ip ?? '');
  if (!v || rest.length) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128));
}, 'must be an IP address, a CIDR, or loopback/linklocal/uniquelocal');

/** At most `max` events per `windowSeconds` (a sliding window). */
const Rate = (max: number, windowSeconds: number) => z.object({
  max: z.number().int().min(1).max(1_000_000).default(max),
  windowSeconds: z.number().int().min(1).max(7 * 86_400).default(windowSeconds),
}).strict().prefault({});

/**
 * The HTTP API's limits. A request must pass every limit that applies to it:
 * `perIp` on every route, and on top of it the route's own (see the README).
 */
export const HttpLimitsSchema = z.object({
  /** Every route, per client IP (IPv6 per /64). */
  perIp: Rate(300, 60),
  /** Per named address on the routes whose body names one: subscribe, unsubscribe, log-in challenge. */
  perAddress: Rate(20, 60),
  /** Per IP and route on confirmation, unsubscribe, log-in, signed-request and revocation routes. */
  sensitivePerIp: Rate(60, 60),
  /** Subscription requests per IP. */
  subscribePerIp: Rate(10, 3600),
  /** Log-in challenges per IP. */
  challengePerIp: Rate(30, 600),
  /** Confirmation mails (subscribe and unsubscribe) to one address, over all lists. */
  mailPerAddress: Rate(5, 3600),
  /** Confirmation mails asked for from one IP. */
  mailPerIp: Rate(20, 3600),
  /** Confirmation mails from one list. */
  mailPerList: Rate(500, 3600),
  /** Unconfirmed subscriptions waiting (48 h each), per list and in all; beyond: 503. */
  maxPendingSubscriptionsPerList: z.number().int().min(1).max(10_000_000).default(1000),
  maxPendingSubscriptions: z.number().int().min(1).max(10_000_000).default(10_000),
  /** Unused log-in challenges waiting (2 minutes each); beyond: 503. */
  maxPendingChallenges: z.number().int().min(1).max(10_000_000).default(10_000),
  /** How often stale rows (expired challenges, sessions and tokens, old nonces and limit counters) are deleted; also at start. */
  purgeIntervalSeconds: z.number().int().min(1).max(86_400).default(600),
}).strict().prefault({});

export type HttpLimits = z.infer<typeof HttpLimitsSchema>;

export const ConfigSchema = z.object({
  smtp: z.object({
    host: Host.default('127.0.0.1'),
    port: Port.default(2525),
    /** Largest incoming mail in bytes (advertised with SIZE, enforced while streaming). */
    maxMessageBytes: z.number().int().min(1024).max(200 * 1024 * 1024).default(25 * 1024 * 1024),
    maxClients: z.number().int().min(1).max(10_000).default(100),
    /** From connect (or the end of the last message) to DATA; NOOP, RSET and HELO do not extend it. */
    dataDeadlineMs: z.number().int().min(1000).max(3_600_000).default(30_000),
    /** From DATA to the next command: the message itself, on a slow link. */
    messageDeadlineMs: z.number().int().min(1000).max(3_600_000).default(600_000),
    maxCommandsBeforeData: z.number().int().min(5).max(10_000).default(30),
    /** Open connections per client address (IPv6: per /64); more get 421. */
    perIpConnections: z.number().int().min(1).max(10_000).default(10),
    /** More connections than this from one address within a minute: 421 for floodCooldownMs. */
    floodConnectionsPerMinute: z.number().int().min(1).max(1_000_000).default(60),
    floodCooldownMs: z.number().int().min(0).max(86_400_000).default(60_000),
    /** Client addresses (e.g. the local MTA) that skip the per-address limits. */
    trustedClients: z.array(z.union([z.ipv4(), z.ipv6()])).max(1000).default([]),
  }).strict().prefault({}),
  http: z.object({
    host: Host.default('127.0.0.1'),
    port: Port.default(8025),
    /**
     * Whose word to take for the client address. false (the default): the TCP
     * peer, so X-Forwarded-For is ignored and cannot be forged. Behind a reverse
     * proxy, list the proxy's addresses or CIDRs: only then is X-Forwarded-For read,
     * and only the hops those addresses vouch for. Every per-IP limit keys on it.
     */
    trustProxy: z.union([z.literal(false), z.array(ProxyAddress).min(1).max(64)]).default(false),
    limits: HttpLimitsSchema,
  }).strict().prefault({}),
  /** Base URL written into List-Unsubscribe / List-Archive headers. */
  publicUrl: z.string().url().optional(),
  /** smtp://[user:pass@]host:port, smtps://... or lmtp://host:port (LMTP, RFC 2033); absent: deliver into `maildir`. */
  relay: z.string().regex(/^(smtps?|lmtp):\/\/[^\s]+$/, 'must be smtp://host:port, smtps://host:port or lmtp://host:port').optional(),
  relayOptions: z.object({
    maxConnections: z.number().int().min(1).max(100).default(8),
    /** Accept a self-signed relay certificate (only for a relay on a trusted network). */
    tlsRejectUnauthorized: z.boolean().default(true),
    requireTLS: z.boolean().default(false),
  }).strict().prefault({}),
  maildir: z.string().min(1).optional(),
  delivery: z.object({
    /** Copies in flight to the relay at once. */
    concurrency: z.number().int().min(1).max(500).default(32),
    /** Rows claimed at once; a crash may re-send at most these. */
    batch: z.number().int().min(1).max(5000).default(64),
    retryBaseMs: z.number().int().min(10).default(30_000),
    retryMaxMs: z.number().int().min(10).default(3_600_000),
    /** A temporary failure older than this becomes permanent. */
    giveUpAfterMs: z.number().int().min(1000).default(5 * 24 * 3_600_000),
    reportDelayMs: z.number().int().min(0).default(5_000),
  }).strict().prefault({}),
  pipeline: z.object({
    /** Posts processed at once, and posts waiting; beyond that SMTP answers 451. */
    concurrency: z.number().int().min(1).max(64).default(2),
    maxWaiting: z.number().int().min(0).max(10_000).default(32),
    /** Worker threads that parse, decrypt and verify posts; 0: one per core. */
    threads: z.number().int().min(0).max(64).default(0),
    /** Time one post's parsing, or its decryption and signature check, may take; past it the post is refused (TOO_COMPLEX). */
    budgetMs: z.number().int().min(100).max(600_000).default(30_000),
  }).strict().prefault({}),
  /** GET /metrics: "token" needs the operator token; "loopback" also admits a direct request from this machine without it. */
  metrics: z.object({
    access: z.enum(['token', 'loopback']).default('token'),
  }).strict().prefault({}),
  /** GET /health readiness: the relay probe's timeout, and how long relay and key answers are reused. */
  health: z.object({
    relayTimeoutMs: z.number().int().min(100).max(30_000).default(2000),
    cacheMs: z.number().int().min(0).max(3_600_000).default(10_000),
  }).strict().prefault({}),
  /** What operators are told (per-list switches: letterlock list set --no-notify-held / --no-digest). */
  notify: z.object({
    /** The owner's digest: how often (a day by default). */
    digestIntervalSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
    /** Held posts of one list announced to its moderators per hour; the rest are counted in the digest. */
    heldPerHour: z.number().int().min(0).max(100_000).default(60),
  }).strict().prefault({}),
  secretFile: z.string().min(1).optional(),
  /**
   * Where the data lives: absent, letterlock.db in the data folder (SQLite, the embedded
   * default); a file path (relative to the data folder), another SQLite file; or a
   * postgres:// URL, PostgreSQL, which several nodes can share (README, "Several nodes").
   */
  database: z.string().min(1).max(2000).refine((s) => !/[\r\n\0]/.test(s), 'must be one line').optional(),
  /**
   * This node's name among several on one database (README, "Several nodes"): its
   * delivery claims and fan-out leases are recorded under it, and at start it takes
   * back what it left in flight. Absent: `<hostname>:<smtp port>`, stable across
   * restarts. Two nodes must never share one.
   */
  node: z.string().min(1).max(200).refine((s) => !/[\r\n\0]/.test(s), 'must be one line').optional(),
  /** Several nodes on one database: how long a claim lasts without its node renewing it. */
  cluster: z.object({
    /** A delivery row's or a fan-out's lease; a node that dies leaves its work to the others after this. */
    leaseMs: z.number().int().min(1000).max(3_600_000).default(120_000),
    /** How often a node looks for work another node queued or left (a fallback to PostgreSQL's NOTIFY). */
    pollMs: z.number().int().min(100).max(60_000).default(1_500),
  }).strict().prefault({}),
  /** A Mailman 3 Core whose lists Letterlock lists may be bound to (issue 11; server/mailman/). */
  mailman: z.object({
    /** The Core's REST root, e.g. http://127.0.0.1:8001. */
    url: z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL'),
    /** REST admin user and password here, or in `credentialsFile` (JSON {"user","pass"}, mode 0600). */
    user: z.string().min(1).max(200).optional(),
    pass: z.string().min(1).max(1000).optional(),
    credentialsFile: z.string().min(1).optional(),
    /** Roster sync of every bound list, in seconds (also before each post). */
    syncIntervalSeconds: z.number().int().min(5).max(86_400).default(60),
    /** With the Core unreachable, a post uses the last roster only if it is younger than this; otherwise SMTP 451. */
    maxRosterAgeSeconds: z.number().int().min(0).max(7 * 86_400).default(600),
    /** The longest a post waits for a roster sync when the stored roster is too old to fall back on (then 451). */
    syncTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** The longest a post waits for its sync when the stored roster is young enough to use (a large roster on a slow Core). */
    postSyncWaitMs: z.number().int().min(0).max(120_000).default(3_000),
    /** A post skips its own sync when the last one finished this recently. */
    postSyncMinAgeMs: z.number().int().min(0).max(3_600_000).default(2_000),
    /** The largest roster read (members of all roles). */
    maxRoster: z.number().int().min(1).max(10_000_000).default(200_000),
  }).strict().refine((m) => m.credentialsFile !== undefined || (m.user !== undefined && m.pass !== undefined), 'needs user and pass, or credentialsFile').optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug']).default('info'),
}).strict();

export type Config = z.infer<typeof ConfigSchema>;

export const CONFIG_FILE = 'letterlock.json';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseConfig(value: unknown, where: string): Config {
  const r = ConfigSchema.safeParse(value);
  if (!r.success) {
    throw new ConfigError(`${where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

export interface LoadedConfig {
  dataDir: string;
  config: Config;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new ConfigError(`${name} must be a number`);
  return Number(v);
}

/** Reads DATA/letterlock.json (absent: defaults) and applies environment overrides. */
export function loadConfig(dataDir: string): LoadedConfig {
  const dir = resolve(dataDir);
  const file = join(dir, CONFIG_FILE);
  let raw: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
    }
  }
  const config = parseConfig(raw, file);
  const smtpPort = envInt('LETTERLOCK_SMTP_PORT');
  const httpPort = envInt('LETTERLOCK_HTTP_PORT');
  if (smtpPort !== undefined) config.smtp.port = smtpPort;
  if (httpPort !== undefined) config.http.port = httpPort;
  // The URL may carry a password: operators often keep it in the environment, not the file.
  if (process.env.LETTERLOCK_DATABASE) config.database = parseConfig({ database: process.env.LETTERLOCK_DATABASE }, 'LETTERLOCK_DATABASE').database;
  if (process.env.LETTERLOCK_RELAY) config.relay = parseConfig({ relay: process.env.LETTERLOCK_RELAY }, 'LETTERLOCK_RELAY').relay;
  return { dataDir: dir, config };
}

/** This node's id: the configured `node`, else `<hostname>:<smtp port>` (stable across restarts). */
export function nodeId(config: Config): string {
  return config.node ?? `${hostname() || 'localhost'}:${config.smtp.port}`.slice(0, 200);
}

export function writeConfig(dataDir: string, value: unknown): void {
  const config = parseConfig(value, 'config');
  writeFileSync(join(dataDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

export function dataDirFrom(flag: string | undefined): string {
  return resolve(flag ?? process.env.LETTERLOCK_DATA ?? 'letterlock-data');
}
