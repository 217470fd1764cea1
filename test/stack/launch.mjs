#!/usr/bin/env node
// `npm run stack`: reads its options first, so `--help` and a mistyped option are
// answered before anything is installed; then installs what the stack needs
// (test/setup/ensure.mjs: npm and Debian packages) and runs test/stack/run-stack.ts.
// Plain Node on purpose: it runs before the npm packages (tsx among them) exist.

import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SYSTEM = 'postfix,dovecot,roundcube,swaks';
const OPTIONS = ['--no-members', '--keep', '--mailman'];

const USAGE = `usage: npm run stack [-- --no-members] [--keep] [--mailman]

Starts the real mail stack on 127.0.0.1 for trying Letterlock by hand: Postfix,
Dovecot (IMAP), Roundcube webmail and the list server with a list
demo@lists.example.test; prints where everything is and the log-ins; Ctrl-C
stops every process.

  --no-members   an empty list: subscribe through the extension or the HTTP API
  --keep         keep the temporary folder (logs, mailboxes) after stopping
  --mailman      also a Mailman 3 Core: secret@ bound to Letterlock, plain@ left
                 to Mailman (installs Debian's mailman3)
  --help, -h     this text; installs nothing

Before starting it installs what is missing: the npm packages (npm ci) and, as
root, the Debian packages postfix, dovecot-imapd, dovecot-lmtpd, roundcube (with
PHP and SQLite), swaks and with --mailman mailman3; not as root it prints the apt-get command to run.`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.find((a) => !OPTIONS.includes(a));
if (unknown !== undefined) {
  console.error(`npm run stack: unknown option ${JSON.stringify(unknown.slice(0, 64))}; it takes ${OPTIONS.join(', ')} (see npm run stack -- --help)`);
  process.exit(2);
}

const system = args.includes('--mailman') ? `${SYSTEM},mailman3` : SYSTEM;
const ensure = spawnSync(process.execPath, [join(root, 'test', 'setup', 'ensure.mjs'), '--system', system], { cwd: root, stdio: 'inherit' });
if (ensure.status !== 0) process.exit(ensure.status ?? 1);

// Ctrl-C reaches the whole process group, so the stack sees it and stops itself;
// this launcher only waits for it. A SIGTERM sent to the launcher alone is passed on.
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'stack', 'run-stack.ts'), ...args], { cwd: root, stdio: 'inherit' });
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
