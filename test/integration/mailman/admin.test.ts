// The operator's side of a Mailman-bound list against a real Mailman 3 Core
// (test/support/mailman.ts, started once for this file with the prototype archiver
// enabled site-wide, as a site with HyperKitty has one): the settings binding refuses
// or corrects (server/mailman/safety.ts), `mailman status` and `mailman import`.

import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData } from '../../../server/app.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { checkSafety, ensureSafe, fixSafety, UnsafeMailmanList } from '../../../server/mailman/safety.ts';
import { getList } from '../../../server/store/lists.ts';
import { MailmanCore } from '../../support/mailman.ts';
import { initData, person, SECRET, Sink, spawnServer, stopChild, tempDir, type Child } from '../server/harness.ts';
import { rawDb } from '../../support/raw-db.ts';

let core: MailmanCore;
let sink: Sink;
let root: string;
let data: string;
const LIST = 'moving@lists.example.test';
const MEMBERS = ['alice@example.test', 'bob@example.test', 'carol@example.test'];

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  core = await MailmanCore.start({ archivers: ['prototype'] });
  root = tempDir('mailman-admin');
  data = join(root, 'data');
  await initData(data, sink.port, { mailman: { url: core.url, user: core.user, pass: core.pass, syncIntervalSeconds: 3600 }, publicUrl: 'https://lists.example.test' });
}, 240_000);

afterAll(async () => {
  await core?.stop();
  await sink?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
}, 120_000);

/** The operator's command line, as a separate process (exit code, stdout, stderr). */
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', ...args, '--data', data], {
    cwd: join(import.meta.dirname, '..', '..', '..'), env: { ...process.env, LETTERLOCK_SECRET: SECRET }, encoding: 'utf8', timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function queued(): Promise<Array<{ rcpt: string; kind: string; mail: string }>> {
  const sql = await openData(data, SECRET);
  try {
    return (rawDb(sql).prepare(`SELECT rcpt, kind, mail FROM deliveries ORDER BY id`).all() as Array<{ rcpt: string; kind: string; mail: Buffer | null }>)
      .map((r) => ({ rcpt: r.rcpt, kind: r.kind, mail: r.mail?.toString('utf8') ?? '' }));
  } finally {
    await sql.close();
  }
}

describe('Mailman settings a bound list must not have', () => {
  it('a new Mailman list is unsafe as created (archiver on, archive policy public, digests on); binding refuses it and says which', async () => {
    const id = await core.createList('unsafe@lists.example.test');
    const rest = core.rest();
    const issues = await checkSafety(rest, id);
    expect(issues.map((i) => i.setting).sort()).toEqual(['archive_policy', 'archivers.prototype', 'digests_enabled']);
    const refused = await ensureSafe(rest, id, false).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnsafeMailmanList);
    expect((refused as Error).message).toMatch(/archivers\.prototype is enabled.*--fix/);
    // Refusing changed nothing in Mailman.
    expect((await rest.archivers(id)).prototype).toBe(true);
  });

  it('--fix turns each one off over REST, Mailman reads back safe, and a second fix has nothing to do', async () => {
    const id = await core.createList('fixme@lists.example.test', { gateway_to_news: true });
    const rest = core.rest();
    expect((await checkSafety(rest, id)).map((i) => i.setting)).toContain('gateway_to_news');
    const fixed = await ensureSafe(rest, id, true);
    expect(fixed.map((i) => i.setting).sort()).toEqual(['archive_policy', 'archivers.prototype', 'digests_enabled', 'gateway_to_news']);
    expect(await rest.archivers(id)).toEqual({ prototype: false });
    const cfg = await rest.listConfig(id) as Record<string, unknown>;
    expect([cfg.archive_policy, cfg.digests_enabled, cfg.gateway_to_news]).toEqual(['never', false, false]);
    expect(await checkSafety(rest, id)).toEqual([]);
    expect(await fixSafety(rest, id)).toEqual([]);
    await expect(ensureSafe(rest, id, false)).resolves.toEqual([]);
  });
});

