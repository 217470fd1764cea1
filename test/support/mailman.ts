// A real Mailman 3 Core (Debian's mailman3, 3.3.8) for tests: started once per
// test file in a temporary folder with a private mailman.cfg (SQLite, REST on a
// free loopback port with its own admin credentials, outgoing SMTP to the
// test's sink), driven over REST as Postorius would, and stopped with every
// process it started. Facts for running it unattended: ../shared/REAL-STACK.md.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailmanRest } from '../../server/mailman/rest.ts';
import { freePorts, isAlive, processesUsing, sleep, stopGroup, trackGroup, untrackGroup } from '../stack/procs.ts';

export interface MailmanOptions {
  /** Where Mailman sends its own mail (copies of plain lists, notices); default: a closed port. */
  smtpPort?: number;
  /** REST readiness budget: 7-15 s on an idle machine, much more on a busy one. */
  readyTimeoutMs?: number;
  /**
   * Only the REST runner (with the database): what a test that drives Mailman
   * as Postorius does needs, and a third of the start time on a busy machine.
   * Default false: every runner, so mail can pass through Mailman.
   */
  restOnly?: boolean;
  /** Site archivers to enable (e.g. ['prototype'], which keeps a maildir under var/archives); default none. */
  archivers?: Array<'prototype' | 'mhonarc' | 'mail_archive'>;
  /** Mailman writes Postfix's LMTP transport map (var/data/postfix_lmtp, hashed by postmap) as on a site; default the null MTA. */
  postfixMaps?: boolean;
  /** The folder to make the Core's temporary folder in (the real mail stack keeps everything under its root). */
  parentDir?: string;
}

/** Mailman 3.3.8's runners besides rest (nntp is always off here). */
const OTHER_RUNNERS = ['archive', 'bounces', 'command', 'digest', 'in', 'lmtp', 'out', 'pipeline', 'retry', 'task', 'virgin'];

export class MailmanCore {
  readonly user = 'restadmin';
  readonly pass: string;
  private masterPid: number | null = null;

