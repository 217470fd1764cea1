// `npm run stack`: starts the real mail stack for people to try by hand, prints
// where everything is, and stops it all on Ctrl-C (SIGINT) or SIGTERM.
// test/stack/launch.mjs runs it after reading the options and installing packages.
//
//   npm run stack                  # Alice and Bob are members of demo@lists.example.test
//   npm run stack -- --no-members  # an empty list: subscribe through the extension or the API
//   npm run stack -- --keep        # keep the temporary folder after stopping

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from '../../shared/index.ts';
import { startMailStack, type ListMember, type MailStack } from './mailstack.ts';

const args = process.argv.slice(2);
for (const a of args) {
  if (!['--no-members', '--keep', '--help', '-h'].includes(a)) {
    console.error(`unknown option ${a}; use --no-members, --keep`);
    process.exit(2);
  }
}
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm run stack [-- --no-members] [--keep]   (npm run stack -- --help says more)');
  process.exit(0);
}

const withMembers = !args.includes('--no-members');
const keep = args.includes('--keep');
const log = (line: string) => console.error(`[stack] ${line}`);

const memberKeys: Array<{ name: string; address: string; passphrase: string; privateArmored: string; publicArmored: string }> = [];
if (withMembers) {
  for (const name of ['alice', 'bob']) {
    const address = `${name}@example.test`;
    const passphrase = `${name}-key-passphrase`;
    const g = await generateKey({ kind: 'subscriber', address, passphrase, name: name[0]!.toUpperCase() + name.slice(1) });
    memberKeys.push({ name, address, passphrase, privateArmored: g.privateKeyArmored, publicArmored: g.publicKeyArmored });
  }
}

let stack: MailStack | null = null;
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    log('stopping...');
    try {
      await stack?.stop({ remove: !keep });
      log(keep && stack ? `stopped; files kept in ${stack.root}` : 'stopped');
    } catch (e) {
      log((e as Error).message);
      code = code || 1;
    }
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const members: ListMember[] = memberKeys.map((k) => ({ address: k.address, publicKey: k.publicArmored }));
  stack = await startMailStack({ members, progress: log });
} catch (e) {
  log(`could not start: ${(e as Error).message}`);
  await stop(1);
}
const s = stack!;
const keysDir = join(s.root, 'keys');
if (memberKeys.length) {
  mkdirSync(keysDir, { mode: 0o700 });
  for (const k of memberKeys) writeFileSync(join(keysDir, `${k.name}.sec.asc`), k.privateArmored, { mode: 0o600 });
}

const pad = (t: string) => t.padEnd(12);
const lines = [
  '',
  'Letterlock real mail stack (all on 127.0.0.1)',
  `  ${pad('Roundcube')}${s.urls.roundcube ?? '(off)'}`,
  `  ${pad('SMTP in')}127.0.0.1:${s.ports.smtp}   (Postfix; no TLS, no AUTH; relays for 127.0.0.0/8)`,
  `  ${pad('IMAP')}127.0.0.1:${s.ports.imap}   (Dovecot; no TLS)`,
  `  ${pad('list')}${s.listAddress}`,
  `  ${pad('list API')}${s.urls.api}   (admin token: ${s.adminToken})`,
  `  ${pad('list SMTP')}127.0.0.1:${s.ports.listSmtp}   (Postfix routes ${s.listDomain} here)`,
  `  ${pad('folder')}${s.root}   (logs in logs/)`,
  '',
  '  mailbox users (Roundcube and IMAP log-in, password):',
  ...Object.values(s.users).map((u) => `    ${u.address.padEnd(22)}${u.password}`),
  '',
  ...(memberKeys.length ? [
    '  list members with keys made here (secret key file, passphrase):',
    ...memberKeys.map((k) => `    ${k.address.padEnd(22)}${join(keysDir, `${k.name}.sec.asc`)}  ${k.passphrase}`),
    '',
  ] : ['  the list has no members: subscribe with the extension or POST /v1/lists/{list}/subscriptions', '']),
  '  try: swaks --server 127.0.0.1:' + s.ports.smtp + ' --from bob@' + s.userDomain + ' --to carol@' + s.userDomain,
  '',
  'Ctrl-C stops every process of the stack.',
];
console.log(lines.join('\n'));
