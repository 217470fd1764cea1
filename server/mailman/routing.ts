// Postfix transport_maps lines for lists bound to Mailman 3: which of a bound list's
// addresses go to Letterlock and which stay with Mailman's LMTP. Mailman names every
// list's addresses in its own generated map (var/data/postfix_lmtp: the list, -bounces,
// -confirm, -join, -leave, -owner, -request, -subscribe, -unsubscribe); this map comes
// FIRST in transport_maps and names each of them explicitly, so no address of a bound
// list falls through to Mailman by accident and the file reads as the site's policy.
//
// With `recipient_delimiter = +` Postfix looks up `local+ext@domain` and then
// `local@domain`, so the posting address's line also routes Letterlock's VERP bounces
// (`news+bounces-<id>-<mac>@…`) and the -bounces and -confirm lines route Mailman's
// (`news-bounces+alice=example.org@…`, `news-confirm+<token>@…`).

import { isIP } from 'node:net';

export type RouteTarget = 'letterlock' | 'mailman';

/** One address suffix of a list and where its mail goes, with the reason (printed as a comment). */
export interface RouteRule {
  /** '' for the posting address, else '-request', '-owner', ... */
  suffix: string;
  target: RouteTarget;
  why: string;
}

/**
 * Where each address of a bound list goes. Posts and commands by mail go to Letterlock:
 * only it holds the list key, and a post that reached Mailman would be written to its
 * queues and archivers. The rest is Mailman's own business with people, never a post:
 * mail to the owners, bounces of Mailman's notices (its bounce processing removes members,
 * which Letterlock follows at the next sync), and the join/leave/confirm handshakes that
 * keep Mailman the one membership database.
 */
export const ROUTE_RULES: readonly RouteRule[] = [
  { suffix: '', target: 'letterlock', why: 'posts; also Letterlock VERP bounces (list+bounces-...)' },
  { suffix: '-request', target: 'letterlock', why: 'commands by mail, signed and encrypted to the list key' },
  { suffix: '-owner', target: 'mailman', why: 'mail to the list owners (Mailman forwards it; not a post)' },
  { suffix: '-bounces', target: 'mailman', why: "bounces of Mailman's own notices; also its VERP (list-bounces+...)" },
  { suffix: '-confirm', target: 'mailman', why: 'Mailman subscription confirmations (list-confirm+token)' },
  { suffix: '-join', target: 'mailman', why: 'subscribe requests: the member lives in Mailman' },
  { suffix: '-leave', target: 'mailman', why: 'unsubscribe requests: Letterlock follows at the next sync' },
  { suffix: '-subscribe', target: 'mailman', why: 'as -join' },
  { suffix: '-unsubscribe', target: 'mailman', why: 'as -leave' },
];

export class RoutingError extends Error {
  override name = 'RoutingError';
}

/** More bound lists than this in one map is not a site we were asked to serve from one command. */
export const MAX_ROUTED_LISTS = 100_000;

const LOCAL = /^[a-z0-9][a-z0-9._=-]{0,63}$/;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * Checks a list address for use as a transport_maps key: lower-case, no `+` (the
 * recipient delimiter: a key with one would never be looked up for the bare list),
 * no spaces or table syntax. Returns [local, domain].
 */
export function splitListAddress(address: string): [string, string] {
  const a = address.trim().toLowerCase();
  const at = a.lastIndexOf('@');
  const local = at > 0 ? a.slice(0, at) : '';
  const domain = at > 0 ? a.slice(at + 1) : '';
  if (!LOCAL.test(local) || !DOMAIN.test(domain)) {
    throw new RoutingError(`${JSON.stringify(address.slice(0, 100))} is not a list address Postfix can route (local@domain, letters, digits, . _ = -; no +)`);
  }
  return [local, domain];
}

/**
 * A Postfix nexthop: `smtp:[host]:port` for Letterlock's SMTP ingest, `lmtp:[host]:port`
 * for Mailman's LMTP runner (the form Mailman writes in its own map). Brackets: no MX
 * lookup. IPv4 addresses and host names only.
 */
export function nexthop(kind: 'smtp' | 'lmtp', host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RoutingError(`port ${port} is not 1..65535`);
  const h = host.trim().toLowerCase();
  if (isIP(h) === 6) throw new RoutingError(`${h}: give an IPv4 address or a host name for the ${kind} nexthop`);
  if (isIP(h) !== 4 && !/^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/.test(h)) throw new RoutingError(`${JSON.stringify(host.slice(0, 100))} is not a host name`);
  return `${kind}:[${h}]:${port}`;
}

