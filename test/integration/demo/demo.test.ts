// The demo as a new user meets it (issue 13): `npm start` with its data folder and
// ports overridden, then `npm run demo:post` with only the data folder set must
// reach that server (not one on the default ports), the printed gpg steps must show
// the post's text decoded with the author's good signature, and every mistake gets
// one line and a meaningful exit code, never a Node stack. The demo server is
// started once for the file, as a child process, exactly as package.json runs it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../server/harness.ts';
import { freePorts } from '../../stack/procs.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const base = tempDir('demo');
const DIR = join(base, 'demo data'); // a space: printed commands must quote it
let smtpPort = 0;
let httpPort = 0;
let inboxPort = 0;
let server: ChildProcess | null = null;
let serverOut = '';

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command to its exit within a generous budget; a hang fails the test. */
function run(cmd: string, args: string[], env: Record<string, string>, input?: string, budgetMs = 90_000): Promise<Run> {
  const proc = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  proc.stdin.end(input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${budgetMs} ms:\n${stdout}\n${stderr}`)); }, budgetMs);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const demoPost = (args: string[], env: Record<string, string>) => run(process.execPath, ['--import', 'tsx', 'server/demo/send-post.ts', ...args], env);

function noStack(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
  expect(text).not.toMatch(/node:internal|Error \[ERR_|TypeError|Error: /);
}

/** A port that was free a moment ago. */
const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

async function until<T>(what: string, probe: () => T | null | undefined | false, budgetMs = 60_000): Promise<T> {
  const end = Date.now() + budgetMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const copies = (who: string) => {
  const d = join(DIR, 'maildir', `${who}@localhost`, 'new');
  return existsSync(d) ? readdirSync(d) : [];
};

beforeAll(async () => {
  smtpPort = await freePort();
  httpPort = await freePort();
  inboxPort = await freePort();
  server = spawn(process.execPath, ['--import', 'tsx', 'server/demo/server-demo.ts'], {
    cwd: ROOT,
    env: { ...process.env, LETTERLOCK_DEMO_DIR: DIR, LETTERLOCK_SMTP_PORT: String(smtpPort), LETTERLOCK_HTTP_PORT: String(httpPort), LETTERLOCK_INBOX_PORT: String(inboxPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (d: Buffer) => { serverOut += d.toString(); });
  server.stderr!.on('data', (d: Buffer) => { serverOut += d.toString(); });
  const exited = new Promise<never>((_, reject) => server!.once('exit', (code) => reject(new Error(`the demo exited (${code}):\n${serverOut}`))));
  // Key generation for the list and three members: slow on a busy machine.
  await Promise.race([until('the demo to start', () => serverOut.includes('Stop with Ctrl-C'), 110_000), exited]);
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await gone;
  }
  rmSync(base, { recursive: true, force: true });
});

it('prints next steps that carry the data folder and the ports it really uses', () => {
  expect(serverOut).toContain(`SMTP ingest  127.0.0.1:${smtpPort}`);
  expect(serverOut).toContain(`LETTERLOCK_DEMO_DIR='${DIR}' `);
  expect(serverOut).toMatch(/LETTERLOCK_DEMO_DIR='[^']+' LETTERLOCK_SMTP_PORT=\d+ LETTERLOCK_HTTP_PORT=\d+ npm run demo:post\n/);
  expect(serverOut).toContain(`LETTERLOCK_DATA='${DIR}' npx letterlock list show demo@lists.localhost`);
  const run = JSON.parse(readFileSync(join(DIR, 'demo-server.json'), 'utf8')) as { pid: number; smtp: { port: number } };
  expect(run).toMatchObject({ pid: server!.pid, smtp: { port: smtpPort }, http: { port: httpPort } });
});

it('the printed management commands run as printed (npx letterlock, the demo data folder)', async () => {
  const lines = serverOut.split('\n').map((l) => l.trim()).filter((l) => /^LETTERLOCK_DATA='[^']+' npx letterlock (list show|member list) /.test(l));
  expect(lines).toHaveLength(2);
  for (const line of lines) {
    const r = await run('sh', ['-c', line], {}, undefined, 180_000);
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(line.includes('member list') ? 'bob@' : 'demo@lists.localhost');
  }
}, 400_000);

it('demo:post with only LETTERLOCK_DEMO_DIR reaches this demo, and the printed gpg steps show readable text', async () => {
  const text = `Grüße from the demo test ${Date.now()}: ünïcödé survives base64.`;
  const before = copies('alice').length;
  const r = await demoPost(['--from', 'bob', '--text', text, '--subject', 'Demo test'], { LETTERLOCK_DEMO_DIR: DIR });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(`to 127.0.0.1:${smtpPort}: 250`);
  await until("Alice's copy", () => copies('alice').length > before);

  // The two gpg lines demo:post printed, run as a person would paste them (from the
  // repository root), in a throw-away TMPDIR so gpg's home and agent go with it.
  const lines = r.stdout.split('\n').map((l) => l.trim());
  const at = lines.findIndex((l) => l.startsWith("read Alice's copy with GnuPG"));
  expect(at, r.stdout).toBeGreaterThan(0);
  const [importLine, decryptLine] = [lines[at + 1]!, lines[at + 2]!];
  expect(decryptLine).toContain('| npx tsx server/demo/show-mail.ts');
  const tmp = join(base, 'gpg-tmp');
  mkdirSync(tmp, { recursive: true });
  const script = `${importLine} && ${decryptLine}; s=$?; gpgconf --homedir "$G" --kill all; exit $s`;
  const g = await run('sh', ['-c', script], { TMPDIR: tmp }, undefined, 120_000);
  expect(g.code, g.stderr).toBe(0);
  expect(g.stdout).toContain(text);
  expect(g.stdout).toContain('Subject: Demo test');
  expect(g.stdout).toContain('From: Bob <bob@localhost>');
  expect(g.stdout).not.toMatch(/Content-Transfer-Encoding|^[A-Za-z0-9+/]{60,}=*$/m); // decoded, not raw MIME
  expect(g.stderr).toContain('Good signature from "Bob <bob@localhost>"');
});

it('demo:post refuses to post to another demo that answers on the ports', async () => {
  // A second data folder whose run file points at this server but records another
  // list key: what demo:post sees when its own demo is down and another took the ports.
  const other = join(base, 'other');
  mkdirSync(other, { recursive: true });
  writeFileSync(join(other, 'letterlock.json'), '{}\n');
  writeFileSync(join(other, 'demo-server.json'), JSON.stringify({ pid: process.pid, smtp: { host: '127.0.0.1', port: smtpPort }, http: { host: '127.0.0.1', port: httpPort }, listFingerprint: 'A'.repeat(40) }));
  const before = copies('bob').length;
  const r = await demoPost([], { LETTERLOCK_DEMO_DIR: other });
  expect(r.code).toBe(3);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/is another demo .*nothing was sent/);
  noStack(r.stderr);
  // Nothing arrived from it (a post would land within the wait the other test allowed).
  await new Promise((res) => setTimeout(res, 1500));
  expect(copies('bob').length).toBe(before);
});

it('demo:post: no demo running, --help, an unknown member and an unknown option each get one line and an exit code', async () => {
  const idle = join(base, 'idle');
  mkdirSync(idle, { recursive: true });
  writeFileSync(join(idle, 'letterlock.json'), JSON.stringify({ smtp: { port: await freePort() }, http: { port: await freePort() } }));
  const down = await demoPost([], { LETTERLOCK_DEMO_DIR: idle });
  expect(down.code).toBe(3);
  expect(down.stderr).toMatch(/^demo:post: the demo server of .* is not running .*: start it with LETTERLOCK_DEMO_DIR=\S+ npm start\n$/);

  const help = await demoPost(['--help'], { LETTERLOCK_DEMO_DIR: DIR });
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/^usage: npm run demo:post/);
  expect(help.stdout).toContain('LETTERLOCK_DEMO_DIR');
  expect(help.stderr).toBe('');

  const mallory = await demoPost(['--from', 'mallory'], { LETTERLOCK_DEMO_DIR: DIR });
  expect(mallory.code).toBe(2);
  expect(mallory.stderr).toBe('demo:post: "mallory" is not a demo member; --from takes alice, bob, carol\n');

  const bogus = await demoPost(['--bogus'], { LETTERLOCK_DEMO_DIR: DIR });
  expect(bogus.code).toBe(2);
  expect(bogus.stderr.trim().split('\n')).toHaveLength(1);
  for (const r of [down, mallory, bogus]) noStack(r.stdout + r.stderr);
});

it('npm start on a busy port: one line naming the port and the variable that picks another, exit 1', async () => {
  // The running demo holds httpPort; a second start of the same folder must fail
  // at HTTP (before its delivery worker starts) and leave the first one's run file.
  const t0 = Date.now();
  const r = await run(process.execPath, ['--import', 'tsx', 'server/demo/server-demo.ts'], {
    LETTERLOCK_DEMO_DIR: DIR, LETTERLOCK_SMTP_PORT: String(await freePort()), LETTERLOCK_HTTP_PORT: String(httpPort),
  });
  expect(r.code).toBe(1);
  const lines = (r.stdout + r.stderr).trim().split('\n');
  expect(lines, r.stdout + r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^letterlock demo: HTTP port 127\\.0\\.0\\.1:${httpPort} is in use .*pick another with LETTERLOCK_HTTP_PORT, e\\.g\\. .*LETTERLOCK_HTTP_PORT=${httpPort + 1} npm start$`));
  noStack(r.stdout + r.stderr);
  expect(Date.now() - t0).toBeLessThan(60_000);
  expect(JSON.parse(readFileSync(join(DIR, 'demo-server.json'), 'utf8'))).toMatchObject({ pid: server!.pid });

  const bad = await run(process.execPath, ['--import', 'tsx', 'server/demo/server-demo.ts'], { LETTERLOCK_DEMO_DIR: DIR, LETTERLOCK_SMTP_PORT: 'twenty-five' });
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/^letterlock demo: .*LETTERLOCK_SMTP_PORT must be a number\n$/);
});

