// The project's own documentation (issue 13) must stay true:
// - every relative link in README.md and docs/*.md resolves (file, and heading anchor);
// - every source path docs/design.md names exists, so the design page follows the code;
// - the configuration snippets in docs/deploy.md parse with the tools that will read
//   them: letterlock.json with the server's own schema, the systemd unit with
//   systemd-analyze, Postfix's with postconf/postmap, logrotate's with logrotate -d,
//   Caddy's and nginx's with their own checks and, run for real in front of a stand-in
//   backend, route WKD (direct and advanced), the API, and keep the operator API out.
// - the Node.js version the README asks for is one every locked package accepts.
// A tool that is not installed skips its own check (they are not test dependencies);
// the link, path and schema checks always run.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../server/config/config.ts';
import { tempDir } from '../integration/server/harness.ts';
import { freePorts } from '../stack/procs.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const tmp = tempDir('docs');
const children: ChildProcess[] = [];
const servers: Server[] = [];

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await gone;
    }
  }
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const withoutCode = (md: string) => md.replace(/^```.*?^```/gms, '').replace(/`[^`\n]*`/g, '');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(md: string): Set<string> {
  const out = new Set<string>();
  for (const m of md.replace(/^```.*?^```/gms, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    out.add(m[1]!.toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-'));
  }
  return out;
}

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

describe('links', () => {
  it.each(DOCS)('every relative link in %s resolves', (file) => {
    const text = withoutCode(read(file));
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z][a-z+.-]*:/i.test(l));
    if (file === 'README.md') expect(links).toContain('docs/design.md');
    for (const link of links) {
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, file) : resolve(ROOT, dirname(file), path);
      expect(existsSync(target), `${file}: ${link}`).toBe(true);
      if (anchor !== undefined) {
        expect(statSync(target).isFile(), `${file}: ${link} (an anchor needs a file)`).toBe(true);
        expect([...anchors(readFileSync(target, 'utf8'))], `${file}: ${link}`).toContain(anchor);
      }
    }
  });

  it('no document points to the team handbook a clone does not have', () => {
    for (const file of DOCS) expect(read(file), file).not.toMatch(/shared\/DESIGN\.md/);
  });
});

describe('README', () => {
  it('the Node.js version it asks for is one every installed package accepts (no EBADENGINE)', () => {
    const floor = /Node\.js (\d+\.\d+)\+/.exec(read('README.md'))?.[1];
    expect(floor).toBeDefined();
    const version = `${floor}.0`;
    // semver comes with npm's own dependency tree here; a transitive package, read as such.
    const semver = createRequire(import.meta.url)('semver') as { satisfies(v: string, range: string): boolean };
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
    expect(semver.satisfies(version, pkg.engines.node)).toBe(true);
    const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
    const refuse = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && !Array.isArray(p.engines) && p.engines?.node && !semver.satisfies(version, p.engines.node))
      .map(([path, p]) => `${path} wants node ${(p.engines as { node: string }).node}`);
    expect(refuse).toEqual([]);
  });
});

describe('docs/design.md', () => {
  const design = read('docs/design.md');

  it('covers the message path, the rules, the threat model and the wire formats', () => {
    const a = anchors(design);
    for (const h of ['the-message-path', 'the-rules-that-never-break', 'threat-model', 'wire-formats', 'a-members-copy', 'archive-records', 'http-api-authentication', 'commands-by-mail']) {
      expect([...a]).toContain(h);
    }
    for (const step of ['ingest', 'parse', 'open', 'verify', 'decide', 'replay', 'seal', 'archive', 'wrap', 'deliver']) {
      expect(design, step).toMatch(new RegExp(`\\| ${step} \\|`));
    }
  });

  it('every source path it names exists', () => {
    const paths = [...new Set([...design.matchAll(/`((?:server|shared|extension|test)\/[\w./-]*)`/g)].map((m) => m[1]!))];
    expect(paths.length).toBeGreaterThan(20);
    for (const p of paths) expect(existsSync(join(ROOT, p)), p).toBe(true);
  });
});

// ---- docs/deploy.md: the snippets, each found by the file name on its first line ----------

const deploy = read('docs/deploy.md');
const blocks = [...deploy.matchAll(/^```(\w*)\n(.*?)^```/gms)].map((m) => ({ lang: m[1]!, body: m[2]! }));
function snippet(path: string): string {
  const b = blocks.find((x) => x.body.startsWith(`# ${path}`));
  if (!b) throw new Error(`docs/deploy.md has no block starting "# ${path}"`);
  return b.body;
}
const config = parseConfig(JSON.parse(blocks.find((b) => b.lang === 'json')!.body), 'docs/deploy.md');

