// The real mail stack on loopback, in one temporary folder: Dovecot (IMAP + LMTP),
// Postfix (SMTP in; the list domain routed to the list server, user domains to
// Dovecot), Roundcube (PHP's built-in server, SQLite) and the Letterlock list
// server in-process with Postfix as its relay. Facts behind each setting are in
// the team handbook's REAL-STACK.md.
//
//   sender ─SMTP─▶ Postfix ─smtp:[127.0.0.1]:P─▶ list server ─relay─▶ Postfix ─LMTP─▶ Dovecot ─IMAP─▶ reader

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, openData, type RunningServer } from '../../server/app.ts';
import { init } from '../../server/cli/init.ts';
import { CONFIG_FILE, parseConfig } from '../../server/config/config.ts';
import { createList } from '../../server/lists/lists.ts';
import { registerMember } from '../../server/lists/members.ts';
import { createEventLog } from '../../server/log/log.ts';
import { nexthop, transportMap } from '../../server/mailman/routing.ts';
import { MailmanCore } from '../support/mailman.ts';
import { freePorts, isAlive, run, sleep, StackError, startDaemon, stopGroup, trackGroup, untrackGroup, waitForPort, type Daemon } from './procs.ts';

export { StackError } from './procs.ts';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The mail owner's uid/gid: Dovecot refuses uids below first_valid_uid (500). */
export const MAIL_UID = 5000;

export const DEFAULT_USERS = ['alice', 'bob', 'carol', 'dave'] as const;

export interface StackUser {
  name: string;
  address: string;
  password: string;
}

export interface ListMember {
  address: string;
  /** Armored public key; its user ID must hold the address (the list's key policy). */
  publicKey: string;
}

export interface MailStackOptions {
  userDomain?: string;
  listDomain?: string;
  /** Local part of the demo list on the list domain. */
  listName?: string;
  /** Mailbox users (local parts) on the user domain. */
  users?: readonly string[];
  /** Members registered on the demo list before the server starts. */
  members?: ListMember[];
  /** List owner (gets delivery-failure reports); default the first user. */
  owner?: string;
  /** Start Roundcube too (default true). */
  roundcube?: boolean;
  /** Install missing Debian packages (default true). */
  install?: boolean;
  /** Progress lines, e.g. console.error. */
  progress?: (line: string) => void;
  /**
   * Start a Mailman 3 Core too (README "Beside Mailman 3"): it writes its own Postfix
   * transport map, delivers through Postfix, keeps the prototype archiver on (a plaintext
   * archive, standing in for HyperKitty), and the list server is configured with its REST
   * API. Postfix reads Letterlock's map for bound lists first (folders.letterlockTransport,
   * empty until `letterlock mailman routes` fills it), then
   * Mailman's, then sends the rest of the list domain to the list server.
   */
  mailman?: boolean;
  /** For the cleanup test only: fail on purpose right after this part has started. */
  failAfter?: 'dovecot' | 'mailman' | 'list-server' | 'postfix' | 'roundcube';
}

export interface MailStack {
  root: string;
  userDomain: string;
  listDomain: string;
  listAddress: string;
  users: Record<string, StackUser>;
  ports: { smtp: number; imap: number; lmtp: number; roundcube: number | null; listSmtp: number; listHttp: number };
  urls: { roundcube: string | null; api: string };
  folders: {
    postfixConfig: string; postfixQueue: string; postfixData: string;
    dovecotConfig: string; dovecotRun: string; dovecotState: string; mail: string;
    roundcube: string; roundcubeDb: string; listData: string; logs: string; tmp: string;
    letterlockTransport: string;
    /** Mailman's var folder (queues, lists, archives, logs); null without Mailman. */
    mailmanVar: string | null;
  };
  server: RunningServer;
  /** The Mailman Core, when started with `mailman: true` (its folder is under root). */
  mailman: MailmanCore | null;
  /** Operator token for the list server's admin API. */
  adminToken: string;
  /** Milliseconds from call to ready, per part and in total. */
  timings: Record<string, number>;
  /** Every folder the stack writes to (for the no-plaintext scan). */
  scanRoots(): string[];
  /** The last lines of every log, for failure messages. */
  logTail(lines?: number): string;
  /** Stops every process it started and waits for them; removes the folder unless `remove: false`. Idempotent. */
  stop(options?: { remove?: boolean }): Promise<void>;
}