it('the demo inbox shows each address\'s delivered mail as ciphertext for the extension, and sends through the demo', async () => {
  // Without it a browser-extension user of `npm start` cannot open the confirmation mail.
  const inbox = `http://127.0.0.1:${inboxPort}/`;
  expect(serverOut).toContain(`demo inbox   ${inbox}`);
  expect(serverOut).toContain(`${inbox}?to=you@example.org`);
  const text = `inbox test ${Date.now()}`;
  const before = copies('carol').length;
  const r = await demoPost(['--from', 'alice', '--text', text], { LETTERLOCK_DEMO_DIR: DIR });
  expect(r.code, r.stderr).toBe(0);
  await until("Carol's copy", () => copies('carol').length > before);
  const index = await (await fetch(inbox)).text();
  expect(index).toContain('?to=carol%40localhost');
  const page = await fetch(`${inbox}?to=carol@localhost`);
  expect(page.status).toBe(200);
  const html = await page.text();
  // The armored block as text the extension's content script finds; never the post's words.
  expect(html).toMatch(/-----BEGIN PGP MESSAGE-----<br>/);
  expect(html).not.toContain(text);
  expect(html).toContain('<textarea id="composebody" name="body"');
  for (const bad of ['../../etc', 'carol@localhost/../x', '.hidden@x']) expect((await fetch(`${inbox}?to=${encodeURIComponent(bad)}`)).status, bad).toBe(400);
  expect((await fetch(`${inbox}nothing`)).status).toBe(404);
  // Sending goes to the demo's SMTP port: an unsigned post is refused there, and the page says why.
  const form = (to: string) => new URLSearchParams({ from: 'carol@localhost', to, subject: 's', body: 'not encrypted' }).toString();
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  expect((await fetch(`${inbox}send`, { method: 'POST', headers, body: form('not an address') })).status).toBe(400);
  const refused = await (await fetch(`${inbox}send`, { method: 'POST', headers, body: form('demo@lists.localhost'), redirect: 'manual' })).text();
  expect(refused).toMatch(/id="send-result">Not sent: .*5\d\d/);
}, 200_000);

it('SIGTERM, then SIGTERMs again while the demo closes: exit 0 and the run file removed (last: it stops the demo)', async () => {
  const proc = server!;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  let ended = false;
  void exited.then(() => { ended = true; });
  proc.kill('SIGTERM');
  // Asked again every few ms until it is gone; the default action would end it by the signal mid-close.
  let again = 0;
  while (!ended) {
    await new Promise((r) => setTimeout(r, 5));
    if (!ended && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      again++;
    }
  }
  expect(again).toBeGreaterThan(0);
  expect(await exited, serverOut.slice(-3000)).toEqual({ code: 0, signal: null });
  expect(existsSync(join(DIR, 'demo-server.json'))).toBe(false);
}, 60_000);
