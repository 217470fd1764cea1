#!/usr/bin/env node
// Installs what the README's commands need and is missing, using only Node's
// standard library (it runs before `npm ci`):
//   - npm packages, exactly as package-lock.json pins them;
//   - with --system, Debian packages for the given tools (as root: apt-get;
//     otherwise it prints the exact command to run and exits non-zero).
// While npm ci runs (minutes on a first install) it says what is happening every
// 10 s (ENSURE_HEARTBEAT_MS changes the interval, for tests).
// Usage: node test/setup/ensure.mjs [--system gpg,chromium,...] [--no-npm]
// (--no-npm: Debian packages only, for callers already running under npm, e.g. a
// test starting the mail stack, where an `npm ci` would pull node_modules away.)

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// tool on PATH -> Debian package(s) that provide it
const DEBIAN_PACKAGES = {
  gpg: 'gnupg',
  gpgconf: 'gnupg',
  // The other OpenPGP implementations every copy must read (test/interop/copies.test.ts):
  // RNP, Thunderbird's engine (rnp and rnpkeys), and Sequoia's sq and sqop.
  rnp: 'rnp',
  sq: 'sq',
  sqop: 'sqop',
  chromium: 'chromium',
  'firefox-esr': 'firefox-esr',
  swaks: 'swaks',
  // The real mail stack (test/stack/). Dovecot's IMAP and LMTP servers live in
  // separate packages from the `dovecot` binary; php8.2-cgi goes in the same
  // install as Roundcube, or apt pulls in Apache to satisfy its PHP dependency.
  postfix: 'postfix',
  dovecot: ['dovecot-imapd', 'dovecot-lmtpd'],
  roundcube: ['roundcube', 'roundcube-sqlite3', 'php-cli', 'php8.2-cgi', 'php-sqlite3'],
  // Mailman 3 Core (test/support/mailman.ts): the `mailman` command; tests start
  // their own Core from a private mailman.cfg, never the system service.
  mailman3: 'mailman3',
  // PostgreSQL 15, the second store (test/support/postgres.ts starts its own cluster
  // with initdb and pg_ctl, never the system service).
  postgresql: 'postgresql',
  // What checks the deployment guide's snippets (test/docs/docs.test.ts) with each tool's own parser.
  caddy: 'caddy',
  nginx: 'nginx-light',
  logrotate: 'logrotate',
  'systemd-analyze': 'systemd',
};

// Tools that are not (only) a command on PATH: present when all these files exist.
const PROBES = {
  dovecot: ['/usr/sbin/dovecot', '/usr/lib/dovecot/imap', '/usr/lib/dovecot/lmtp'],
  mailman3: ['/usr/bin/mailman', '/usr/lib/mailman3/bin/runner'],
  postgresql: ['/usr/lib/postgresql/15/bin/initdb', '/usr/lib/postgresql/15/bin/pg_ctl', '/usr/lib/postgresql/15/bin/postgres'],
  roundcube: ['/var/lib/roundcube/public_html/index.php', '/usr/bin/php', '/usr/share/roundcube/SQL/sqlite.initial.sql', '/etc/php/8.2/mods-available/pdo_sqlite.ini'],
};

function log(msg) {
  process.stderr.write(`[ensure] ${msg}\n`);
}

// npm writes node_modules/.package-lock.json after every install; when it is at
// least as new as package-lock.json, what the lock pins is what is installed.
function npmPackagesCurrent() {
  const lock = join(root, 'package-lock.json');
  const installed = join(root, 'node_modules', '.package-lock.json');
  return existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs;
}

const HEARTBEAT_MS = Number(process.env.ENSURE_HEARTBEAT_MS) || 10_000;

function elapsed(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// What npm is doing, guessed from the files it leaves: npm ci prints nothing while it
// unpacks and builds when its output is not a terminal, so this is all a user sees.
function npmPhase() {
  const sqlite = join(root, 'node_modules', 'better-sqlite3');
  if (existsSync(join(sqlite, 'build', 'Release', 'better_sqlite3.node'))) return 'better-sqlite3 built; finishing';
  if (existsSync(join(sqlite, 'build'))) return 'compiling better-sqlite3 (C++, the longest step)';
  return 'downloading and unpacking packages';
}

async function ensureNpmPackages() {
  if (npmPackagesCurrent()) return;
  // Measured from a clean clone on a busy 2-core machine: 3:36 in all, about 2:30 of it compiling.
  log('installing the npm packages package-lock.json pins (npm ci). A first install takes');
  log('3-4 minutes on 2 cores, most of it compiling better-sqlite3 (the embedded SQLite)');
  log('natively; progress every 10 s, npm\'s summary at the end.');
  const t0 = Date.now();
  // JOBS=max: node-gyp compiles better-sqlite3's two sources at once (make --jobs <cores>).
  const child = spawn('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { JOBS: 'max', ...process.env } });
  const beat = setInterval(() => log(`still installing, ${elapsed(Date.now() - t0)} elapsed: ${npmPhase()}...`), HEARTBEAT_MS);
  const status = await new Promise((resolve) => {
    child.once('error', (e) => resolve({ code: null, why: e.code === 'ENOENT' ? 'npm is not on PATH' : e.message }));
    child.once('close', (code, signal) => resolve({ code, why: signal ? `stopped by ${signal}` : null }));
  });
  clearInterval(beat);
  if (status.code !== 0) {
    log(`npm ci failed${status.why ? ` (${status.why})` : ''}; see the output above.`);
    process.exit(status.code || 1);
  }
  log(`npm packages installed in ${elapsed(Date.now() - t0)}.`);
}

function onPath(tool) {
  if (PROBES[tool]) return PROBES[tool].every((f) => existsSync(f));
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function ensureSystemTools(tools) {
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.flatMap((t) => DEBIAN_PACKAGES[t] ?? t))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    log(`missing: ${missing.join(', ')}. Install them with:`);
    log(`  sudo apt-get update && sudo apt-get install -y ${packages.join(' ')}`);
    process.exit(1);
  }
  log(`installing Debian packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for the dpkg lock rather than fail: test files starting in parallel may install at once.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  execFileSync('apt-get', [...lock, 'update', '-q'], { stdio: ['ignore', 'inherit', 'inherit'], env });
  execFileSync('apt-get', [...lock, 'install', '-y', '-q', '--no-install-recommends', ...packages], { stdio: ['ignore', 'inherit', 'inherit'], env });
  const still = tools.filter((t) => !onPath(t));
  if (still.length) {
    log(`still missing after install: ${still.join(', ')}`);
    process.exit(1);
  }
}

const args = process.argv.slice(2);
if (!args.includes('--no-npm')) await ensureNpmPackages();
const i = args.indexOf('--system');
if (i >= 0) ensureSystemTools((args[i + 1] ?? '').split(',').filter(Boolean));
