// Mailman's moderation as a bound list applies it (server/mailman/policy.ts): the
// facts read from the stored roster and settings, and the decision folded into
// decide(). Standalone lists are covered by decide.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../../server/pipeline/decide.ts';
import { policyFacts } from '../../../server/mailman/policy.ts';
import { deliverableAmong, isReader, replaceRoster, type RosterEntry } from '../../../server/store/mailman.ts';
import { openSqlite, type Sql } from '../../../server/store/db.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { MailmanService } from '../../../server/mailman/sync.ts';
import type { MailmanRest } from '../../../server/mailman/rest.ts';
import { insertList, type ListRecord } from '../../../server/store/lists.ts';
import type { MemberRecord } from '../../../server/store/members.ts';
import type { Verification } from '../../../shared/index.ts';
import { openTestSql } from '../../support/test-store.ts';

let dir: string;
let sql: Sql;
let listId: number;

const settings = (over: Partial<Parameters<typeof replaceRoster>[3]> = {}): Parameters<typeof replaceRoster>[3] => ({
  defaultMemberAction: 'defer', defaultNonmemberAction: 'hold', subscriptionPolicy: 'confirm', emergency: false,
  nonmemberLists: { accept: [], hold: [], reject: [], discard: [] }, ...over,
});
const roster: RosterEntry[] = [
  { address: 'Ann@x.test', role: 'member', deliveryEnabled: true, moderationAction: null },
  { address: 'ben@x.test', role: 'member', deliveryEnabled: false, moderationAction: 'hold' },
  { address: 'cat@x.test', role: 'member', deliveryEnabled: true, moderationAction: 'discard' },
  { address: 'mod@x.test', role: 'moderator', deliveryEnabled: true, moderationAction: null },
  { address: 'nm@x.test', role: 'nonmember', deliveryEnabled: false, moderationAction: 'accept' },
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'letterlock-mm-policy-'));
  sql = await openTestSql(join(dir, 'db.sqlite'));
  listId = await insertList(sql, {
    address: 'l@x.test', owner: null, listFingerprint: 'F', listPublic: '', listPrivate: '', archiveFingerprint: 'A', archivePublic: '',
    archivePrivate: '', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000,
  });
});
afterAll(() => {
  sql?.close();
  rmSync(dir, { recursive: true, force: true });
});

const list = (): ListRecord => ({
  id: listId, address: 'l@x.test', owner: null, listFingerprint: '', listPublic: '', listPrivate: '', archiveFingerprint: '', archivePublic: '',
  archivePrivate: '', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000, replayWindowDays: 7, hideSubjects: false, replyTo: 'list', mailmanListId: 'l.x.test',
});
const member = (address: string): MemberRecord => ({ listId, address, fingerprint: 'F', publicKey: '', encryptionKey: new Uint8Array(), expiresAt: null, keyState: 'valid' });
const good: Verification = { valid: true, signerFingerprint: 'F', signerKeyId: 'K', signedAt: null };
const outer = { from: null, messageId: null, inReplyTo: null, references: [], date: null, autoSubmitted: false };

async function decideFor(address: string, key: boolean, approved = false) {
  const facts = await policyFacts(sql, listId, address);
  return decide({ list: list(), member: key ? member(address) : null, verification: key ? good : null, outer }, { approved, mailman: facts });
}