/** `[host]:port` or `host:port` → {host, port}; for command-line options. */
export function parseHostPort(value: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(value.trim());
  if (!m) throw new RoutingError(`${what}: expected HOST:PORT, got ${JSON.stringify(value.slice(0, 100))}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export interface Route {
  address: string;
  target: RouteTarget;
  transport: string;
  why: string;
}

export interface Transports {
  /** e.g. smtp:[127.0.0.1]:2525 */
  letterlock: string;
  /** e.g. lmtp:[127.0.0.1]:8024 */
  mailman: string;
}

/** Every routed address of one bound list, in ROUTE_RULES order. */
export function routesFor(listAddress: string, transports: Transports): Route[] {
  const [local, domain] = splitListAddress(listAddress);
  return ROUTE_RULES.map((r) => ({ address: `${local}${r.suffix}@${domain}`, target: r.target, transport: transports[r.target], why: r.why }));
}

/**
 * The transport map file for the bound lists: one block per list, sorted by domain then
 * name (as Mailman sorts its own), each line `address  transport` after a comment saying why. Duplicates are
 * refused: two lists whose addresses collide (`news-owner@x` bound as a list while
 * `news@x` is bound too) would make the map say two things for one key.
 */
export function transportMap(lists: readonly string[], transports: Transports, o: { header?: string } = {}): string {
  if (lists.length > MAX_ROUTED_LISTS) throw new RoutingError(`${lists.length} lists: at most ${MAX_ROUTED_LISTS} in one map`);
  const sorted = [...new Set(lists.map((l) => splitListAddress(l).join('@')))]
    .sort((a, b) => {
      const [la, da] = splitListAddress(a);
      const [lb, sql] = splitListAddress(b);
      return da === sql ? (la < lb ? -1 : la > lb ? 1 : 0) : da < sql ? -1 : 1;
    });
  const seen = new Map<string, string>();
  const blocks: string[] = [];
  for (const list of sorted) {
    const routes = routesFor(list, transports);
    for (const r of routes) {
      const other = seen.get(r.address);
      if (other) throw new RoutingError(`${r.address} would be routed for both ${other} and ${list}`);
      seen.set(r.address, list);
    }
    const width = Math.max(...routes.map((r) => r.address.length)) + 2;
    // Postfix tables allow comments only on lines of their own: a `#` after the value
    // would become part of the nexthop.
    blocks.push([`# ${list}: bound to Mailman, encrypted by Letterlock`,
      ...routes.flatMap((r) => [`#   ${r.why}`, `${r.address.padEnd(width)}${r.transport}`]), ''].join('\n'));
  }
  const head = [
    `# ${o.header ?? 'Written by `letterlock mailman routes`.'}`,
    '# Postfix transport map for the lists Letterlock encrypts beside Mailman 3. List it',
    '# BEFORE Mailman\'s own map, with recipient_delimiter = +:',
    '#   transport_maps = hash:/etc/postfix/letterlock_transport, hash:/var/lib/mailman3/data/postfix_lmtp',
    '# then: postmap /etc/postfix/letterlock_transport && postfix reload',
    '',
  ];
  return `${[...head, ...blocks].join('\n')}\n`;
}

export interface RouteCheck extends Route {
  /** What Postfix's transport_maps answer for the address now (null: no table names it). */
  got: string | null;
  ok: boolean;
}

/** Compares each route with what a lookup answers (e.g. postfixLookup below). */
export function checkRoutes(routes: readonly Route[], lookup: (addresses: string[]) => Map<string, string>): RouteCheck[] {
  const got = lookup(routes.map((r) => r.address));
  return routes.map((r) => ({ ...r, got: got.get(r.address) ?? null, ok: got.get(r.address) === r.transport }));
}

/** Splits a Postfix table list ("hash:/a, hash:/b inline:{ k=v, k2=v2 }") at commas and blanks outside braces. */
export function splitTables(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of value.slice(0, 10_000)) {
    if (ch === '{') depth++;
    if (ch === '}') depth = Math.max(0, depth - 1);
    if (depth === 0 && (ch === ',' || /\s/.test(ch))) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Asks the Postfix whose configuration is in `configDir` (default /etc/postfix) what its
 * transport_maps say for each address, in table order, as the real lookups do for an
 * exact address: `postconf -x -h transport_maps`, then one `postmap -q -` with the keys
 * on stdin. Throws RoutingError when Postfix cannot be asked.
 */
export function postfixLookup(configDir?: string): (addresses: string[]) => Map<string, string> {
  return (addresses) => {
    // Imported here: the rest of this module is pure and runs without child processes.
    const { spawnSync } = process.getBuiltinModule('node:child_process') as typeof import('node:child_process');
    const c = configDir ? ['-c', configDir] : [];
    const pc = spawnSync('postconf', [...c, '-x', '-h', 'transport_maps'], { encoding: 'utf8', timeout: 30_000 });
    if (pc.status !== 0) throw new RoutingError(`postconf could not read transport_maps${configDir ? ` in ${configDir}` : ''}: ${(pc.stderr || pc.error?.message || '').trim().slice(0, 200)}`);
    const tables = splitTables(pc.stdout.trim());
    const found = new Map<string, string>();
    if (tables.length === 0 || addresses.length === 0) return found;
    // postmap -q - answers "key<whitespace>value" for each key found, searching the tables in order.
    const pm = spawnSync('postmap', [...c, '-q', '-', ...tables], { input: `${addresses.join('\n')}\n`, encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
    if (pm.status !== 0 && pm.status !== 1) throw new RoutingError(`postmap -q could not look up the routes: ${(pm.stderr || pm.error?.message || '').trim().slice(0, 200)}`);
    for (const line of pm.stdout.split('\n')) {
      const m = /^(\S+)\s+(.*)$/.exec(line.trim());
      if (m && !found.has(m[1]!)) found.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    return found;
  };
}
