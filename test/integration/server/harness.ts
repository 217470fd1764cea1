// Shared parts of the server's integration tests: a loopback SMTP sink (the
// "relay" the list delivers to), a data folder set up through the server's own
// modules, member keys, and a way to run the server in-process or as a child.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { composePost, readPublicKey } from '../../../shared/index.ts';
import type { PrivateKey, PublicKey } from 'openpgp';
import { init } from '../../../server/cli/init.ts';
import { makeKey } from '../../support/keys.ts';
import { openData } from '../../../server/app.ts';
import { createList, type CreateListOptions } from '../../../server/lists/lists.ts';
import { registerMember } from '../../../server/lists/members.ts';
import type { Sql } from '../../../server/store/db.ts';
import { testDatabaseConfig } from '../../support/test-store.ts';

export const SECRET = 'integration-test-secret-0123456789';

export interface SinkMessage {
  from: string;
  to: string[];
  raw: Buffer;
}

/** An SMTP server that stores what it receives, or refuses on demand. */
export class Sink {
  readonly messages: SinkMessage[] = [];
  /** Per-recipient answer: undefined accepts; a number refuses at RCPT with that code. */
  refuse: (rcpt: string) => number | undefined = () => undefined;
  /** Each message is answered this long after it arrived (a slow relay widens in-flight windows). */
  delayMs = 0;
  private server: SMTPServer | null = null;
  port = 0;

  /** With `auth`, the sink demands STARTTLS (smtp-server's built-in certificate) and a login. */
  constructor(private readonly auth?: { user: string; pass: string }) {}

  /** Logins seen (user names), for the relay-auth test. */
  readonly logins: string[] = [];

  async start(port = 0): Promise<number> {
    const auth = this.auth;
    const server = new SMTPServer({
      logger: false, size: 64 * 1024 * 1024, closeTimeout: 100,
      ...(auth
        ? {
          authOptional: false, allowInsecureAuth: false, authMethods: ['PLAIN', 'LOGIN'],
          onAuth: (a, session, cb) => {
            if (!session.secure) return cb(new Error('TLS first'));
            if (a.username === auth.user && a.password === auth.pass) {
              this.logins.push(a.username!);
              return cb(null, { user: a.username });
            }
            cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
          },
        }
        : { authOptional: true, disabledCommands: ['AUTH', 'STARTTLS'] }),
      onRcptTo: (address, _session, cb) => {
        const code = this.refuse(address.address);
        if (code) return cb(Object.assign(new Error(code >= 500 ? 'No such user' : 'Try later'), { responseCode: code }));
        cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
          });
          if (this.delayMs > 0) setTimeout(cb, this.delayMs);
          else cb();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    // A list server killed mid-transfer resets its connections: expected here.
    server.on('error', () => {});
    this.server = server;
    this.port = (server.server.address() as AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  to(rcpt: string): SinkMessage[] {
    return this.messages.filter((m) => m.to.includes(rcpt));
  }

  /** The predicate may be async (a count read from the database). */
  async waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what} (sink has ${this.messages.length} messages)`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export interface Person {
  address: string;
  passphrase: string;
  publicArmored: string;
  privateArmored: string;
  revocationCertificate: string;
  privateKey: PrivateKey;
  publicKey: PublicKey;
}

export function person(address: string, expiresInSeconds?: number): Promise<Person> {
  return makeKey(address, 'subscriber', undefined, expiresInSeconds);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `letterlock-${prefix}-`));
}

/** init + config: SMTP/HTTP on free loopback ports, the sink as relay, fast retries. */
export async function initData(dataDir: string, relayPort: number, extra: Record<string, unknown> = {}): Promise<void> {
  process.env.LETTERLOCK_SECRET = SECRET;
  await init({
    dataDir,
    config: {
      // 127.0.0.1 is trusted (skips the per-address connection caps) so tests that
      // send hundreds of posts are not cooled down; hygiene.test.ts floods from 127.0.0.2.
      smtp: { port: 0, trustedClients: ['127.0.0.1'] }, http: { port: 0 }, relay: `smtp://127.0.0.1:${relayPort}`,
      delivery: { retryBaseMs: 150, retryMaxMs: 1000, reportDelayMs: 200 },
      logLevel: 'debug',
      // LETTERLOCK_TEST_STORE=postgres: a fresh database on the file's PostgreSQL.
      ...(await testDatabaseConfig()),
      ...extra,
    },
  });
}