  private constructor(
    readonly dir: string,
    readonly restPort: number,
    readonly lmtpPort: number,
    readonly smtpPort: number,
    private readonly readyTimeoutMs: number,
    private readonly archivers: readonly string[] = [],
    private readonly postfixMaps = false,
  ) {
    this.pass = `pw-${Math.random().toString(36).slice(2)}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  get varDir(): string {
    return join(this.dir, 'var');
  }

  get cfgPath(): string {
    return join(this.dir, 'mailman.cfg');
  }

  /** A REST client with the admin credentials (short timeouts: tests wait on conditions, not on hangs). */
  rest(timeoutMs = 15_000): MailmanRest {
    return new MailmanRest({ url: this.url, user: this.user, pass: this.pass }, { timeoutMs });
  }

  static async start(options: MailmanOptions = {}): Promise<MailmanCore> {
    const probe = spawnSync('sh', ['-c', 'command -v mailman'], { stdio: 'ignore' });
    if (probe.status !== 0) throw new Error('mailman (Debian package mailman3) is not installed: run node test/setup/ensure.mjs --system mailman3');
    const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'letterlock-mailman-'));
    const [restPort, lmtpPort, closedPort] = await freePorts(3);
    const core = new MailmanCore(dir, restPort!, lmtpPort!, options.smtpPort ?? closedPort!, options.readyTimeoutMs ?? 120_000, options.archivers, options.postfixMaps);
    core.writeConfig(options.restOnly ?? false);
    try {
      await core.boot();
    } catch (e) {
      await core.stop().catch(() => {});
      throw e;
    }
    return core;
  }

  private writeConfig(restOnly: boolean): void {
    const v = this.varDir;
    mkdirSync(join(v, 'data'), { recursive: true });
    // Empty footer templates keep a PGP/MIME post intact on plain lists (REAL-STACK.md).
    const templates = join(v, 'templates', 'site', 'en');
    mkdirSync(templates, { recursive: true });
    for (const t of ['list:member:regular:footer', 'list:member:digest:footer']) writeFileSync(join(templates, `${t}.txt`), '');
    if (this.postfixMaps) writeFileSync(join(this.dir, 'postfix.cfg'), '[postfix]\npostmap_command: /usr/sbin/postmap\ntransport_file_type: hash\n');
    writeFileSync(this.cfgPath, [
      '[mailman]', 'layout: test', 'site_owner: site-owner@example.test', '',
      '[paths.test]', `var_dir: ${v}`, 'bin_dir: /usr/lib/mailman3/bin', `pid_file: ${join(v, 'master.pid')}`,
      `log_dir: ${join(v, 'logs')}`, `lock_dir: ${join(v, 'locks')}`, '',
      '[database]', 'class: mailman.database.sqlite.SQLiteDatabase', `url: sqlite:///${join(v, 'data', 'mailman.db')}`, '',
      '[webservice]', 'hostname: 127.0.0.1', `port: ${this.restPort}`, `admin_user: ${this.user}`, `admin_pass: ${this.pass}`, '',
      '[mta]', `incoming: ${this.postfixMaps ? 'mailman.mta.postfix.LMTP' : 'mailman.mta.null.NullMTA'}`, 'smtp_host: 127.0.0.1', `smtp_port: ${this.smtpPort}`,
      ...(this.postfixMaps ? [`configuration: ${join(this.dir, 'postfix.cfg')}`] : []),
      'lmtp_host: 127.0.0.1', `lmtp_port: ${this.lmtpPort}`, '',
      '[runner.nntp]', 'start: no', '',
      ...(restOnly ? OTHER_RUNNERS.flatMap((r) => [`[runner.${r}]`, 'start: no', '']) : []),
      // No archiver: nothing of a test post is kept beyond the queues.
      ...['prototype', 'mhonarc', 'mail_archive'].flatMap((a) => [`[archiver.${a}]`, `enable: ${this.archivers.includes(a) ? 'yes' : 'no'}`]), '',
    ].join('\n'));
  }

  /** Starts the master (it forks and detaches) and waits until REST answers with the admin login. */
  private async boot(): Promise<void> {
    const out = join(this.dir, 'start.out');
    // `mailman start` keeps the caller's stdout open: it goes to a file.
    const r = spawnSync('sh', ['-c', `exec mailman -C "$0" --run-as-root start --force >"$1" 2>&1`, this.cfgPath, out], { timeout: 120_000 });
    if (r.status !== 0) throw new Error(`mailman start failed (${r.status ?? r.signal}): ${safeRead(out)}`);
    const end = Date.now() + this.readyTimeoutMs;
    const pidFile = join(this.varDir, 'master.pid');
    let last = '';
    while (Date.now() < end) {
      if (this.masterPid === null && existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0) {
          this.masterPid = pid;
          // The master calls setsid(): its process group is its pid, with every runner in it.
          trackGroup(pid);
        }
      }
      try {
        await this.rest(5_000).versions();
        return;
      } catch (e) {
        last = (e as Error).message;
      }
      if (this.masterPid !== null && !isAlive(this.masterPid)) throw new Error(`mailman master exited before REST was ready: ${this.logTail()}`);
      await sleep(200);
    }
    throw new Error(`Mailman REST not ready on ${this.url} within ${this.readyTimeoutMs} ms (${last}): ${this.logTail()}`);
  }

  logTail(): string {
    const log = join(this.varDir, 'logs', 'mailman.log');
    return safeRead(log).slice(-3000);
  }

  /** Takes the Core down (the data folder stays): REST refuses connections until resume(). */
  async pause(): Promise<void> {
    await this.halt();
  }

  async resume(): Promise<void> {
    await this.boot();
  }

  private async halt(): Promise<void> {
    const pid = this.masterPid;
    this.masterPid = null;
    if (pid === null) return;
    // SIGTERM to the master (it stops its runners, 4-8 s idle, far more on a busy
    // machine), then the whole group, then SIGKILL: a Core that is down is what
    // the tests need, and SQLite survives a kill.
    await stopGroup(pid, 3_000, true);
    untrackGroup(pid);
    rmSync(join(this.varDir, 'master.pid'), { force: true });
    rmSync(join(this.varDir, 'master.lck'), { force: true });
    rmSync(join(this.varDir, 'locks'), { recursive: true, force: true });
  }

  /** Stops every process and removes the folder. */
  async stop(): Promise<void> {
    await this.halt();
    for (const p of processesUsing(this.dir)) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A list (and its domain, once) as Postorius creates them; returns its list id (news.lists.example.test). */
  async createList(fqdn: string, config: Record<string, unknown> = {}): Promise<string> {
    const rest = this.rest();
    const domain = fqdn.slice(fqdn.indexOf('@') + 1);
    await rest.createDomain(domain);
    const listId = await rest.createList(fqdn);
    if (Object.keys(config).length) await rest.patchConfig(listId, config);
    return listId;
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
