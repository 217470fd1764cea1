// The `letterlock` command as an operator meets it (issue 13): `npx letterlock` in a
// temporary data folder, asserting exit codes (0 ok, 1 refused, 2 usage, 3 not
// reachable or not initialized), the human output and the --json shapes of every
// command, and a one-line answer without a stack trace for every refusal. The bin
// itself is run for npx, --version, a first init and serve; the other commands go
// through the same main() in this process (test/cli/run.ts letterlockIn).

import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeKey, type TestKey } from '../support/keys.ts';
import { tempDir } from '../integration/server/harness.ts';
import { testDatabaseArgs } from '../support/test-store.ts';
import { letterlock, letterlockAsync, letterlockIn, oneLine, ROOT, viaNpx } from './run.ts';

const root = tempDir('cli-cmd');
const data = join(root, 'data');
const d = ['--data', data];
const LIST = 'news@lists.test';
let ann: TestKey;
let bob: TestKey;

beforeAll(async () => {
  [ann, bob] = await Promise.all([makeKey('ann@example.org'), makeKey('bob@example.org')]);
  writeFileSync(join(root, 'ann.asc'), ann.publicArmored);
  writeFileSync(join(root, 'bob.asc'), bob.publicArmored);
  writeFileSync(join(root, 'ann-secret.asc'), ann.privateArmored);
  const wrong = await makeKey('someone-else@example.org');
  writeFileSync(join(root, 'wrong.asc'), wrong.publicArmored);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
// Most runs go through main() in this process (letterlockIn); the few that spawn the
// bin start Node and tsx: seconds each on a busy 2-core machine.
vi.setConfig({ testTimeout: 600_000 });

describe('the command itself', () => {
  it('npx letterlock runs the package bin; --version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(pkg.bin).toEqual({ letterlock: 'server/cli/letterlock.mjs' });
    expect(statSync(join(ROOT, pkg.bin.letterlock!)).mode & 0o111).not.toBe(0);
    const r = viaNpx(['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(letterlock(['-V']).stdout.trim()).toBe(pkg.version);
    // A command through npx, with its exit code passed on.
    const unknown = viaNpx(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("letterlock: unknown command 'frobnicate' (see: letterlock help)");
  });

  it('help and --help, with examples and what the policies mean', async () => {
    const top = await letterlockIn(['--help']);
    expect(top.status).toBe(0);
    for (const cmd of ['init', 'list', 'member', 'held', 'queue', 'status', 'serve']) expect(top.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    expect(top.stdout).toContain('Exit codes: 0 ok, 1 refused, 2 usage error, 3 not reachable or not initialized');
    expect(top.stdout).toMatch(/Examples:\n  letterlock init/);

    const list = await letterlockIn(['help', 'list']);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/members\s+any member may post/);
    expect(list.stdout).toMatch(/moderated\s+members' posts are held until a moderator approves them/);
    expect(list.stdout).toMatch(/announce\s+only the --poster addresses may post/);
    expect(list.stdout).toContain('letterlock list create news@lists.example.org');

    // help, several levels deep; an unknown one is one line, exit 2.
    const deep = await letterlockIn(['help', 'member', 'add']);
    expect(deep.status).toBe(0);
    expect(deep.stdout).toContain('Usage: letterlock member add [options] <list> <address> <keyfile>');
    const nosuch = await letterlockIn(['help', 'member', 'frob']);
    expect(nosuch.status).toBe(2);
    expect(oneLine(nosuch)).toBe("letterlock: unknown command 'member frob' (see: letterlock help)");

    const add = await letterlockIn(['member', 'add', '--help']);
    expect(add.status).toBe(0);
    expect(add.stdout).toContain('Usage: letterlock member add [options] <list> <address> <keyfile>');
    expect(add.stdout).toMatch(/Example:\n  gpg --export --armor ann@example.org > ann.asc/);
    expect(add.stdout).toContain('--json prints {"list", "address", "fingerprint", "expires", "result"}');
  });

  it('usage errors: one line, exit 2', async () => {
    const unknown = await letterlockIn(['frobnicate', ...d]);
    expect(unknown.status).toBe(2);
    expect(oneLine(unknown)).toBe("letterlock: unknown command 'frobnicate' (see: letterlock help)");
    expect(unknown.stdout).toBe('');

    const typo = await letterlockIn(['membr', ...d]);
    expect(typo.status).toBe(2);
    expect(oneLine(typo)).toBe("letterlock: unknown command 'membr' (Did you mean member?) (see: letterlock help)");

    const none = await letterlockIn([]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('Usage: letterlock [options] [command]');

    const missing = await letterlockIn(['member', 'add', LIST, ...d]);
    expect(missing.status).toBe(2);
    expect(oneLine(missing)).toMatch(/missing required argument 'address'/);

    const bad = await letterlockIn(['list', 'set', LIST, '--policy', 'open', ...d]);
    expect(bad.status).toBe(2);
    expect(oneLine(bad)).toMatch(/'open' is invalid\. choose one of members, moderated, announce/);

    const option = await letterlockIn(['queue', '--frob', ...d]);
    expect(option.status).toBe(2);
    expect(oneLine(option)).toMatch(/unknown option '--frob'/);
  });

  it('a folder that was never initialized: exit 3, and it says how', async () => {
    const empty = join(root, 'never');
    for (const args of [['list', 'ls'], ['queue'], ['status'], ['serve']]) {
      // serve through the bin: in this process a server that did start would outlive the test.
      const r = args[0] === 'serve' ? letterlock([...args, '--data', empty]) : await letterlockIn([...args, '--data', empty]);
      expect(r.status, args.join(' ')).toBe(3);
      expect(oneLine(r)).toBe(`letterlock: ${empty} is not initialized (run: letterlock init --data ${empty})`);
    }
  });
});

describe('init', () => {
  it('prints next steps and the back-up warning; a secret file is created with mode 0600', async () => {
    const dir = join(root, 'with-file');
    const r = letterlock(['init', '--data', dir, '--smtp-port', '2600', ...(await testDatabaseArgs())], { LETTERLOCK_SECRET: undefined });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`initialized ${dir}`);
    expect(r.stdout).toContain(`server secret: new file ${join(dir, 'secret')} (mode 0600)`);
    expect(r.stdout).toContain(`WARNING: back up the server secret ${join(dir, 'secret')} somewhere safe, apart from this folder`);
    expect(r.stdout).toMatch(/Next steps:\n  letterlock list create .* --data /);
    expect(r.stdout).toContain(`letterlock serve --data ${dir}`);
    expect(r.stdout).toContain('SMTP 127.0.0.1:2600');
    expect(statSync(join(dir, 'secret')).mode & 0o777).toBe(0o600);

    // The secret file is checked: readable by others is refused, with the fix (exit 1);
    // --debug shows the stack that is otherwise never shown.
    chmodSync(join(dir, 'secret'), 0o644);
    const readable = await letterlockIn(['list', 'ls', '--data', dir], { LETTERLOCK_SECRET: undefined });
    expect(readable.status).toBe(1);
    expect(oneLine(readable)).toMatch(/mode 0644: it must not be readable by group or others \(chmod 600 /);
    const debug = await letterlockIn(['list', 'ls', '--data', dir, '--debug'], { LETTERLOCK_SECRET: undefined });
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(/^\s+at /m);
  });

  it('with the secret in the environment; --json; a re-run that differs is refused, one that agrees is not', async () => {
    const r = await letterlockIn(['init', ...d, '--smtp-port', '0', '--http-port', '0', '--json', ...(await testDatabaseArgs())]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      dataDir: data, created: true, secretSource: 'env', secretFile: null, smtpPort: 0, httpPort: 0, relay: null,
    });

    const human = await letterlockIn(['init', ...d, '--smtp-port', '0']);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain(`${data} was already initialized (nothing changed)`);

    const differs = await letterlockIn(['init', ...d, '--smtp-port', '4600', '--relay', 'smtp://127.0.0.1:25']);
    expect(differs.status).toBe(1);
    expect(oneLine(differs)).toBe(`letterlock: ${data} is already initialized and smtp.port is 0, not 4600; relay is (none: local Maildir), not smtp://127.0.0.1:25: edit ${join(data, 'letterlock.json')} to change it (or use LETTERLOCK_SMTP_PORT, LETTERLOCK_HTTP_PORT, LETTERLOCK_RELAY), then restart the server`);
    expect(JSON.parse(readFileSync(join(data, 'letterlock.json'), 'utf8')).smtp.port).toBe(0);

    const wrong = await letterlockIn(['list', 'ls', ...d], { LETTERLOCK_SECRET: 'not-the-secret-of-this-folder' });
    expect(wrong.status).toBe(1);
    expect(oneLine(wrong)).toBe('letterlock: the server secret does not match the one this data folder was created with');
  });
});

describe('lists and members', () => {
  it('list create, ls, show, set: human and --json', async () => {
    const created = await letterlockIn(['list', 'create', LIST, '--owner', 'boss@example.org', '--policy', 'moderated', ...d]);
    expect(created.status, created.stderr).toBe(0);
    const fpr = /^list key\s+([0-9A-F]{40})$/m.exec(created.stdout)?.[1];
    expect(fpr).toBeDefined();
    expect(created.stdout).toMatch(/^policy\s+moderated$/m);

    const again = await letterlockIn(['list', 'create', LIST, ...d]);
    expect(again.status).toBe(1);
    expect(oneLine(again)).toBe(`letterlock: list ${LIST} already exists`);

    const announce = await letterlockIn(['list', 'create', 'news2@lists.test', '--policy', 'announce', '--poster', 'Ann@Example.org', '--poster', 'bob@example.org', '--json', ...d]);
    expect(announce.status, announce.stderr).toBe(0);
    const a = JSON.parse(announce.stdout) as Record<string, unknown>;
    expect(a).toMatchObject({ address: 'news2@lists.test', policy: 'announce', posters: ['ann@example.org', 'bob@example.org'], requireSignature: true, members: 0, owner: null });
    expect(a.listFingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(Object.keys(a).sort()).toEqual(['address', 'archiveFingerprint', 'hideSubjects', 'listFingerprint', 'maxBytes', 'members', 'owner', 'policy', 'posters', 'replayWindowDays', 'replyTo', 'requireSignature']);

    const shown = await letterlockIn(['list', 'show', LIST, ...d]);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^fingerprint\\s+${fpr}$`, 'm'));
    expect(shown.stdout).toMatch(/^policy\s+moderated$/m);
    expect(shown.stdout).toMatch(/^owner\s+boss@example\.org$/m);
    expect(shown.stdout).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(shown.stdout).not.toContain('posters');
    const shownJson = JSON.parse((await letterlockIn(['list', 'show', 'news2@lists.test', '--json', ...d])).stdout) as { publicKey: string; posters: string[] };
    expect(shownJson.publicKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect((await letterlockIn(['list', 'show', 'news2@lists.test', ...d])).stdout).toMatch(/^policy\s+announce \(posters: ann@example\.org, bob@example\.org\)$/m);

    const set = await letterlockIn(['list', 'set', LIST, '--replay-window-days', '3', '--reply-to', 'author', ...d]);
    expect(set.status, set.stderr).toBe(0);
    expect(set.stdout).toContain('replay window 3 days');
    expect(set.stdout).not.toContain('posters');
    const setJson = JSON.parse((await letterlockIn(['list', 'set', LIST, '--hide-subjects', '--json', ...d])).stdout) as Record<string, unknown>;
    expect(setJson).toMatchObject({ address: LIST, replayWindowDays: 3, replyTo: 'author', hideSubjects: true });
    expect((await letterlockIn(['list', 'set', LIST, '--replay-window-days', '0', ...d])).status).toBe(2);
    // A setting not named stays as it was: an unsigned list stays unsigned through an unrelated `set`.
    expect(JSON.parse((await letterlockIn(['list', 'set', LIST, '--no-signature', '--json', ...d])).stdout)).toMatchObject({ requireSignature: false });
    expect(JSON.parse((await letterlockIn(['list', 'set', LIST, '--replay-window-days', '4', '--json', ...d])).stdout)).toMatchObject({ requireSignature: false, replayWindowDays: 4 });
    expect(JSON.parse((await letterlockIn(['list', 'set', LIST, '--signature', '--json', ...d])).stdout)).toMatchObject({ requireSignature: true });

    const missing = await letterlockIn(['list', 'show', 'nope@lists.test', ...d]);
    expect(missing.status).toBe(1);
    expect(oneLine(missing)).toBe('letterlock: no list nope@lists.test here (see: letterlock list ls)');
  });

  it('member add, again, a secret key, a missing file, a key for someone else; list and remove', async () => {
    const added = await letterlockIn(['member', 'add', LIST, 'ann@example.org', join(root, 'ann.asc'), ...d]);
    expect(added.status, added.stderr).toBe(0);
    expect(added.stdout.trim()).toBe(`ann@example.org is a member of ${LIST} with key ${ann.fingerprint}`);

    // The same member again: said so, nothing changes, exit 0 (scripts may re-run).
    const again = await letterlockIn(['member', 'add', LIST, 'ann@example.org', join(root, 'ann.asc'), ...d]);
    expect(again.status).toBe(0);
    expect(again.stdout.trim()).toBe(`ann@example.org is already a member of ${LIST} with key ${ann.fingerprint}: nothing changed`);
    expect(JSON.parse((await letterlockIn(['member', 'add', LIST, 'ann@example.org', join(root, 'ann.asc'), '--json', ...d])).stdout)).toEqual({
      list: LIST, address: 'ann@example.org', fingerprint: ann.fingerprint, expires: null, result: 'already-member',
    });

    const secret = await letterlockIn(['member', 'add', LIST, 'ann@example.org', join(root, 'ann-secret.asc'), ...d]);
    expect(secret.status).toBe(1);
    expect(oneLine(secret)).toBe(`letterlock: key file ${join(root, 'ann-secret.asc')} is a SECRET key: give the public key only (gpg --export --armor ADDRESS); the list never stores secret keys`);

    const missing = await letterlockIn(['member', 'add', LIST, 'bob@example.org', join(root, 'no-such.asc'), ...d]);
    expect(missing.status).toBe(1);
    expect(oneLine(missing)).toBe(`letterlock: key file ${join(root, 'no-such.asc')} does not exist`);
    expect(missing.stderr).not.toContain('ENOENT');

    const folder = await letterlockIn(['member', 'add', LIST, 'bob@example.org', root, ...d]);
    expect(folder.status).toBe(1);
    expect(oneLine(folder)).toBe(`letterlock: key file ${root} is a folder, not a file`);

    const mismatch = await letterlockIn(['member', 'add', LIST, 'bob@example.org', join(root, 'wrong.asc'), ...d]);
    expect(mismatch.status).toBe(1);
    expect(oneLine(mismatch)).toBe("letterlock: KEY_USERID_MISMATCH: None of this key's user IDs holds the expected email address. (expected bob@example.org)");

    const badAddress = await letterlockIn(['member', 'add', LIST, 'not-an-address', join(root, 'bob.asc'), ...d]);
    expect(badAddress.status).toBe(2);
    expect(oneLine(badAddress)).toMatch(/'not-an-address' is invalid for argument 'address'\. "not-an-address" is not a valid email address/);

    const bobAdded = JSON.parse((await letterlockIn(['member', 'add', LIST, 'bob@example.org', join(root, 'bob.asc'), '--json', ...d])).stdout) as { result: string };
    expect(bobAdded.result).toBe('added');

    const ls = await letterlockIn(['list', 'ls', ...d]);
    expect(ls.stdout).toMatch(/^LIST\s+FINGERPRINT\s+POLICY\s+MEMBERS$/m);
    expect(ls.stdout).toMatch(new RegExp(`^${LIST.replace('.', '\\.')}\\s+[0-9A-F]{40}\\s+moderated\\s+2 members$`, 'm'));
    expect(ls.stdout).toMatch(/^news2@lists\.test\s+[0-9A-F]{40}\s+announce\s+0 members$/m);

    const members = await letterlockIn(['member', 'list', LIST, ...d]);
    expect(members.status).toBe(0);
    expect(members.stdout).toMatch(/^ADDRESS\s+FINGERPRINT\s+EXPIRES\s+STATE$/m);
    expect(members.stdout).toMatch(new RegExp(`^ann@example\\.org\\s+${ann.fingerprint}\\s+never$`, 'm'));
    const membersJson = JSON.parse((await letterlockIn(['member', 'list', LIST, '--json', ...d])).stdout);
    expect(membersJson).toEqual([
      { address: 'ann@example.org', fingerprint: ann.fingerprint, expires: null, state: 'valid' },
      { address: 'bob@example.org', fingerprint: bob.fingerprint, expires: null, state: 'valid' },
    ]);

    const removed = await letterlockIn(['member', 'remove', LIST, 'bob@example.org', '--json', ...d]);
    expect(JSON.parse(removed.stdout)).toEqual({ list: LIST, address: 'bob@example.org', removed: true });
    expect((await letterlockIn(['list', 'ls', ...d])).stdout).toMatch(/\s1 member$/m);
    const notMember = await letterlockIn(['member', 'remove', LIST, 'bob@example.org', ...d]);
    expect(notMember.status).toBe(1);
    expect(oneLine(notMember)).toBe(`letterlock: bob@example.org is not a member of ${LIST}`);

    const empty = await letterlockIn(['member', 'list', 'news2@lists.test', ...d]);
    expect(empty.status).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr.trim()).toBe('No members in news2@lists.test yet.');
  });
});

describe('held, queue and status on a quiet folder', () => {
  it('held list says so when empty; queue is a table; --json shapes', async () => {
    const held = await letterlockIn(['held', 'list', ...d]);
    expect(held.status).toBe(0);
    expect(held.stdout).toBe(''); // stdout carries data only
    expect(held.stderr.trim()).toBe('No held posts.');
    const heldJson = await letterlockIn(['held', 'list', LIST, '--json', ...d]);
    expect(JSON.parse(heldJson.stdout)).toEqual([]);
    expect(heldJson.stderr).toBe('');

    const noSuch = await letterlockIn(['held', 'approve', '99', ...d]);
    expect(noSuch.status).toBe(1);
    expect(oneLine(noSuch)).toBe('letterlock: no held post 99 (see: letterlock held list)');
    const badId = await letterlockIn(['held', 'approve', 'x1', ...d]);
    expect(badId.status).toBe(2);
    expect(oneLine(badId)).toMatch(/'x1' is invalid for argument 'id'\. an id must be a whole number/);

    const queue = await letterlockIn(['queue', ...d]);
    expect(queue.status).toBe(0);
    expect(queue.stdout).toMatch(/^STATE\s+COPIES$/m);
    expect(queue.stdout).toMatch(/^queued\s+0\s+waiting for the relay/m);
    expect(queue.stdout).toMatch(/^failed\s+0\s+given up/m);
    expect(JSON.parse((await letterlockIn(['queue', '--json', ...d])).stdout)).toEqual({ queued: 0, sending: 0, sent: 0, failed: 0, bounced: 0, resent_after_crash: 0 });

    const status = await letterlockIn(['status', ...d]);
    expect(status.status).toBe(0);
    expect(status.stdout).toContain('queue: 0 queued, 0 sending, 0 sent, 0 failed, 0 bounced; 0 held posts');
    expect(status.stdout).toContain('No posts yet.');
    const statusJson = JSON.parse((await letterlockIn(['status', '--json', ...d])).stdout) as Record<string, unknown>;
    expect(statusJson).toMatchObject({ held: 0, posts: [], queue: { queued: 0 } });
  });
});

describe('serve', () => {
  const blockers: Server[] = [];
  afterAll(() => { for (const b of blockers) b.close(); });

  it('a busy port: one line naming the port and how to change it, exit 3', async () => {
    const blocker = createServer((c) => c.destroy());
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    blockers.push(blocker);
    const busy = (blocker.address() as { port: number }).port;
    const dir = join(root, 'busy');
    expect(letterlock(['init', '--data', dir, '--smtp-port', '0', '--http-port', String(busy), ...(await testDatabaseArgs())]).status).toBe(0);
    const r = await letterlockAsync(['serve', '--data', dir]);
    expect(r.status).toBe(3);
    expect(oneLine(r)).toBe(`letterlock: HTTP port 127.0.0.1:${busy} is in use: set http.port in letterlock.json or LETTERLOCK_HTTP_PORT`);
  });
});