function runTool(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stderr: r.stderr ?? '' };
}

describe('docs/deploy.md snippets', () => {
  it('letterlock.json passes the server\'s own schema and agrees with the other snippets', () => {
    expect(config.publicUrl).toMatch(/^https:\/\//);
    expect(config.smtp.trustedClients).toContain('127.0.0.1');
    expect(config.http.trustProxy).toEqual(['127.0.0.1']);
    // Postfix hands list mail to smtp.port and takes copies back where relay points.
    expect(snippet('/etc/postfix/transport')).toMatch(new RegExp(`smtp:\\[${config.smtp.host}\\]:${config.smtp.port}\\b`));
    const relay = new URL(config.relay!);
    expect(snippet('/etc/postfix/master.cf')).toContain(`${relay.hostname}:${relay.port} inet`);
    expect(deploy).toContain(`--relay ${config.relay}`);
    // Both web servers proxy to http.port.
    for (const p of ['/etc/caddy/Caddyfile', '/etc/nginx/sites-available/letterlock']) expect(snippet(p)).toContain(`127.0.0.1:${config.http.port}`);
  });

  it.skipIf(!has('systemd-analyze'))('the systemd unit passes systemd-analyze verify without a warning, hardened', () => {
    const unit = snippet('/etc/systemd/system/letterlock.service');
    const dir = join(tmp, 'systemd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'letterlock.service'), unit);
    const r = runTool('systemd-analyze', ['verify', join(dir, 'letterlock.service')]);
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim(), 'systemd-analyze reports unknown or unparsable settings here').toBe('');
    for (const line of ['User=letterlock', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/letterlock', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=']) {
      expect(unit).toContain(`\n${line}\n`);
    }
    const sec = runTool('systemd-analyze', ['security', '--offline=yes', '--threshold=30', join(dir, 'letterlock.service')]);
    expect(sec.code, sec.out).toBe(0); // exposure at most 3.0 of 10
  });

  it.skipIf(!has('postconf') || !has('postmap'))('the Postfix snippets parse with postconf and postmap, and route the list domain', () => {
    const dir = join(tmp, 'postfix');
    mkdirSync(dir, { recursive: true });
    const body = (p: string) => snippet(p).split('\n').slice(1).join('\n');
    writeFileSync(join(dir, 'main.cf'), body('/etc/postfix/main.cf').replaceAll('hash:/etc/postfix/', `hash:${dir}/`));
    writeFileSync(join(dir, 'master.cf'), body('/etc/postfix/master.cf'));
    writeFileSync(join(dir, 'transport'), body('/etc/postfix/transport'));
    writeFileSync(join(dir, 'letterlock_verify'), body('/etc/postfix/letterlock_verify'));
    const main = runTool('postconf', ['-c', dir, '-n']);
    expect(main.code, main.out).toBe(0);
    expect(main.stderr, 'postconf warnings (unknown parameters?)').toBe('');
    expect(main.out).toMatch(/^relay_domains = lists\.example\.org$/m);
    expect(main.out).toMatch(/^transport_maps = hash:/m);
    const master = runTool('postconf', ['-c', dir, '-M']);
    expect(master.code, master.out).toBe(0);
    expect(master.stderr).toBe('');
    expect(master.out).toMatch(/^127\.0\.0\.1:10025\s+inet\s+n\s+-\s+y\s+-\s+-\s+smtpd /m);
    const build = runTool('postmap', ['-c', dir, join(dir, 'transport'), join(dir, 'letterlock_verify')]);
    expect(build.code, build.out).toBe(0);
    expect(runTool('postmap', ['-c', dir, '-q', 'lists.example.org', `hash:${dir}/transport`]).out.trim()).toBe(`smtp:[127.0.0.1]:${config.smtp.port}`);
    expect(runTool('postmap', ['-c', dir, '-q', 'lists.example.org', `hash:${dir}/letterlock_verify`]).out.trim()).toBe('reject_unverified_recipient');
  });

  it.skipIf(!has('logrotate'))('the logrotate snippet parses with logrotate -d', () => {
    const dir = join(tmp, 'logrotate');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    writeFileSync(join(dir, 'logs', 'server.log'), '');
    const user = runTool('id', ['-un']).out.trim();
    const group = runTool('id', ['-gn']).out.trim();
    const conf = snippet('/etc/logrotate.d/letterlock')
      .replace('/var/lib/letterlock/logs', join(dir, 'logs'))
      .replace('su letterlock letterlock', `su ${user} ${group}`);
    writeFileSync(join(dir, 'letterlock'), conf);
    const r = runTool('logrotate', ['-d', '-s', join(dir, 'state'), join(dir, 'letterlock')]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/^error:/m);
    expect(r.out).toMatch(/rotating pattern: .*server\.log\s+weekly \(8 rotations\)/);
  });
});

// ---- the web server snippets, run for real on loopback in front of a stand-in backend ------

/** A backend that answers 200 and records each path it was asked for. */
async function backend(): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const s = createHttpServer((req, res) => { seen.push(req.url ?? ''); res.end('ok'); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { port: (s.address() as { port: number }).port, seen };
}

/** A port that was free a moment ago. */
const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

async function waitPort(port: number, proc: ChildProcess, log: () => string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`exited (${proc.exitCode}):\n${log()}`);
    const ok = await new Promise<boolean>((r) => { const c = connect(port, '127.0.0.1'); c.once('connect', () => { c.destroy(); r(true); }); c.once('error', () => r(false)); });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { proc: ChildProcess; log: () => string } {
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return { proc, log: () => out };
}

/** GET with a Host header (and TLS without verification for the test certificate). */
async function get(port: number, host: string, path: string, tls: boolean): Promise<number> {
  const mod = tls ? await import('node:https') : { request };
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: '127.0.0.1', port, path, headers: { host }, servername: host, rejectUnauthorized: false, timeout: 10_000 }, (res) => { res.resume(); res.once('end', () => resolve(res.statusCode ?? 0)); });
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** What both web servers must do, given the port they listen on and the backend's log. */
async function expectRouting(port: number, tls: boolean, seen: string[]): Promise<void> {
  const main = 'lists.example.org';
  const wkd = 'openpgpkey.lists.example.org';
  const hash = 'kei1q4tipxxu1yj79k9kfukdhfy631xe';
  // Direct method on the mail domain: mapped onto the advanced path Letterlock serves.
  expect(await get(port, main, `/.well-known/openpgpkey/hu/${hash}?l=news`, tls)).toBe(200);
  expect(seen.at(-1)).toBe(`/.well-known/openpgpkey/${main}/hu/${hash}?l=news`);
  expect(await get(port, main, '/.well-known/openpgpkey/policy', tls)).toBe(200);
  expect(seen.at(-1)).toBe(`/.well-known/openpgpkey/${main}/policy`);
  // The API passes as it is; the operator API does not leave the machine.
  expect(await get(port, main, '/v1/lists/news@lists.example.org', tls)).toBe(200);
  expect(seen.at(-1)).toBe('/v1/lists/news@lists.example.org');
  const before = seen.length;
  expect(await get(port, main, '/v1/admin/lists', tls)).toBe(404);
  // Advanced method on openpgpkey.<domain>; nothing else is served there.
  expect(await get(port, wkd, `/.well-known/openpgpkey/${main}/hu/${hash}`, tls)).toBe(200);
  expect(seen.at(-1)).toBe(`/.well-known/openpgpkey/${main}/hu/${hash}`);
  expect(await get(port, wkd, '/v1/lists/news@lists.example.org', tls)).toBe(404);
  expect(seen.slice(before).filter((p) => p.startsWith('/v1/'))).toEqual([]);
}

describe('web server snippets, run', () => {
  it.skipIf(!has('caddy'))('Caddy: caddy validate accepts the Caddyfile, and it routes WKD and the API', async () => {
    const dir = join(tmp, 'caddy');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'Caddyfile');
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
    writeFileSync(file, snippet('/etc/caddy/Caddyfile'));
    const v = runTool('caddy', ['validate', '--config', file, '--adapter', 'caddyfile'], { env });
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain('Valid configuration');

    // The same site blocks on plain HTTP and a free port, in front of the stand-in.
    const b = await backend();
    const port = await freePort();
    const test = join(dir, 'Caddyfile.run');
    writeFileSync(test, `{\n\tadmin off\n\tauto_https off\n}\n\n${snippet('/etc/caddy/Caddyfile')
      .replace(/^lists\.example\.org \{/m, `http://lists.example.org:${port} {`)
      .replace(/^openpgpkey\.lists\.example\.org \{/m, `http://openpgpkey.lists.example.org:${port} {`)
      .replaceAll(`127.0.0.1:${config.http.port}`, `127.0.0.1:${b.port}`)}`);
    const c = start('caddy', ['run', '--config', test, '--adapter', 'caddyfile'], env);
    await waitPort(port, c.proc, c.log);
    await expectRouting(port, false, b.seen);
  });

  it.skipIf(!has('nginx') || !has('openssl'))('nginx: nginx -t accepts the site, and it routes WKD and the API', async () => {
    const dir = join(tmp, 'nginx');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const cert = runTool('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=lists.example.org']);
    expect(cert.code, cert.out).toBe(0);
    const site = snippet('/etc/nginx/sites-available/letterlock')
      .replace(/\/etc\/letsencrypt\/live\/[^ ;]+\/fullchain\.pem/g, join(dir, 'cert.pem'))
      .replace(/\/etc\/letsencrypt\/live\/[^ ;]+\/privkey\.pem/g, join(dir, 'key.pem'));
    const wrap = (siteFile: string) => `pid ${join(dir, 'nginx.pid')};\nerror_log stderr;\nevents {}\nhttp {\n  access_log off;\n  include ${siteFile};\n}\n`;
    writeFileSync(join(dir, 'site.conf'), site);
    writeFileSync(join(dir, 'nginx.conf'), wrap(join(dir, 'site.conf')));
    const t = runTool('nginx', ['-t', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr']);
    expect(t.code, t.out).toBe(0);
    expect(t.out).toContain('test is successful');

    // The same server blocks on a free loopback port (TLS with the test certificate).
    const b = await backend();
    const port = await freePort();
    writeFileSync(join(dir, 'run.conf'), site
      .replace(/listen 443 ssl http2;/g, `listen 127.0.0.1:${port} ssl;`)
      .replace(/^\s*listen \[::\]:\d+.*$/gm, '')
      .replace(/listen 80;/g, `listen 127.0.0.1:${await freePort()};`)
      .replaceAll(`127.0.0.1:${config.http.port}`, `127.0.0.1:${b.port}`));
    writeFileSync(join(dir, 'nginx-run.conf'), wrap(join(dir, 'run.conf')));
    const n = start('nginx', ['-p', `${dir}/`, '-c', join(dir, 'nginx-run.conf'), '-e', 'stderr', '-g', 'daemon off;']);
    await waitPort(port, n.proc, n.log);
    await expectRouting(port, true, b.seen);
  });
});
