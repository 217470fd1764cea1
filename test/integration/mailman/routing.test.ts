// The Postfix routing of a Mailman site with bound lists (README "Beside Mailman 3"):
// the map server/mailman/routing.ts writes, compiled by the real `postmap`, looked up
// by `postmap -q`, and then used by a real Postfix in front of Mailman's OWN generated
// map (`mailman create` with Mailman's Postfix LMTP support writes var/data/postfix_lmtp,
// as on a site). Each address is mailed through Postfix and must arrive at the right
// next hop: an SMTP sink standing for Letterlock, an LMTP sink standing for Mailman.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nexthop, routesFor, ROUTE_RULES, transportMap } from '../../../server/mailman/routing.ts';
import { send, Sink } from '../server/harness.ts';
import { postfixMaster } from '../../stack/mailstack.ts';
import { freePorts, isAlive, run, sleep, stopGroup, trackGroup, untrackGroup, waitForPort } from '../../stack/procs.ts';

const DOMAIN = 'lists.example.test';
const BOUND = [`news@${DOMAIN}`, `board@${DOMAIN}`];
const PLAIN = `plain@${DOMAIN}`;

/** An LMTP server that records each delivery's recipients: Mailman's LMTP runner, as Postfix sees it. */
class LmtpSink {
  readonly rcpts: string[] = [];
  private server: SMTPServer | null = null;
  port = 0;
  async start(): Promise<void> {
    const server = new SMTPServer({
      lmtp: true, logger: false, authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'], closeTimeout: 100,
      onData: (stream, session, cb) => {
        stream.on('data', () => {});
        stream.on('end', () => { this.rcpts.push(...session.envelope.rcptTo.map((r) => r.address)); cb(); });
      },
    });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', () => resolve()); });
    server.on('error', () => {});
    this.server = server;
    this.port = (server.server.address() as { port: number }).port;
  }
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

let root: string;
let letterlock: Sink;
let mailman: LmtpSink;
let smtpPort: number;
let masterPid = 0;
let mapFile: string;
let mailmanMap: string;
let pfConfig: string;
let transports: { letterlock: string; mailman: string };

/** `postmap -q KEY TABLE...`: the first value found, searching the tables in order. */
function postmapQuery(key: string, ...tables: string[]): string | null {
  const r = spawnSync('postmap', ['-c', pfConfig, '-q', key, ...tables], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 1) return null; // not found
  if (r.status !== 0) throw new Error(`postmap -q ${key} ${tables.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout.trim();
}

beforeAll(async () => {
  for (const bin of ['/usr/sbin/postfix', '/usr/sbin/postmap', '/usr/bin/mailman']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: node test/setup/ensure.mjs --system postfix,mailman3`);
  }
  root = mkdtempSync(join(tmpdir(), 'letterlock-routing-'));
  run('chmod', ['755', root]);
  letterlock = new Sink();
  await letterlock.start();
  mailman = new LmtpSink();
  await mailman.start();
  transports = { letterlock: nexthop('smtp', '127.0.0.1', letterlock.port), mailman: nexthop('lmtp', '127.0.0.1', mailman.port) };

  // Mailman's own map, written by Mailman itself (no daemon needed: `create` regenerates it).
  const mm = join(root, 'mailman');
  mkdirSync(join(mm, 'var', 'data'), { recursive: true });
  writeFileSync(join(mm, 'postfix.cfg'), '[postfix]\npostmap_command: /usr/sbin/postmap\ntransport_file_type: hash\n');
  writeFileSync(join(mm, 'mailman.cfg'), [
    '[mailman]', 'layout: test', 'site_owner: site-owner@example.test',
    '[paths.test]', `var_dir: ${join(mm, 'var')}`, 'bin_dir: /usr/lib/mailman3/bin', `pid_file: ${join(mm, 'var', 'master.pid')}`,
    `log_dir: ${join(mm, 'var', 'logs')}`, `lock_dir: ${join(mm, 'var', 'locks')}`,
    '[database]', 'class: mailman.database.sqlite.SQLiteDatabase', `url: sqlite:///${join(mm, 'var', 'data', 'mailman.db')}`,
    '[mta]', 'incoming: mailman.mta.postfix.LMTP', `configuration: ${join(mm, 'postfix.cfg')}`,
    'lmtp_host: 127.0.0.1', `lmtp_port: ${mailman.port}`, '',
  ].join('\n'));
  for (const l of [...BOUND, PLAIN]) run('mailman', ['-C', join(mm, 'mailman.cfg'), '--run-as-root', 'create', l], { cwd: mm });
  mailmanMap = join(mm, 'var', 'data', 'postfix_lmtp');