function progressOf(options: MailStackOptions): (line: string) => void {
  return options.progress ?? (() => {});
}

/** Installs what the stack needs (Debian packages, the mail owner) when missing. */
export function ensureStackSystem(install = true): void {
  const tools = ['postfix', 'dovecot', 'roundcube'];
  const args = [join(REPO, 'test', 'setup', 'ensure.mjs'), '--no-npm', '--system', tools.join(',')];
  if (install) {
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new StackError(`installing the mail stack's Debian packages failed (node ${args.join(' ')})`);
  }
  for (const f of ['/usr/sbin/postfix', '/usr/sbin/dovecot', '/usr/lib/dovecot/imap', '/usr/lib/dovecot/lmtp', '/usr/bin/php', '/var/lib/roundcube/public_html/index.php']) {
    if (!existsSync(f)) throw new StackError(`${f} is missing: run node test/setup/ensure.mjs --system ${tools.join(',')} as root`);
  }
  if (process.getuid?.() !== 0) throw new StackError('the mail stack runs Postfix and Dovecot, which need root');
  // A system account for uid 5000 so the mail files have a named owner.
  if (spawnSync('getent', ['passwd', String(MAIL_UID)]).status !== 0) {
    if (spawnSync('getent', ['group', String(MAIL_UID)]).status !== 0) run('groupadd', ['--system', '--gid', String(MAIL_UID), 'llmail']);
    run('useradd', ['--system', '--uid', String(MAIL_UID), '--gid', String(MAIL_UID), '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'llmail']);
  }
}

function write(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode });
}

function tail(path: string, lines: number): string {
  if (!existsSync(path)) return '';
  const all = readFileSync(path, 'utf8').split('\n');
  return all.slice(-lines - 1).join('\n');
}

function dovecotConfig(o: { run: string; state: string; log: string; users: string; imap: number; lmtp: number; postmaster: string }): string {
  return `# Written by test/stack/mailstack.ts: IMAP and LMTP on loopback, users from a passwd-file.
base_dir = ${o.run}
state_dir = ${o.state}
log_path = ${o.log}
info_log_path = ${o.log}
listen = 127.0.0.1
protocols = imap lmtp
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = ${MAIL_UID}
last_valid_uid = ${MAIL_UID}
mail_location = maildir:~/Maildir
postmaster_address = ${o.postmaster}
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT ${o.users}
}
userdb {
  driver = passwd-file
  args = ${o.users}
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.imap}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${o.lmtp}
  }
  unix_listener lmtp {
    mode = 0600
  }
}
`;
}

function postfixMain(o: { root: string; queue: string; data: string; log: string; userDomain: string; listDomain: string; listPort: number; lmtp: number; mailboxes: string[]; mailmanMaps?: { letterlock: string; mailman: string } }): string {
  const mailboxes = o.mailboxes.map((a) => `${a}=ok`).join(', ');
  const listDomainRoute = `inline:{ ${o.listDomain}=smtp:[127.0.0.1]:${o.listPort} }`;
  // Beside Mailman (README): Letterlock's map for bound lists first, then Mailman's own;
  // what neither names on the list domain goes to the list server (its standalone lists).
  const transport = o.mailmanMaps ? `hash:${o.mailmanMaps.letterlock}, hash:${o.mailmanMaps.mailman}, ${listDomainRoute}\nrecipient_delimiter = +\nowner_request_special = no` : listDomainRoute;
  return `# Written by test/stack/mailstack.ts: loopback only; the list domain goes to the
# Letterlock list server, the user domain to Dovecot over LMTP; nothing local.
compatibility_level = 3.6
queue_directory = ${o.queue}
data_directory = ${o.data}
mail_owner = postfix
myhostname = mx.${o.userDomain}
mydomain = ${o.userDomain}
myorigin = ${o.userDomain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
local_transport = error:no local delivery here
alias_maps =
alias_database =
relay_domains = ${o.listDomain}
transport_maps = ${transport}
virtual_mailbox_domains = ${o.userDomain}
virtual_mailbox_maps = inline:{ ${mailboxes} }
virtual_transport = lmtp:inet:127.0.0.1:${o.lmtp}
smtputf8_enable = no
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = $myhostname ESMTP
message_size_limit = 52428800
# No syslog here: log to a file, or Postfix's fatal errors vanish.
maillog_file = ${o.log}
maillog_file_prefixes = ${o.root}
# A test should not wait minutes for a retry.
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 10s
`;
}