describe('Mailman policy for a bound list', () => {
  it('members: default action (defer: accepted), their own moderation action, and a key is still required', async () => {
    await replaceRoster(sql, listId, roster, settings(), Date.now());
    expect(await decideFor('ann@x.test', true)).toEqual({ action: 'accept' });
    expect(await decideFor('ann@x.test', false)).toEqual({ action: 'refuse', code: 'NO_REGISTERED_KEY' });
    expect(await decideFor('ben@x.test', true)).toEqual({ action: 'hold', reason: 'moderated' });
    expect(await decideFor('ben@x.test', true, true)).toEqual({ action: 'accept' });
    expect(await decideFor('cat@x.test', true)).toEqual({ action: 'discard' });
    await replaceRoster(sql, listId, roster, settings({ defaultMemberAction: 'reject' }), Date.now());
    expect(await decideFor('ann@x.test', true)).toEqual({ action: 'refuse', code: 'REJECTED_BY_POLICY' });
  });

  it('nonmembers: the default action, their own action, and the *_these_nonmembers lists (addresses and ^patterns)', async () => {
    await replaceRoster(sql, listId, roster, settings({ defaultNonmemberAction: 'hold' }), Date.now());
    expect(await decideFor('stranger@y.test', false)).toEqual({ action: 'hold', reason: 'moderated' });
    // Approved, but nobody's key can check the signature: refused, never delivered unverified.
    expect(await decideFor('stranger@y.test', false, true)).toEqual({ action: 'refuse', code: 'NOT_MEMBER' });
    expect(await decideFor('nm@x.test', true)).toEqual({ action: 'accept' });
    // A moderator is not a member: nonmember rules apply, as in Mailman.
    expect(await decideFor('mod@x.test', true)).toEqual({ action: 'hold', reason: 'moderated' });
    await replaceRoster(sql, listId, roster, settings({ defaultNonmemberAction: 'reject', nonmemberLists: { accept: ['^.*@friends\\.test$'], hold: [], reject: [], discard: ['spam@y.test'] } }), Date.now());
    expect(await decideFor('stranger@y.test', false)).toEqual({ action: 'refuse', code: 'NOT_MEMBER' });
    expect(await decideFor('spam@y.test', false)).toEqual({ action: 'discard' });
    expect(await decideFor('pal@friends.test', true)).toEqual({ action: 'accept' });
    // The nonmember's own action comes before the lists, as in Mailman's nonmember-moderation rule.
    await replaceRoster(sql, listId, roster, settings({ nonmemberLists: { accept: [], hold: [], reject: [], discard: ['nm@x.test'] } }), Date.now());
    expect(await decideFor('nm@x.test', true)).toEqual({ action: 'accept' });
    // A pattern JavaScript cannot read is skipped, not thrown.
    await replaceRoster(sql, listId, roster, settings({ nonmemberLists: { accept: ['^(unclosed'], hold: [], reject: [], discard: [] } }), Date.now());
    expect(await decideFor('x@y.test', false)).toEqual({ action: 'hold', reason: 'moderated' });
  });

  it('emergency holds every post, even an accepted member; a bad signature is refused whatever the policy', async () => {
    await replaceRoster(sql, listId, roster, settings({ emergency: true }), Date.now());
    expect(await decideFor('ann@x.test', true)).toEqual({ action: 'hold', reason: 'moderated' });
    expect(await decideFor('cat@x.test', true)).toEqual({ action: 'hold', reason: 'moderated' }); // even a discard
    const facts = await policyFacts(sql, listId, 'ann@x.test');
    const badSig: Verification = { valid: false, code: 'BAD_SIGNATURE', reason: '', signerKeyId: null };
    expect(decide({ list: list(), member: member('ann@x.test'), verification: badSig, outer }, { mailman: facts })).toEqual({ action: 'refuse', code: 'BAD_SIGNATURE' });
  });

  it('the roster decides who gets copies and who reads the archive; a new roster replaces the old at once', async () => {
    const removed0 = await replaceRoster(sql, listId, roster, settings(), Date.now());
    expect([...(await deliverableAmong(sql, listId, ['ann@x.test', 'ben@x.test', 'cat@x.test', 'mod@x.test', 'nm@x.test', 'zed@x.test']))].sort()).toEqual(['ann@x.test', 'cat@x.test']);
    expect(removed0).toEqual([]);
    expect(await isReader(sql, listId, 'ben@x.test')).toBe(true); // delivery off still reads the archive
    expect(await isReader(sql, listId, 'mod@x.test')).toBe(true);
    expect(await isReader(sql, listId, 'nm@x.test')).toBe(false);
    const removed = await replaceRoster(sql, listId, roster.filter((r) => r.address !== 'ben@x.test' && r.address !== 'mod@x.test'), settings(), Date.now());
    expect(removed.sort()).toEqual(['ben@x.test', 'mod@x.test']);
    expect(await isReader(sql, listId, 'ben@x.test')).toBe(false);
  });
});

describe('key notices for keyless Mailman members', () => {
  it('the first missed post brings a notice at once; more posts that week bring none; a week on, a reminder', async () => {
    await replaceRoster(sql, listId, roster, settings(), Date.now());
    let clock = Date.UTC(2026, 11, 1);
    const queue = new QueueStore(sql);
    const log = createEventLog({ stdout: false });
    const svc = new MailmanService({ sql, queue, log, rest: {} as MailmanRest, publicUrl: () => 'https://lists.x.test', now: () => clock });
    const noticesTo = async (address: string) => ((await sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'notice' AND rcpt = ?", [address])) as { n: number }).n;
    // ann and cat are deliverable members without a key; ben's delivery is off (no notice); roles other than member get none.
    expect(await svc.keyNotices(await list())).toBe(2);
    expect(await Promise.all([noticesTo('ann@x.test'), noticesTo('cat@x.test'), noticesTo('ben@x.test'), noticesTo('mod@x.test')])).toEqual([1, 1, 0, 0]);
    clock += 6 * 86_400_000;
    expect(await svc.keyNotices(await list())).toBe(0);
    clock += 86_400_000 + 1;
    expect(await svc.keyNotices(await list())).toBe(2);
    expect(await noticesTo('ann@x.test')).toBe(2);
    expect(await svc.keyNotices(await list())).toBe(0);
  });
});