describe('letterlock mailman import and status against a real Core', () => {
  let mailmanId: string;

  it('import refuses an unsafe Mailman list and makes nothing; with --fix it binds, reads the roster and queues one invitation per member without a key', async () => {
    mailmanId = await core.createList(LIST);
    const rest = core.rest();
    for (const a of MEMBERS) await rest.subscribe({ listId: mailmanId, address: a, preVerified: true, preConfirmed: true, preApproved: true });
    await rest.subscribe({ listId: mailmanId, address: 'owner@example.test', role: 'owner', preVerified: true, preConfirmed: true, preApproved: true });
    await rest.subscribe({ listId: mailmanId, address: 'outsider@example.test', role: 'nonmember', preVerified: true, preConfirmed: true, preApproved: true });

    const refused = cli('mailman', 'import', LIST);
    expect(refused.code, refused.err).toBe(1);
    expect(refused.err).toMatch(/archivers\.prototype is enabled \(want disabled\).*digests_enabled.*--fix/);
    expect(refused.err).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    const sql = await openData(data, SECRET);
    expect(await getList(sql, LIST)).toBeNull();
    await sql.close();
    expect((await rest.archivers(mailmanId)).prototype).toBe(true);

    const done = cli('mailman', 'import', mailmanId, '--fix', '--json');
    expect(done.code, done.err).toBe(0);
    const r = JSON.parse(done.out) as Record<string, unknown>;
    expect(r).toMatchObject({ list: LIST, mailmanListId: mailmanId, created: true, members: 3, withKey: 0, invited: 3, invitedBefore: 0 });
    expect((r.fixed as Array<{ setting: string }>).map((f) => f.setting).sort()).toEqual(['archive_policy', 'archivers.prototype', 'digests_enabled']);
    expect(await checkSafety(rest, mailmanId)).toEqual([]);
    const invitations = (await queued()).filter((q) => q.kind === 'notice');
    expect(invitations.map((q) => q.rcpt).sort()).toEqual(MEMBERS);
    const db2 = await openData(data, SECRET);
    const list = (await getList(db2, LIST))!;
    await db2.close();
    expect(list.mailmanListId).toBe(mailmanId);
    expect(list.owner).toBe('owner@example.test'); // Mailman's owner gets Letterlock's failure reports
    const mail = invitations[0]!.mail;
    expect(mail).toMatch(/^From: <moving@lists\.example\.test>/m);
    expect(mail).toContain(list.listFingerprint.toUpperCase());
    expect(mail).toContain('https://lists.example.test/v1/lists/moving%40lists.example.test/subscriptions');
  }, 180_000);

  it('a second import invites nobody twice; a member added in Mailman since is invited alone', async () => {
    const again = cli('mailman', 'import', LIST, '--json');
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)).toMatchObject({ created: false, invited: 0, invitedBefore: 3, fixed: [] });
    await core.rest().subscribe({ listId: mailmanId, address: 'dave@example.test', preVerified: true, preConfirmed: true, preApproved: true });
    const third = cli('mailman', 'import', LIST, '--json');
    expect(JSON.parse(third.out)).toMatchObject({ created: false, members: 4, invited: 1, invitedBefore: 3 });
    expect((await queued()).filter((q) => q.kind === 'notice').map((q) => q.rcpt).sort()).toEqual([...MEMBERS, 'dave@example.test'].sort());
  }, 180_000);

  it('status: last sync, members with and without keys, invitations, and drift (stale, unsafe, differs)', async () => {
    // Bob registers a key (as the subscription confirmation would).
    const bob = await person('bob@example.test');
    const sql = await openData(data, SECRET);
    await registerMember(sql, (await getList(sql, LIST))!.id, bob.address, bob.publicArmored);
    await sql.close();
    // Mailman changes behind Letterlock's back: a policy setting and an archiver turned on again.
    await core.rest().patchConfig(mailmanId, { default_nonmember_action: 'reject' });
    await core.rest().patchArchivers(mailmanId, { prototype: true });

    const st = cli('mailman', 'status', '--json');
    expect(st.code, st.err).toBe(0);
    const [row] = JSON.parse(st.out) as Array<Record<string, unknown> & { drift: Array<{ kind: string; setting: string; mailman: string; letterlock: string }> }>;
    expect(row).toMatchObject({ list: LIST, mailmanListId: mailmanId, members: 4, withKey: 1, withoutKey: 3, invited: 4, owners: 1, nonmembers: 1, lastError: null, reachError: null });
    expect(Date.now() - Date.parse(String(row!.syncedAt))).toBeLessThan(10 * 60_000);
    const drift = Object.fromEntries(row!.drift.map((d) => [d.setting, d]));
    expect(drift['archivers.prototype']).toMatchObject({ kind: 'unsafe', mailman: 'enabled' });
    expect(drift.default_nonmember_action).toMatchObject({ kind: 'stale', mailman: 'reject' });
    expect(drift.max_message_size).toMatchObject({ kind: 'differs' }); // Mailman's 40 KB default vs Letterlock's own limit
    expect(drift.owner).toBeUndefined();

    const human = cli('mailman', 'status', LIST);
    expect(human.code, human.err).toBe(0);
    expect(human.out).toMatch(/LIST\s+MAILMAN LIST\s+LAST SYNC\s+MEMBERS\s+WITH KEY\s+WITHOUT KEY\s+INVITED\s+DRIFT/);
    expect(human.out).toMatch(new RegExp(`${LIST}\\s+${mailmanId.replace(/\./g, '\\.')}\\s+\\d+[sm] ago\\s+4\\s+1\\s+3\\s+4`));
    expect(human.out).toMatch(/unsafe\s+archivers\.prototype\s+enabled/);
    expect(human.out).toMatch(/--fix/);

    // Fixed again, status no longer reports it unsafe.
    await fixSafety(core.rest(), mailmanId);
    const after = JSON.parse(cli('mailman', 'status', '--json').out) as Array<{ drift: Array<{ kind: string }> }>;
    expect(after[0]!.drift.filter((d) => d.kind === 'unsafe')).toEqual([]);
  }, 180_000);

  it('status with the Core unreachable: stored counts still shown, drift unknown, exit 3', () => {
    const cfgFile = join(data, 'letterlock.json');
    const saved = readFileSync(cfgFile, 'utf8');
    const cfg = JSON.parse(saved) as { mailman: { url: string } };
    cfg.mailman.url = 'http://127.0.0.1:9'; // discard port: refused
    writeFileSync(cfgFile, JSON.stringify(cfg));
    try {
      const st = cli('mailman', 'status', '--json');
      expect(st.code).toBe(3);
      const [row] = JSON.parse(st.out) as Array<Record<string, unknown>>;
      expect(row).toMatchObject({ members: 4, withKey: 1, drift: null, reachError: 'MAILMAN_UNREACHABLE' });
      expect(st.err).toMatch(/Mailman could not be reached/);
      const imp = cli('mailman', 'import', LIST);
      expect(imp.code).toBe(3);
      expect(imp.err).toMatch(/not reachable/);
    } finally {
      writeFileSync(cfgFile, saved);
    }
  }, 120_000);

  it('the running server sends the invitations: one to each member, none to owners or nonmembers', async () => {
    let server: Child | null = null;
    try {
      server = await spawnServer(data);
      const want = [...MEMBERS, 'dave@example.test'];
      await sink.waitFor(() => want.every((a) => sink.to(a).length > 0), 60_000, 'the invitations');
      for (const a of want) {
        const mails = sink.to(a).map((m) => m.raw.toString('utf8'));
        expect(mails.filter((m) => /is now encrypted: register your OpenPGP key/.test(m)).length, a).toBe(1);
      }
      expect(sink.to('owner@example.test').length).toBe(0);
      expect(sink.to('outsider@example.test').length).toBe(0);
    } finally {
      if (server) await stopChild(server);
    }
  }, 120_000);

  it('list create --mailman applies the same rule: refused while unsafe, bound with --fix', async () => {
    const id = await core.createList('created@lists.example.test');
    const refused = cli('list', 'create', 'created@lists.example.test', '--mailman', id);
    expect(refused.code, refused.err).toBe(1);
    expect(refused.err).toMatch(/archive_policy is public \(want never\)/);
    const sql = await openData(data, SECRET);
    expect(await getList(sql, 'created@lists.example.test')).toBeNull();
    await sql.close();
    const ok = cli('list', 'create', 'created@lists.example.test', '--mailman', id, '--fix');
    expect(ok.code, ok.err).toBe(0);
    expect(await checkSafety(core.rest(), id)).toEqual([]);
  }, 120_000);

  it('importing onto an existing standalone Letterlock list keeps its key holders: they become Mailman members', async () => {
    const address = 'standalone@lists.example.test';
    const eve = await person('eve@example.test');
    const sql = await openData(data, SECRET);
    try {
      const { createList } = await import('../../../server/lists/lists.ts');
      const l = await createList(sql, SECRET, address, { maxBytes: 1024 * 1024 });
      await registerMember(sql, l.id, eve.address, eve.publicArmored);
    } finally {
      await sql.close();
    }
    const id = await core.createList(address);
    await core.rest().subscribe({ listId: id, address: 'alice@example.test', preVerified: true, preConfirmed: true, preApproved: true });
    const r = cli('mailman', 'import', address, '--fix', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ created: false, subscribedInMailman: 1, members: 2, withKey: 1, invited: 1 });
    expect(await core.rest().findMember(id, eve.address)).not.toBeNull();
  }, 120_000);
});
