// The pure and store parts of replay protection and of the backscatter rules:
// reading the signed To/Cc (bounded, linear), the window, digests and their
// purge, who may get a bounce, and the hourly limits.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { addressesIn, buildInnerMessage, MAX_PROTECTED_HEADER_BYTES, protectedRecipientsOf, utf8, type Verification } from '../../../shared/index.ts';
import { isAutomatic } from '../../../shared/mime/automatic.ts';
import { BOUNCE_LIMITS, bounceBarrier, isListAddress, queueBounce } from '../../../server/pipeline/backscatter.ts';
import { judgeFreshness } from '../../../server/pipeline/replay.ts';
import { silentLog } from '../../../server/log/log.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { getListById, insertList, type ListRecord } from '../../../server/store/lists.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { countSignatures, purgeSignatures, recordSignature, signatureSeen } from '../../../server/store/replay.ts';
import { rawDb } from '../../support/raw-db.ts';
import { onPostgres, openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DAY = 86_400_000;

async function setup() {
  const sql = await openTestSql(join(dir, `${Math.random()}.db`));
  const add = (address: string) => insertList(sql, { address, owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });
  const news = (await getListById(sql, await add('news@lists.test')))!;
  await add('other@lists.test');
  return { sql, news, queue: new QueueStore(sql) };
}

describe('signed (protected) recipients', () => {
  it('reads To and Cc of the inner entity our composer makes', () => {
    const inner = buildInnerMessage({ subject: 's', from: { address: 'a@x.test' }, to: [{ address: 'News@Lists.test', name: 'News, the list' }, { address: 'b@x.test' }], text: 'hi' });
    expect(protectedRecipientsOf(inner.bytes)).toEqual(['news@lists.test', 'b@x.test']);
    const withCc = utf8('Content-Type: text/plain\r\nTo: a@x.test\r\nCc: "x@y, z" <news@lists.test>,\r\n (c) c@x.test\r\n\r\nbody');
    expect(protectedRecipientsOf(withCc)).toEqual(['a@x.test', 'news@lists.test', 'c@x.test']);
  });

  it('is null for bare text, headers without To/Cc, or no Content-Type', () => {
    expect(protectedRecipientsOf(utf8('Hello: this is text\nand more text\n\nTo: news@lists.test\n'))).toBeNull();
    expect(protectedRecipientsOf(utf8('just words'))).toBeNull();
    expect(protectedRecipientsOf(utf8('Content-Type: text/plain\r\n\r\nTo: news@lists.test'))).toBeNull();
    expect(protectedRecipientsOf(utf8('To: news@lists.test\r\n\r\nbody'))).toBeNull();
    expect(protectedRecipientsOf(utf8('Content-Type: text/plain\r\nTo: undisclosed-recipients:;\r\n\r\nbody'))).toBeNull();
  });

  it('reads only the first 64 KB, quickly, whatever the content', () => {
    const huge = utf8(`Content-Type: text/plain\r\nTo: a@x.test\r\nX-Long: ${'<"('.repeat(2_000_000)}\r\n\r\n`);
    const t = Date.now();
    expect(protectedRecipientsOf(huge)).toEqual(['a@x.test']);
    // Folded over many lines past the bound: what was read counts, at most 1,000 addresses.
    const many = utf8(`Content-Type: text/plain\r\nTo: ${Array.from({ length: 20_000 }, (_, i) => `u${i}@x.test`).join(',\r\n ')}\r\n\r\n`);
    const read = protectedRecipientsOf(many)!;
    expect(read.length).toBe(1000);
    expect(read[0]).toBe('u0@x.test');
    expect(MAX_PROTECTED_HEADER_BYTES).toBe(65_536);
    expect(Date.now() - t).toBeLessThan(1000);
  });

  it('parses address lists: groups, quotes, comments, angle addresses', () => {
    expect(addressesIn(' Team: a@x.test, "B, b@evil" <b@x.test>;, undisclosed-recipients:;')).toEqual(['a@x.test', 'b@x.test']);
    expect(addressesIn('c@x.test (comment, with a@evil.test)')).toEqual(['c@x.test']);
    expect(addressesIn('')).toEqual([]);
  });
});

describe('the window and the signed recipients (pure)', () => {
  const list = { replayWindowDays: 7, address: 'news@lists.test' } as ListRecord;
  const now = Date.parse('2026-12-02T12:00:00Z');
  const signed = (at: number | null): Verification => ({ valid: true, signerFingerprint: 'F', signerKeyId: 'K', signedAt: at === null ? null : new Date(at) });
  const facts = (at: number | null, to: string[] | null = ['news@lists.test']) => ({ list, verification: signed(at), signatureDigest: 'd', protectedRecipients: to });

  it('accepts a fresh post to this list', () => {
    expect(judgeFreshness(facts(now - DAY), now)).toBeNull();
    expect(judgeFreshness(facts(now + 10 * 60_000), now)).toBeNull(); // within the clock skew
  });
  it('refuses old, undated and future signatures, and other lists', () => {
    expect(judgeFreshness(facts(now - 8 * DAY), now)).toBe('SIGNATURE_TOO_OLD');
    expect(judgeFreshness(facts(null), now)).toBe('SIGNATURE_TOO_OLD');
    expect(judgeFreshness(facts(now + 60 * 60_000), now)).toBe('SIGNATURE_FROM_FUTURE');
    expect(judgeFreshness(facts(now, ['other@lists.test']), now)).toBe('WRONG_LIST');
    expect(judgeFreshness(facts(now, []), now)).toBe('WRONG_LIST');
  });
  it('bare text (no signed headers) is judged by the window only; unsigned posts not at all', () => {
    expect(judgeFreshness(facts(now, null), now)).toBeNull();
    expect(judgeFreshness({ list, verification: { valid: false, code: 'UNSIGNED', reason: '', signerKeyId: null }, signatureDigest: null, protectedRecipients: ['x@y'] }, now)).toBeNull();
  });
  it('a held post is judged as of when it was held', () => {
    const heldAt = now - 10 * DAY;
    expect(judgeFreshness(facts(heldAt - DAY), heldAt)).toBeNull();
    expect(judgeFreshness(facts(heldAt - DAY), now)).toBe('SIGNATURE_TOO_OLD');
  });
});

describe('signature digests (store)', () => {
  it('records once per list and purges past the window, but not while an older post is held', async () => {
    const { sql, news } = await setup();
    const now = Date.now();
    expect(await recordSignature(sql, news.id, 'aa', now - 8 * DAY, null, now)).toBe(true);
    expect(await recordSignature(sql, news.id, 'aa', now, null, now)).toBe(false);
    expect(await recordSignature(sql, news.id + 1, 'aa', now, null, now)).toBe(true); // per list
    expect(await recordSignature(sql, news.id, 'bb', now - DAY, null, now)).toBe(true);
    await sql.run(`INSERT INTO held (list_id, payload, payload_armored, "outer", size, reason, received_at) VALUES (?, ?, 0, '{}', 1, 'moderated', ?)`, [news.id, Buffer.from([0]), now - 9 * DAY]);
    expect(await purgeSignatures(sql, news.id, 7 * DAY, now)).toBe(0);
    await sql.run('DELETE FROM held');
    expect(await purgeSignatures(sql, news.id, 7 * DAY, now)).toBe(1);
    expect(await signatureSeen(sql, news.id, 'aa')).toBe(false);
    expect(await signatureSeen(sql, news.id, 'bb')).toBe(true);
    expect(await countSignatures(sql, news.id)).toBe(1);
  });

  // A SQLite migration step (PostgreSQL's schema has had the column from its first step).
  it.skipIf(onPostgres)('an existing data folder gets the replay window column with its default', async () => {
    const { sql, news } = await setup();
    expect(news.replayWindowDays).toBe(7);
    rawDb(sql).exec('ALTER TABLE lists DROP COLUMN replay_window_days');
    const path = rawDb(sql).name;
    await sql.close();
    const again = openSqlite(path);
    expect((await getListById(again, news.id))!.replayWindowDays).toBe(7);
    again.close();
  });
});

describe('backscatter rules', () => {
  it('knows automatic senders and list addresses', async () => {
    const { sql } = await setup();
    for (const a of ['MAILER-DAEMON@x.test', 'postmaster@x.test', 'PostMaster+x@x.test', 'owner-foo@x.test', 'foo-request@x.test']) expect(await bounceBarrier(sql, a, false), a).toBe('AUTOMATIC_SENDER');
    for (const a of ['news@lists.test', 'other+bounces-1-00@lists.test', 'news-owner@lists.test', 'NEWS@LISTS.TEST']) expect(await bounceBarrier(sql, a, false), a).not.toBeNull();
    expect(await isListAddress(sql, 'news@lists.test')).toBe(true);
    expect(await isListAddress(sql, 'newsletter@lists.test')).toBe(false);
    expect(await isListAddress(sql, 'news@other.test')).toBe(false);
    expect(await bounceBarrier(sql, null, false)).toBe('NULL_SENDER');
    expect(await bounceBarrier(sql, 'ann@x.test', true)).toBe('AUTO_SUBMITTED');
    expect(await bounceBarrier(sql, 'ann@x.test', false)).toBeNull();
  });

  it('reads Auto-Submitted and Precedence', () => {
    const h = (key: string, value: string) => [{ key, value }];
    expect(isAutomatic(h('auto-submitted', 'auto-replied; owner-email="x@y"'))).toBe(true);
    expect(isAutomatic(h('auto-submitted', 'No'))).toBe(false);
    expect(isAutomatic(h('precedence', 'BULK'))).toBe(true);
    expect(isAutomatic(h('precedence', 'list'))).toBe(true);
    expect(isAutomatic(h('precedence', 'first-class'))).toBe(false);
    expect(isAutomatic([])).toBe(false);
  });

  it('limits bounces per recipient and per list, counted in the database', async () => {
    const { sql, news, queue } = await setup();
    const d = { sql, queue, log: silentLog };
    const now = Date.now();
    let sent = 0;
    for (let i = 0; i < 8; i++) if (await queueBounce(d, news, 'ann@x.test', false, () => 'mail', now)) sent++;
    expect(sent).toBe(BOUNCE_LIMITS.perRecipient);
    for (let i = 0; i < 150; i++) if (await queueBounce(d, news, `p${i}@x.test`, false, () => 'mail', now)) sent++;
    expect(sent).toBe(BOUNCE_LIMITS.perList);
    // An hour later the counts start again.
    expect(await queueBounce(d, news, 'ann@x.test', false, () => 'mail', now + BOUNCE_LIMITS.windowMs + 1)).toBe(true);
    expect(((await sql.get("SELECT count(*) AS n FROM deliveries WHERE kind = 'bounce'")) as { n: number }).n).toBe(BOUNCE_LIMITS.perList + 1);
  });
});
