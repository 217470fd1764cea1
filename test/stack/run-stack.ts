// `npm run stack`: starts the real mail stack for people to try by hand, prints
// where everything is, and stops it all on Ctrl-C (SIGINT) or SIGTERM.
// test/stack/launch.mjs runs it after reading the options and installing packages.
//
//   npm run stack                  # Alice and Bob are members of demo@lists.example.test
//   npm run stack -- --no-members  # an empty list: subscribe through the extension or the API
//   npm run stack -- --keep        # keep the temporary folder after stopping
//   npm run stack -- --mailman     # also a Mailman 3 Core: secret@ bound to Letterlock, plain@ left to Mailman

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from '../../shared/index.ts';
import { openData } from '../../server/app.ts';
import { registerMember } from '../../server/lists/members.ts';
import { createEventLog } from '../../server/log/log.ts';
import { importMailmanList } from '../../server/mailman/import.ts';
import { nexthop, transportMap } from '../../server/mailman/routing.ts';
import { getList } from '../../server/store/lists.ts';
import { QueueStore } from '../../server/store/queue.ts';
import { startMailStack, type ListMember, type MailStack } from './mailstack.ts';
import { run } from './procs.ts';

const args = process.argv.slice(2);
for (const a of args) {
  if (!['--no-members', '--keep', '--mailman', '--help', '-h'].includes(a)) {
    console.error(`unknown option ${a}; use --no-members, --keep, --mailman`);
    process.exit(2);
  }
}
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm run stack [-- --no-members] [--keep] [--mailman]   (npm run stack -- --help says more)');
  process.exit(0);
}

const withMembers = !args.includes('--no-members');
const keep = args.includes('--keep');
const withMailman = args.includes('--mailman');
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
  stack = await startMailStack({ members, progress: log, mailman: withMailman });
  if (withMailman) await mailmanLists(stack, members);
} catch (e) {
  log(`could not start: ${(e as Error).message}`);
  await stop(1);
}
/**
 * README "Beside Mailman 3", done as an operator would: two Mailman lists with the mailbox
 * users as members, secret@ imported (--fix) and routed to Letterlock, plain@ left to Mailman.
 */
async function mailmanLists(st: MailStack, keys: ListMember[]): Promise<void> {
  const core = st.mailman!;
  const secretId = await core.createList(`secret@${st.listDomain}`);
  const plainId = await core.createList(`plain@${st.listDomain}`);
  const rest = core.rest(60_000);
  for (const id of [secretId, plainId]) {
    for (const u of Object.values(st.users)) await rest.subscribe({ listId: id, address: u.address, preVerified: true, preConfirmed: true, preApproved: true });
  }
  const secret = readFileSync(join(st.folders.listData, 'secret'), 'utf8').trim();
  const sql = await openData(st.folders.listData, secret);
  try {
    await importMailmanList({
      sql, secret, rest, queue: new QueueStore(sql), log: createEventLog({ file: join(st.folders.listData, 'logs', 'cli.log'), stdout: false }),
      target: secretId, fix: true, publicUrl: st.urls.api, maxBytes: 25 * 1024 * 1024,
    });
    const list = (await getList(sql, `secret@${st.listDomain}`))!;
    for (const k of keys) await registerMember(sql, list.id, k.address, k.publicKey);
  } finally {
    await sql.close();
  }
  writeFileSync(st.folders.letterlockTransport, transportMap([`secret@${st.listDomain}`], { letterlock: nexthop('smtp', '127.0.0.1', st.ports.listSmtp), mailman: nexthop('lmtp', '127.0.0.1', core.lmtpPort) }));
  run('postmap', [`hash:${st.folders.letterlockTransport}`]);
  run('postfix', ['-c', st.folders.postfixConfig, 'reload'], { env: { ...process.env, MAIL_CONFIG: st.folders.postfixConfig } });
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
  ...(s.mailman ? [
    `  Mailman 3 Core  REST ${s.mailman.url} (user ${s.mailman.user}, password ${s.mailman.pass}), LMTP 127.0.0.1:${s.mailman.lmtpPort}`,
    `    secret@${s.listDomain}  bound to Letterlock (encrypted; every mailbox user a member, keys: the members above)`,
    `    plain@${s.listDomain}   a plain Mailman list (every mailbox user a member)`,
    `    Postfix: ${s.folders.letterlockTransport} first, then Mailman's own map`,
    '',
  ] : []),
  '  try: swaks --server 127.0.0.1:' + s.ports.smtp + ' --from bob@' + s.userDomain + ' --to carol@' + s.userDomain,
  '',
  'Ctrl-C stops every process of the stack.',
];
console.log(lines.join('\n'));