export async function addList(dataDir: string, address: string, options: Partial<CreateListOptions>, members: Person[]): Promise<void> {
  const sql: Sql = await openData(dataDir, SECRET);
  try {
    const list = await createList(sql, SECRET, address, { maxBytes: 25 * 1024 * 1024, ...options });
    for (const m of members) await registerMember(sql, list.id, m.address, m.publicArmored);
  } finally {
    await sql.close();
  }
}

export async function listPublicKey(dataDir: string, address: string): Promise<PublicKey> {
  const { getList } = await import('../../../server/store/lists.ts');
  const sql = await openData(dataDir, SECRET);
  try {
    return (await readPublicKey((await getList(sql, address))!.listPublic)).key;
  } finally {
    await sql.close();
  }
}

export async function compose(from: Person, listAddress: string, listKey: PublicKey, text: string, subject = 'A subject'): Promise<string> {
  const post = await composePost({ message: { subject, from: { address: from.address }, to: [{ address: listAddress }], text }, senderKey: from.privateKey, listKey });
  return post.pgpMime;
}

/** Sends one mail over SMTP; resolves with the server's reply or rejects with its error. */
export async function send(port: number, from: string, to: string, raw: string | Buffer): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 10_000, socketTimeout: 120_000 });
  try {
    const info = await t.sendMail({ envelope: { from, to: [to] }, raw });
    return info.response;
  } finally {
    t.close();
  }
}

/**
 * Waits for a condition, polling every `everyMs`, within a generous budget; a miss
 * throws naming what was awaited and, if given, `detail()` (a child's last output).
 */
export async function until(what: string, ok: () => boolean | Promise<boolean>, o: { timeoutMs?: number; everyMs?: number; detail?: () => string } = {}): Promise<void> {
  const end = Date.now() + (o.timeoutMs ?? 30_000);
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${o.detail ? `\n${o.detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 50));
  }
}

export interface Child {
  proc: ChildProcess;
  smtpPort: number;
  httpPort: number;
  output: () => string;
}

/** Runs `letterlock serve` as a child process (for the SIGKILL paths). */
export function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', 'serve', '--data', dataDir], {
    cwd: join(import.meta.dirname, '..', '..', '..'),
    env: { ...process.env, LETTERLOCK_SECRET: SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.length > 4_000_000) out = out.slice(-1_000_000); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30_000);
    const check = () => {
      const m = /SMTP on [\d.]+:(\d+), HTTP on [\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stderr!.off('data', check);
        resolve({ proc, smtpPort: Number(m[1]), httpPort: Number(m[2]), output: () => out });
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${out}`)); });
  });
}

export async function stopChild(c: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.proc.once('exit', () => r()));
  c.proc.kill(signal);
  await exited;
}

/**
 * Seeds many members fast: real keys from a small pool, reused across addresses.
 * The key policy is bypassed on purpose (it is tested per key elsewhere); what
 * matters here is the fan-out, and each wrap costs the same whichever key it is.
 */
export async function seedMembers(dataDir: string, listAddress: string, count: number, pool: Person[], domain = 'sub.test'): Promise<string[]> {
  const { getList } = await import('../../../server/store/lists.ts');
  const { upsertMember } = await import('../../../server/store/members.ts');
  const packets = await Promise.all(pool.map(async (p) => ({ fpr: p.publicKey.getFingerprint().toUpperCase(), armored: p.publicArmored, packet: (await p.publicKey.getEncryptionKey()).keyPacket.write() })));
  const sql = await openData(dataDir, SECRET);
  const addresses: string[] = [];
  try {
    const list = (await getList(sql, listAddress))!;
    await sql.tx(async () => {
      for (let i = 0; i < count; i++) {
        const k = packets[i % packets.length]!;
        const address = `s${String(i).padStart(5, '0')}@${domain}`;
        addresses.push(address);
        await upsertMember(sql, { listId: list.id, address, fingerprint: k.fpr, publicKey: k.armored, encryptionKey: k.packet, expiresAt: null, keyState: 'valid' });
      }
    });
  } finally {
    await sql.close();
  }
  return addresses;
}