export function postfixMaster(smtpPort: number): string {
  // Debian's master.cf services, chroot off (the chroot would need copies of
  // /etc files), and the SMTP listener on our loopback port.
  const rows: Array<[string, string, string, string, string, string, string]> = [
    [`127.0.0.1:${smtpPort}`, 'inet', 'n', '-', 'n', '-', 'smtpd'],
    ['pickup', 'unix', 'n', '-', 'n', '60', '1 pickup'],
    ['cleanup', 'unix', 'n', '-', 'n', '-', '0 cleanup'],
    ['qmgr', 'unix', 'n', '-', 'n', '300', '1 qmgr'],
    ['tlsmgr', 'unix', '-', '-', 'n', '1000?', '1 tlsmgr'],
    ['rewrite', 'unix', '-', '-', 'n', '-', '- trivial-rewrite'],
    ['bounce', 'unix', '-', '-', 'n', '-', '0 bounce'],
    ['defer', 'unix', '-', '-', 'n', '-', '0 bounce'],
    ['trace', 'unix', '-', '-', 'n', '-', '0 bounce'],
    ['verify', 'unix', '-', '-', 'n', '-', '1 verify'],
    ['flush', 'unix', 'n', '-', 'n', '1000?', '0 flush'],
    ['proxymap', 'unix', '-', '-', 'n', '-', '- proxymap'],
    ['proxywrite', 'unix', '-', '-', 'n', '-', '1 proxymap'],
    ['smtp', 'unix', '-', '-', 'n', '-', '- smtp'],
    ['relay', 'unix', '-', '-', 'n', '-', '- smtp'],
    ['showq', 'unix', 'n', '-', 'n', '-', '- showq'],
    ['error', 'unix', '-', '-', 'n', '-', '- error'],
    ['retry', 'unix', '-', '-', 'n', '-', '- error'],
    ['discard', 'unix', '-', '-', 'n', '-', '- discard'],
    ['lmtp', 'unix', '-', '-', 'n', '-', '- lmtp'],
    ['anvil', 'unix', '-', '-', 'n', '-', '1 anvil'],
    ['scache', 'unix', '-', '-', 'n', '-', '1 scache'],
    ['postlog', 'unix-dgram', 'n', '-', 'n', '-', '1 postlogd'],
  ];
  const fixed = rows.map(([svc, type, priv, unpriv, chroot, wake, rest]) => {
    const [maxproc, command] = rest.includes(' ') ? rest.split(' ') as [string, string] : ['-', rest];
    return `${svc} ${type} ${priv} ${unpriv} ${chroot} ${wake} ${maxproc} ${command}`;
  });
  return `# Written by test/stack/mailstack.ts\n${fixed.join('\n')}\n`;
}