  // Ours, compiled by the real postmap.
  pfConfig = join(root, 'etc');
  mkdirSync(pfConfig);
  mapFile = join(pfConfig, 'letterlock_transport');
  writeFileSync(mapFile, transportMap(BOUND, transports));

  const queue = join(root, 'queue');
  mkdirSync(queue);
  [smtpPort] = await freePorts(1) as [number];
  writeFileSync(join(pfConfig, 'main.cf'), `compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${join(root, 'data')}
mail_owner = postfix
myhostname = mx.example.test
mydomain = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
local_transport = error:no local delivery here
alias_maps =
alias_database =
smtputf8_enable = no
maillog_file = ${join(root, 'postfix.log')}
maillog_file_prefixes = ${root}
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
# As README "Beside Mailman 3" says:
recipient_delimiter = +
owner_request_special = no
relay_domains = hash:${join(mm, 'var', 'data', 'postfix_domains')}
relay_recipient_maps = hash:${mailmanMap}
transport_maps = hash:${mapFile}, hash:${mailmanMap}
`);
  writeFileSync(join(pfConfig, 'master.cf'), postfixMaster(smtpPort));
  run('postmap', ['-c', pfConfig, `hash:${mapFile}`]);
  run('postfix', ['-c', pfConfig, 'start'], { env: { ...process.env, MAIL_CONFIG: pfConfig } });
  masterPid = Number(readFileSync(join(queue, 'pid', 'master.pid'), 'utf8').trim());
  trackGroup(masterPid);
  await waitForPort(smtpPort, 'Postfix smtpd', 30_000, /^220 /m, () => (isAlive(masterPid) ? null : 'master gone'));
}, 180_000);

