// The REST client against a real Mailman 3 Core: lists, settings, members with
// the pre_* flags, paged rosters, /members/find filters, and the errors a list
// server must tell apart (wrong credentials, Core not reachable, not found).

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { letterlockAsync, oneLine } from '../../cli/run.ts';
import { tempDir } from '../server/harness.ts';
import { MailmanError, MailmanRest, isUnreachable } from '../../../server/mailman/rest.ts';
import { freePorts } from '../../stack/procs.ts';
import { MailmanCore } from '../../support/mailman.ts';

let core: MailmanCore;
let listId: string;

beforeAll(async () => {
  core = await MailmanCore.start({ restOnly: true });
  listId = await core.createList('rest@lists.example.test');
}, 180_000);

afterAll(async () => {
  await core?.stop();
}, 120_000);

describe('Mailman REST client', () => {
  it('reads the list and its settings', async () => {
    const rest = core.rest();
    expect(listId).toBe('rest.lists.example.test');
    expect((await rest.getList('rest@lists.example.test')).list_id).toBe(listId);
    await rest.patchConfig(listId, { default_nonmember_action: 'reject', subscription_policy: 'moderate' });
    const cfg = await rest.listConfig(listId);
    expect(cfg.default_nonmember_action).toBe('reject');
    expect(cfg.subscription_policy).toBe('moderate');
    expect(cfg.fqdn_listname).toBe('rest@lists.example.test');
  });

  it('subscribes with the pre_* flags, pages rosters, filters by delivery status, unsubscribes', async () => {
    const rest = core.rest();
    for (const a of ['a1', 'a2', 'a3', 'a4', 'a5']) {
      const r = await rest.subscribe({ listId, address: `${a}@example.test`, preVerified: true, preConfirmed: true, preApproved: true });
      expect(r.status).toBe('member');
    }
    expect((await rest.subscribe({ listId, address: 'a1@example.test', preVerified: true, preConfirmed: true, preApproved: true })).status).toBe('exists');
    // Not pre-approved on a moderated list: Mailman holds it for a moderator.
    expect((await rest.subscribe({ listId, address: 'wait@example.test', preVerified: true, preConfirmed: true, preApproved: false })).status).toBe('pending');
    await rest.subscribe({ listId, address: 'mod@example.test', role: 'moderator' });
    await rest.subscribe({ listId, address: 'nm@example.test', role: 'nonmember' });

    // Two per page: three pages for five members.
    const small = new MailmanRest({ url: core.url, user: core.user, pass: core.pass }, { pageSize: 2 });
    const members = await small.roster(listId, 'member');
    expect(members.map((m) => m.email).sort()).toEqual(['a1@example.test', 'a2@example.test', 'a3@example.test', 'a4@example.test', 'a5@example.test']);
    expect((await small.roster(listId, 'moderator')).map((m) => m.email)).toEqual(['mod@example.test']);
    expect((await small.findMembers({ list_id: listId, role: 'nonmember' })).map((m) => m.email)).toEqual(['nm@example.test']);

    // The page bound: more members than pageSize * maxPages is an error, not an endless read.
    const bounded = new MailmanRest({ url: core.url, user: core.user, pass: core.pass }, { pageSize: 2, maxPages: 2 });
    await expect(bounded.roster(listId, 'member')).rejects.toMatchObject({ code: 'TOO_LARGE' });

    const a2 = await rest.findMember(listId, 'a2@example.test');
    await rest.setDeliveryStatus(a2!.member_id!, 'by_user');
    await rest.setModeration(a2!.member_id!, 'hold');
    const enabled = await rest.findMembers({ list_id: listId, role: 'member', delivery_status: 'enabled' });
    expect(enabled.map((m) => m.email)).not.toContain('a2@example.test');
    expect(enabled).toHaveLength(4);
    expect((await rest.findMember(listId, 'a2@example.test'))?.moderation_action).toBe('hold');

    expect(await rest.unsubscribe(listId, 'a3@example.test')).toBe(true);
    expect(await rest.unsubscribe(listId, 'a3@example.test')).toBe(false);
    expect((await rest.roster(listId, 'member')).map((m) => m.email)).not.toContain('a3@example.test');
  });

  it('tells wrong credentials, a missing list and an unreachable Core apart', async () => {
    const wrong = new MailmanRest({ url: core.url, user: core.user, pass: 'nope' });
    const e1 = await wrong.versions().catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(MailmanError);
    expect((e1 as MailmanError).status).toBe(401);
    expect(isUnreachable(e1)).toBe(false);

    await expect(core.rest().getList('nope.lists.example.test')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const [closed] = await freePorts(1);
    const down = new MailmanRest({ url: `http://127.0.0.1:${closed}`, user: 'u', pass: 'p' }, { timeoutMs: 2000 });
    const e2 = await down.versions().catch((e: unknown) => e);
    expect((e2 as MailmanError).code).toBe('UNREACHABLE');
    expect(isUnreachable(e2)).toBe(true);
  });
});

describe('letterlock list create --mailman', () => {
  it('binds to the Mailman list named by id or address; refuses another address, an unknown list, unsafe settings without --fix, or no mailman section', async () => {
    const data = tempDir('mm-cli');
    try {
      expect((await letterlockAsync(['init', '--data', data, '--smtp-port', '0', '--http-port', '0'])).status).toBe(0);
      // No "mailman" section yet: a usage error that says what to add.
      const none = await letterlockAsync(['list', 'create', 'rest@lists.example.test', '--mailman', listId, '--data', data]);
      expect(none.status).toBe(2);
      expect(oneLine(none)).toMatch(/needs a "mailman" section/);

      const cfgPath = join(data, 'letterlock.json');
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
      writeFileSync(join(data, 'mailman.json'), JSON.stringify({ user: core.user, pass: core.pass }), { mode: 0o600 });
      writeFileSync(cfgPath, JSON.stringify({ ...cfg, mailman: { url: core.url, credentialsFile: 'mailman.json' } }), { mode: 0o600 });

      const other = await letterlockAsync(['list', 'create', 'other@lists.example.test', '--mailman', listId, '--data', data]);
      expect(other.status).toBe(1);
      expect(oneLine(other)).toMatch(/posts to rest@lists\.example\.test, not to other@lists\.example\.test/);
      const unknown = await letterlockAsync(['list', 'create', 'nope@lists.example.test', '--mailman', 'nope@lists.example.test', '--data', data]);
      expect(unknown.status).toBe(1);
      expect(oneLine(unknown)).toMatch(/Mailman has no list nope@lists\.example\.test/);

      // A fresh Mailman list archives and digests: binding refuses until those are off (or --fix turns them off).
      const unsafe = await letterlockAsync(['list', 'create', 'rest@lists.example.test', '--mailman', 'rest@lists.example.test', '--data', data]);
      expect(unsafe.status).toBe(1);
      expect(oneLine(unsafe)).toMatch(/would keep copies of posts outside Letterlock: .*--fix/);
      const ok = await letterlockAsync(['list', 'create', 'rest@lists.example.test', '--mailman', 'rest@lists.example.test', '--fix', '--json', '--data', data]);
      expect(ok.status, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ address: 'rest@lists.example.test', mailman: listId });
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  }, 300_000);
});