function phpString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function roundcubeConfig(o: { db: string; imap: number; smtp: number; logs: string; temp: string; userDomain: string; desKey: string }): string {
  return `<?php
// Written by test/stack/mailstack.ts: loopback IMAP/SMTP without TLS or SMTP AUTH
// (Postfix relays for 127.0.0.0/8), SQLite, plain-text compose box.
$config = [];
$config['db_dsnw'] = ${phpString(`sqlite:///${o.db}?mode=0640`)};
$config['imap_host'] = ${phpString(`127.0.0.1:${o.imap}`)};
$config['smtp_host'] = ${phpString(`127.0.0.1:${o.smtp}`)};
$config['smtp_user'] = '';
$config['smtp_pass'] = '';
$config['smtp_helo_host'] = ${phpString(`webmail.${o.userDomain}`)};
$config['username_domain'] = ${phpString(o.userDomain)};
$config['mail_domain'] = ${phpString(o.userDomain)};
$config['des_key'] = ${phpString(o.desKey)};
$config['product_name'] = 'Letterlock test webmail';
$config['support_url'] = '';
$config['plugins'] = [];
$config['skin'] = 'elastic';
$config['language'] = 'en_US';
$config['log_driver'] = 'file';
$config['log_dir'] = ${phpString(`${o.logs}/`)};
$config['temp_dir'] = ${phpString(`${o.temp}/`)};
$config['enable_installer'] = false;
$config['enable_spellcheck'] = false;
$config['htmleditor'] = 0;
$config['ip_check'] = false;
$config['create_default_folders'] = true;
`;
}

/** Starts the whole stack; on any failure stops what it had started and rethrows. */
export async function startMailStack(options: MailStackOptions = {}): Promise<MailStack> {
  const say = progressOf(options);
  const t0 = Date.now();
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number) => {
    timings[name] = Date.now() - since;
    say(`${name}: ${timings[name]} ms`);
    if (options.failAfter === name) throw new StackError(`failing on purpose after ${name} (failAfter)`);
  };

  // Options first: bad ones are refused before anything is installed or started.
  const userDomain = options.userDomain ?? 'example.test';
  const listDomain = options.listDomain ?? `lists.${userDomain}`;
  const listAddress = `${options.listName ?? 'demo'}@${listDomain}`;
  const names = options.users ?? DEFAULT_USERS;
  if (names.length === 0) throw new StackError('the stack needs at least one mailbox user');
  for (const n of names) if (!/^[a-z][a-z0-9._-]*$/.test(n)) throw new StackError(`bad user name ${JSON.stringify(n)} (lower-case letters, digits, . _ -)`);
  if (!/^[a-z0-9.-]+$/.test(userDomain) || !/^[a-z0-9.-]+$/.test(listDomain)) throw new StackError('domains must be lower-case DNS names');
  if (listDomain === userDomain) throw new StackError('the list domain must differ from the user domain (Postfix routes them differently)');
  const users: Record<string, StackUser> = Object.fromEntries(names.map((n) => [n, { name: n, address: `${n}@${userDomain}`, password: `${n}-password` }]));

  let t = Date.now();
  ensureStackSystem(options.install ?? true);
  lap('install-check', t);

  const root = mkdtempSync(join(tmpdir(), 'letterlock-stack-'));
  // Postfix and Dovecot drop to their own users (postfix, dovenull, uid 5000): they must reach inside.
  chmodSync(root, 0o755);
  const folders = {
    postfixConfig: join(root, 'postfix', 'etc'),
    postfixQueue: join(root, 'postfix', 'queue'),
    postfixData: join(root, 'postfix', 'data'),
    dovecotConfig: join(root, 'dovecot', 'etc'),
    dovecotRun: join(root, 'dovecot', 'run'),
    dovecotState: join(root, 'dovecot', 'state'),
    mail: join(root, 'mail'),
    roundcube: join(root, 'roundcube'),
    letterlockTransport: join(root, 'postfix', 'etc', 'letterlock_transport'),
    roundcubeDb: join(root, 'roundcube', 'roundcube.db'),
    listData: join(root, 'letterlock'),
    logs: join(root, 'logs'),
    tmp: join(root, 'tmp'),
    mailmanVar: null as string | null,
  };
  for (const d of [folders.postfixConfig, folders.postfixQueue, folders.dovecotConfig, folders.dovecotState, folders.mail, join(folders.roundcube, 'config'), join(folders.roundcube, 'logs'), join(folders.roundcube, 'temp'), folders.logs, folders.tmp]) {
    mkdirSync(d, { recursive: true });
  }
  chownSync(folders.mail, MAIL_UID, MAIL_UID);

  const started: Array<{ name: string; stop: () => Promise<void> }> = [];
  let stopped = false;
  const logFiles = ['dovecot.log', 'dovecot.out', 'postfix.log', 'postfix.out', 'php.out', 'php-errors.log'].map((f) => join(folders.logs, f));
  const logTail = (lines = 30) => [...logFiles, join(folders.roundcube, 'logs', 'errors.log'), join(folders.listData, 'logs', 'server.log')]
    .map((f) => { const text = tail(f, lines); return text.trim() ? `--- ${f}\n${text}` : ''; }).filter(Boolean).join('\n');

  const stopAll = async (remove: boolean) => {
    const errors: string[] = [];
    if (!stopped) {
      stopped = true;
      for (const part of started.reverse()) {
        const t = Date.now();
        try {
          await part.stop();
          timings[`stop-${part.name}`] = Date.now() - t;
        } catch (e) {
          errors.push(`${part.name}: ${(e as Error).message}`);
        }
      }
    }
    if (remove) rmSync(root, { recursive: true, force: true });
    if (errors.length) throw new StackError(`stopping the mail stack: ${errors.join('; ')}`);
  };

  try {
    const [smtp, imap, lmtp, rcPort] = await freePorts(4) as [number, number, number, number];

    // ---- Dovecot ------------------------------------------------------------------------------
    t = Date.now();
    const usersFile = join(folders.dovecotConfig, 'users');
    const lines = Object.values(users).map((u) => {
      const hash = run('doveadm', ['pw', '-s', 'SHA512-CRYPT', '-p', u.password]).trim();
      const home = join(folders.mail, u.name);
      mkdirSync(home, { recursive: true });
      chownSync(home, MAIL_UID, MAIL_UID);
      return `${u.address}:${hash}:${MAIL_UID}:${MAIL_UID}::${home}`;
    });
    // Read by the auth process as user `dovecot`; the hashes are of known test passwords.
    write(usersFile, `${lines.join('\n')}\n`, 0o644);
    const dovecotConf = join(folders.dovecotConfig, 'dovecot.conf');
    write(dovecotConf, dovecotConfig({ run: folders.dovecotRun, state: folders.dovecotState, log: join(folders.logs, 'dovecot.log'), users: usersFile, imap, lmtp, postmaster: `postmaster@${userDomain}` }));
    // -F keeps the master in the foreground: it is our child, in its own process group.
    const dovecot: Daemon = startDaemon('dovecot', 'dovecot', ['-F', '-c', dovecotConf], join(folders.logs, 'dovecot.out'));
    started.push({ name: 'dovecot', stop: () => dovecot.stop() });
    await waitForPort(imap, 'Dovecot IMAP', 15_000, /^\* OK/m, dovecot.exited);
    await waitForPort(lmtp, 'Dovecot LMTP', 15_000, /^220 /m, dovecot.exited);
    lap('dovecot', t);

    // ---- Mailman Core (optional): before the list server, which reads its REST API -------------
    let mailman: MailmanCore | null = null;
    if (options.mailman) {
      t = Date.now();
      mailman = await MailmanCore.start({ smtpPort: smtp, postfixMaps: true, archivers: ['prototype'], parentDir: root });
      // Halted, not removed: the no-plaintext scan reads its var folder after stop({remove: false}).
      const core = mailman;
      folders.mailmanVar = core.varDir;
      started.push({ name: 'mailman', stop: () => core.pause() });
      lap('mailman', t);
    }

    // ---- the list server (its relay is Postfix, which starts next) ----------------------------
    t = Date.now();
    const { secret } = await initWithoutEnv(folders.listData, smtp, mailman ? { url: mailman.url, user: mailman.user, pass: mailman.pass, syncIntervalSeconds: 10 } : undefined);
    {
      const sql = await openData(folders.listData, secret);
      try {
        const owner = options.owner ?? Object.values(users)[0]?.address ?? null;
        const list = await createList(sql, secret, listAddress, { owner, maxBytes: 25 * 1024 * 1024 });
        for (const m of options.members ?? []) await registerMember(sql, list.id, m.address, m.publicKey);
      } finally {
        await sql.close();
      }
    }
    // The file as written, not loadConfig(): its LETTERLOCK_* environment overrides
    // (ports, relay) from a developer's shell would cut the stack's wiring.
    const configFile = join(folders.listData, CONFIG_FILE);
    const config = parseConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
    const server = await startServer(folders.listData, config, secret, {
      log: createEventLog({ file: join(folders.listData, 'logs', 'server.log'), stdout: false, level: 'info' }),
    });
    started.push({ name: 'list server', stop: () => server.close() });
    const adminToken = readFileSync(join(folders.listData, 'admin-token'), 'utf8').trim();
    lap('list-server', t);

    // ---- Postfix ------------------------------------------------------------------------------
    t = Date.now();
    const mailmanMaps = mailman ? { letterlock: folders.letterlockTransport, mailman: join(mailman.varDir, 'data', 'postfix_lmtp') } : undefined;
    if (mailmanMaps) {
      // Mailman's map exists once a list does; Letterlock's starts empty (routes() fills it).
      write(mailmanMaps.letterlock, transportMap([], { letterlock: nexthop('smtp', '127.0.0.1', server.smtpPort), mailman: nexthop('lmtp', '127.0.0.1', mailman!.lmtpPort) }));
      run('postmap', [`hash:${mailmanMaps.letterlock}`]);
      if (!existsSync(mailmanMaps.mailman)) {
        write(mailmanMaps.mailman, '');
        run('postmap', [`hash:${mailmanMaps.mailman}`]);
      }
    }
    write(join(folders.postfixConfig, 'main.cf'), postfixMain({
      root, queue: folders.postfixQueue, data: folders.postfixData, log: join(folders.logs, 'postfix.log'),
      userDomain, listDomain, listPort: server.smtpPort, lmtp, mailboxes: Object.values(users).map((u) => u.address), mailmanMaps,
    }));
    write(join(folders.postfixConfig, 'master.cf'), postfixMaster(smtp));
    const pfEnv = { ...process.env, MAIL_CONFIG: folders.postfixConfig };
    // `postfix start` daemonizes its master, which leads a new session; we track that group.
    let masterPid = 0;
    started.push({
      name: 'postfix',
      stop: async () => {
        spawnSync('postfix', ['-c', folders.postfixConfig, 'stop'], { env: pfEnv, stdio: 'ignore', timeout: 30_000 });
        if (masterPid) {
          const end = Date.now() + 10_000;
          while (isAlive(masterPid) && Date.now() < end) await sleep(50);
          await stopGroup(masterPid);
          untrackGroup(masterPid);
        }
      },
    });
    // `start` runs `postfix check` first, which creates the queue's subfolders.
    run('postfix', ['-c', folders.postfixConfig, 'start'], { env: pfEnv });
    masterPid = Number(readFileSync(join(folders.postfixQueue, 'pid', 'master.pid'), 'utf8').trim());
    if (!Number.isInteger(masterPid) || masterPid <= 1) throw new StackError(`Postfix wrote no usable master.pid (${masterPid})`);
    trackGroup(masterPid);
    await waitForPort(smtp, 'Postfix smtpd', 15_000, /^220 /m, () => (isAlive(masterPid) ? null : 'master process gone'));
    lap('postfix', t);

    // ---- Roundcube ----------------------------------------------------------------------------
    let roundcubeUrl: string | null = null;
    if (options.roundcube ?? true) {
      t = Date.now();
      const cfgDir = join(folders.roundcube, 'config');
      copyFileSync('/etc/roundcube/defaults.inc.php', join(cfgDir, 'defaults.inc.php'));
      copyFileSync('/etc/roundcube/mimetypes.php', join(cfgDir, 'mimetypes.php'));
      const desKey = randomBytes(18).toString('base64'); // 24 characters
      write(join(cfgDir, 'config.inc.php'), roundcubeConfig({ db: folders.roundcubeDb, imap, smtp, logs: join(folders.roundcube, 'logs'), temp: join(folders.roundcube, 'temp'), userDomain, desKey }), 0o600);
      const php = startDaemon('roundcube', 'php', [
        '-d', 'display_errors=0', '-d', 'log_errors=1', '-d', `error_log=${join(folders.logs, 'php-errors.log')}`,
        '-d', `sys_temp_dir=${folders.tmp}`, '-d', `upload_tmp_dir=${folders.tmp}`, '-d', `session.save_path=${folders.tmp}`,
        '-S', `127.0.0.1:${rcPort}`, '-t', '/var/lib/roundcube/public_html',
      ], join(folders.logs, 'php.out'), {
        // Several workers: Roundcube's page fires requests in parallel (list refresh, preview).
        env: { ...process.env, ROUNDCUBE_CONFIG_DIR: cfgDir, PHP_CLI_SERVER_WORKERS: '4', TMPDIR: folders.tmp },
        // php -S does not pass SIGTERM on to its workers: stop them all at once.
        leaderFirst: false,
      });
      started.push({ name: 'roundcube', stop: () => php.stop() });
      await waitForPort(rcPort, 'Roundcube (php -S)', 15_000, undefined, php.exited);
      roundcubeUrl = `http://127.0.0.1:${rcPort}/`;
      // The first request creates the SQLite schema; check that it yields the login form.
      const res = await fetch(roundcubeUrl);
      const html = await res.text();
      if (res.status !== 200 || !html.includes('rcmloginuser')) {
        throw new StackError(`Roundcube's first page is not the login form (HTTP ${res.status}): ${html.slice(0, 300)}`);
      }
      lap('roundcube', t);
    }

    timings.total = Date.now() - t0;
    say(`mail stack ready in ${timings.total} ms (${root})`);
    return {
      root, userDomain, listDomain, listAddress, users, folders, server, adminToken, timings, mailman,
      ports: { smtp, imap, lmtp, roundcube: roundcubeUrl ? rcPort : null, listSmtp: server.smtpPort, listHttp: server.httpPort },
      urls: { roundcube: roundcubeUrl, api: `http://127.0.0.1:${server.httpPort}` },
      scanRoots: () => [root],
      logTail,
      stop: (o = {}) => stopAll(o.remove ?? true),
    };
  } catch (e) {
    const logs = logTail(20);
    try {
      await stopAll(true);
    } catch (stopError) {
      throw new StackError(`mail stack in ${root}: ${(e as Error).message}\n(and while stopping: ${(stopError as Error).message})\n${logs}`);
    }
    throw new StackError(`mail stack in ${root}: ${(e as Error).message}\n${logs}`, { cause: e });
  }
}

/**
 * `letterlock init` for the stack's data folder: a fresh secret file of its own,
 * even when the calling process has LETTERLOCK_SECRET set for other tests.
 */
async function initWithoutEnv(dataDir: string, relayPort: number, mailman?: { url: string; user: string; pass: string; syncIntervalSeconds: number }): Promise<{ secret: string }> {
  const saved = process.env.LETTERLOCK_SECRET;
  delete process.env.LETTERLOCK_SECRET;
  try {
    const { secret } = await init({
      dataDir,
      config: {
        smtp: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 },
        relay: `smtp://127.0.0.1:${relayPort}`,
        // Postfix may still be starting when the first copy leaves: retry soon.
        delivery: { retryBaseMs: 1000, retryMaxMs: 5000, reportDelayMs: 1000 },
        logLevel: 'info',
        ...(mailman ? { mailman } : {}),
      },
    });
    return { secret };
  } finally {
    if (saved !== undefined) process.env.LETTERLOCK_SECRET = saved;
  }
}
