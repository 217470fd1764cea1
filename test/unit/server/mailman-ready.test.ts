// The staleness bound of a bound list's roster (MailmanService.ready), against a
// Core that hangs: a young-enough roster is used after a short wait (logged), an
// old one or none makes the post wait (RosterUnavailable, SMTP 451), logged too.
// The real Core going down is in test/integration/mailman/bound-list.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventFields, EventLog, EventName } from '../../../server/log/log.ts';
import { MailmanRest } from '../../../server/mailman/rest.ts';
import { replaceRoster, setBinding } from '../../../server/store/mailman.ts';
import { MailmanService, RosterUnavailable } from '../../../server/mailman/sync.ts';
import { openSqlite, type Sql } from '../../../server/store/db.ts';
import { getListById, insertList, type ListRecord } from '../../../server/store/lists.ts';
import { QueueStore } from '../../../server/store/queue.ts';
import { openTestSql } from '../../support/test-store.ts';

let dir: string;
let sql: Sql;
let server: Server;
let list: ListRecord;
const events: Array<{ event: EventName; fields?: EventFields }> = [];
const log: EventLog = {
  info: (event, fields) => events.push({ event, fields }),
  warn: (event, fields) => events.push({ event, fields }),
  error: (event, fields) => events.push({ event, fields }),
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'letterlock-mm-ready-'));
  sql = await openTestSql(join(dir, 'db.sqlite'));
  const id = await insertList(sql, {
    address: 'l@x.test', owner: null, listFingerprint: 'F', listPublic: '', listPrivate: '', archiveFingerprint: 'A', archivePublic: '',
    archivePrivate: '', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000,
  });
  await setBinding(sql, id, 'l.x.test');
  list = (await getListById(sql, id))!;
  // A Core that accepts the connection and never answers.
  server = createServer(() => { /* hangs */ });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await sql.close();
  rmSync(dir, { recursive: true, force: true });
});

function service(): MailmanService {
  const rest = new MailmanRest({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, user: 'u', pass: 'p' }, { timeoutMs: 5000 });
  return new MailmanService({
    sql, queue: new QueueStore(sql), log, rest, publicUrl: () => 'http://x.test',
    settings: { maxRosterAgeSeconds: 600, postSyncMinAgeMs: 0, postSyncWaitMs: 200, syncTimeoutMs: 1500 },
  });
}

const settings: Parameters<typeof replaceRoster>[3] = {
  defaultMemberAction: 'defer', defaultNonmemberAction: 'hold', subscriptionPolicy: 'confirm', emergency: false, nonmemberLists: { accept: [], hold: [], reject: [], discard: [] },
};

describe('MailmanService.ready: the roster staleness bound', () => {
  it('no roster ever read: the post waits (RosterUnavailable) after syncTimeoutMs, logged', async () => {
    const t = Date.now();
    await expect(service().ready(list)).rejects.toBeInstanceOf(RosterUnavailable);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1400);
    expect(events.at(-1)).toMatchObject({ event: 'mailman.post_waits', fields: { code: 'MAILMAN_TIMEOUT' } });
  });

  it('a roster younger than the bound: used after postSyncWaitMs, logged as such', async () => {
    await replaceRoster(sql, list.id, [], settings, Date.now() - 60_000);
    const t = Date.now();
    await service().ready(list);
    expect(Date.now() - t).toBeLessThan(1400);
    expect(events.at(-1)).toMatchObject({ event: 'mailman.stale_roster_used', fields: { code: 'MAILMAN_TIMEOUT' } });
    expect(events.at(-1)!.fields!.ms).toBeGreaterThanOrEqual(60_000);
  });

  it('a roster older than the bound: never used; the post waits', async () => {
    (await sql.run('UPDATE mailman_state SET synced_at = ? WHERE list_id = ?', [Date.now() - 601_000, list.id]));
    const e = await service().ready(list).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RosterUnavailable);
    expect((e as RosterUnavailable).message).toMatch(/^4\.4\.3 .*l@x\.test.*try again later/);
    expect(events.at(-1)).toMatchObject({ event: 'mailman.post_waits' });
  });

  it('a standalone list never waits', async () => {
    await service().ready({ ...list, mailmanListId: null });
  });
});