afterAll(async () => {
  if (masterPid) {
    spawnSync('postfix', ['-c', pfConfig, 'stop'], { stdio: 'ignore', timeout: 30_000 });
    const end = Date.now() + 10_000;
    while (isAlive(masterPid) && Date.now() < end) await sleep(50);
    await stopGroup(masterPid);
    untrackGroup(masterPid);
  }
  await letterlock?.stop();
  await mailman?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('transport map for lists bound to Mailman', () => {
  it('names every address Mailman serves for a bound list, and nothing of the plain list', () => {
    const ours = readFileSync(mapFile, 'utf8');
    const theirs = readFileSync(mailmanMap, 'utf8');
    for (const list of BOUND) {
      const local = list.split('@')[0]!;
      const mailmanKeys = theirs.split('\n').filter((l) => l.startsWith(`${local}@`) || l.startsWith(`${local}-`)).map((l) => l.split(/\s+/)[0]);
      expect(mailmanKeys.length).toBe(9); // the list and its 8 sub-addresses
      const ourKeys = routesFor(list, transports).map((r) => r.address);
      expect(ourKeys.sort()).toEqual([...mailmanKeys].sort());
    }
    expect(ours).not.toMatch(/^plain/m);
    // Comments only on lines of their own: a `#` after a value would become part of the nexthop.
    for (const line of ours.split('\n')) if (line && !line.startsWith('#')) expect(line).toMatch(/^\S+\s+(smtp|lmtp):\[127\.0\.0\.1\]:\d+$/);
  });

  it('postmap -q resolves each address of a bound list to its transport; unknown keys to nothing', () => {
    for (const list of BOUND) {
      for (const r of routesFor(list, transports)) {
        expect(postmapQuery(r.address, `hash:${mapFile}`), r.address).toBe(r.target === 'letterlock' ? transports.letterlock : transports.mailman);
      }
    }
    expect(postmapQuery(`news@${DOMAIN}`, `hash:${mapFile}`)).toBe(transports.letterlock);
    expect(postmapQuery(`news-request@${DOMAIN}`, `hash:${mapFile}`)).toBe(transports.letterlock);
    expect(postmapQuery(PLAIN, `hash:${mapFile}`)).toBeNull();
    // Both tables in transport_maps order: ours decides for bound lists, Mailman's for the rest.
    const both = [`hash:${mapFile}`, `hash:${mailmanMap}`];
    expect(postmapQuery(`news@${DOMAIN}`, ...both)).toBe(transports.letterlock);
    expect(postmapQuery(PLAIN, ...both)).toBe(transports.mailman);
    // Mailman's map alone would send the bound list to Mailman: the order matters.
    expect(postmapQuery(`news@${DOMAIN}`, `hash:${mailmanMap}`)).toBe(transports.mailman);
  });

  it('a real Postfix routes each address (VERP and +token forms included) to Letterlock or to Mailman as the map says', async () => {
    const cases: Array<[string, 'letterlock' | 'mailman']> = [
      ...BOUND.flatMap((l) => routesFor(l, transports).map((r) => [r.address, r.target] as [string, 'letterlock' | 'mailman'])),
      // Letterlock's VERP bounce address: found by recipient_delimiter as news@.
      [`news+bounces-12-0123456789abcdef@${DOMAIN}`, 'letterlock'],
      // Mailman's VERP and confirmation tokens: found as news-bounces@ and news-confirm@.
      [`news-bounces+alice=example.org@${DOMAIN}`, 'mailman'],
      [`news-confirm+a1b2c3d4e5@${DOMAIN}`, 'mailman'],
      [`board+bounces-7-fedcba9876543210@${DOMAIN}`, 'letterlock'],
      // The plain list, only in Mailman's map.
      [PLAIN, 'mailman'], [`plain-request@${DOMAIN}`, 'mailman'], [`plain-bounces+bob=example.org@${DOMAIN}`, 'mailman'],
    ];
    for (const [rcpt] of cases) {
      const reply = await send(smtpPort, 'someone@example.org', rcpt, `From: someone@example.org\r\nTo: ${rcpt}\r\nSubject: routing\r\n\r\nrouting test\r\n`);
      expect(reply, rcpt).toMatch(/^250 /);
    }
    const arrived = () => letterlock.messages.flatMap((m) => m.to).length + mailman.rcpts.length;
    const end = Date.now() + 60_000;
    while (arrived() < cases.length && Date.now() < end) await sleep(100);
    const log = () => readFileSync(join(root, 'postfix.log'), 'utf8').slice(-4000);
    expect(arrived(), log()).toBe(cases.length);
    const atLetterlock = new Set(letterlock.messages.flatMap((m) => m.to));
    const atMailman = new Set(mailman.rcpts);
    for (const [rcpt, target] of cases) {
      expect(target === 'letterlock' ? atLetterlock.has(rcpt) : atMailman.has(rcpt), `${rcpt} → ${target}\n${log()}`).toBe(true);
    }
    // An address neither map knows is refused by Postfix itself (relay_recipient_maps).
    await expect(send(smtpPort, 'someone@example.org', `nolist@${DOMAIN}`, 'Subject: x\r\n\r\nx\r\n')).rejects.toThrow(/550|554|Recipient address rejected/);
  }, 120_000);

  it('every rule names a sub-address Mailman knows, and the posting and -request addresses go to Letterlock', () => {
    const targets = Object.fromEntries(ROUTE_RULES.map((r) => [r.suffix, r.target]));
    expect(targets['']).toBe('letterlock');
    expect(targets['-request']).toBe('letterlock');
    for (const s of ['-owner', '-bounces', '-confirm', '-join', '-leave', '-subscribe', '-unsubscribe']) expect(targets[s], s).toBe('mailman');
  });
});
