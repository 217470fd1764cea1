// `letterlock mailman import LIST`: moving an existing Mailman list onto Letterlock.
// The Mailman list is checked (server/mailman/safety.ts: refused, or fixed) before
// anything is made; then the Letterlock list is created bound to it (list and archive
// keys), its roster read (server/mailman/sync.ts), and every regular member without a
// registered key gets one invitation saying how to register one.
//
// Nothing is lost: each invitation is a row of the durable delivery queue (a running
// server sends it), written in the same transaction as the record that it was sent,
// page by page. An import that stops half way (Ctrl-C, a crash, the Core going down)
// is run again and carries on: the list is already there and bound, only members not
// yet invited are invited. Members who never register a key are not dropped: Mailman
// keeps them, and the fan-out sends them the short key notice instead of posts.

import { serviceMail } from '../delivery/notices.ts';
import type { EventLog } from '../log/log.ts';
import { createList, normalizeListAddress } from '../lists/lists.ts';
import type { Sql } from '../store/db.ts';
import { getList, getListById, updatePolicy, type ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import { resolveMailmanList } from './bind.ts';
import type { MailmanRest } from './rest.ts';
import { ensureSafe, type SafetyIssue } from './safety.ts';
import { addressesWithRole, invitationCounts, memberKeyCounts, queueOutbox, recordInvitation, setBinding, uninvited } from '../store/mailman.ts';
import { memberAddresses } from '../store/members.ts';
import { MailmanService, type MailmanSettings } from './sync.ts';

// Invitations (an address and a time; nothing else) are in mailman_invitations,
// made by migration step 8 (server/store/migrations.ts).

/** Invitations written per transaction: a crash loses none, a page commits at once. */
const PAGE = 500;

export class ImportError extends Error {
  override name = 'ImportError';
}

export interface ImportOptions {
  sql: Sql;
  secret: string;
  rest: MailmanRest;
  queue: QueueStore;
  log: EventLog;
  /** The Mailman list: its id (news.lists.example.org) or posting address. */
  target: string;
  /** Correct unsafe Mailman settings instead of refusing. */
  fix: boolean;
  /** Where members register keys (the HTTP API as members reach it). */
  publicUrl: string;
  /** New list's size limit. */
  maxBytes: number;
  settings?: Partial<MailmanSettings>;
  /** Called after each page of invitations with (invited so far, to invite in all). */
  onProgress?(done: number, total: number): void;
  now?(): number;
}

export interface ImportResult {
  list: string;
  mailmanListId: string;
  /** false: the list was there already (a second run, or a standalone list now bound). */
  created: boolean;
  fixed: SafetyIssue[];
  members: number;
  withKey: number;
  /** Invitations queued by this run. */
  invited: number;
  /** Members without a key invited by an earlier run. */
  invitedBefore: number;
  /**
   * A standalone Letterlock list bound now: its key holders Mailman did not list, queued
   * to be subscribed there (mailman_outbox), so binding drops none of them.
   */
  subscribedInMailman: number;
}

export function invitationMail(list: ListRecord, to: string, publicUrl: string): string {
  const base = publicUrl.replace(/\/+$/, '');
  return serviceMail(list.address, to, `${list.address} is now encrypted: register your OpenPGP key`, [
    `You are a member of ${list.address}. From now on its posts are end-to-end encrypted:`,
    'each member gets them encrypted to their own OpenPGP key, and nobody gets them in clear,',
    'the list server included. Your membership stays as it is.',
    '',
    'To keep receiving posts, register your public key once:',
    `- with the Letterlock browser extension: add the list ${list.address} and subscribe with your key;`,
    `- or with any OpenPGP client: POST your public key to ${base}/v1/lists/${encodeURIComponent(list.address)}/subscriptions`,
    '  ({"address": "...", "publicKey": "..."}) and confirm with the encrypted mail you then receive.',
    '',
    `The list's key (write to the list encrypted to it): ${base}/v1/lists/${encodeURIComponent(list.address)}`,
    `Its fingerprint: ${list.listFingerprint.toUpperCase()}`,
    '',
    'Until you register a key you get a short notice instead of each post, never the post.',
  ]);
}

export { invitationCounts } from '../store/mailman.ts';

export async function importMailmanList(o: ImportOptions): Promise<ImportResult> {
  const { sql, rest, log } = o;
  const now = () => o.now?.() ?? Date.now();
  // The Mailman list decides the address: a bound list keeps its posting address.
  const target = o.target.trim().toLowerCase();
  if (!/^[a-z0-9][a-z0-9._+@-]{0,318}$/.test(target)) throw new ImportError(`"${o.target.slice(0, 100)}" is not a Mailman list id (news.example.org) or list address (news@example.org)`);
  const ml = await rest.getList(target).catch((e: unknown) => {
    throw (e as { code?: string }).code === 'NOT_FOUND' ? new ImportError(`Mailman has no list ${o.target.slice(0, 200)}`) : e;
  });
  const address = normalizeListAddress(ml.fqdn_listname);
  await resolveMailmanList(rest, address, ml.list_id);

  // Refused before anything is made here; fixed in Mailman first with --fix.
  const fixed = await ensureSafe(rest, ml.list_id, o.fix);
  if (fixed.length) log.info('mailman.settings_fixed', { list: address, count: fixed.length });

  let list = await getList(sql, address);
  let created = false;
  if (list?.mailmanListId && list.mailmanListId !== ml.list_id) {
    throw new ImportError(`${address} is bound to Mailman list ${list.mailmanListId}, not ${ml.list_id}`);
  }
  if (!list) {
    list = await createList(sql, o.secret, address, { owner: null, maxBytes: o.maxBytes });
    created = true;
  }
  let subscribedInMailman = 0;
  if (!list.mailmanListId) {
    const l = list;
    await sql.tx(async () => {
      await setBinding(sql, l.id, ml.list_id);
      // From now on Mailman decides who gets posts: the list's key holders become Mailman
      // members (the sync below sends them first; a running server sends any rest).
      if (!created) {
        const holders = await memberAddresses(sql, l.id);
        for (const a of holders) await queueOutbox(sql, l.id, a, 'subscribe', now());
        subscribedInMailman = holders.length;
      }
    });
  }
  list = (await getListById(sql, list.id))!;

  const service = new MailmanService({ sql, queue: o.queue, log, rest, publicUrl: () => o.publicUrl, ...(o.settings ? { settings: o.settings } : {}) });
  await service.sync(list);
  // A new list's owner (failure reports) is Mailman's first owner.
  if (!list.owner) {
    const owner = (await addressesWithRole(sql, list.id, ['owner'], 1))[0];
    if (owner) await updatePolicy(sql, list.id, { owner });
    list = (await getListById(sql, list.id))!;
  }

  const before = await invitationCounts(sql, list.id);
  const total = before.uninvited;
  let invited = 0;
  let after = '';
  o.onProgress?.(0, total);
  // Bounded by the roster, which sync bounds (mailman.maxRoster).
  for (;;) {
    const l = list;
    // Read and recorded in one transaction: two imports at once do not both invite a member.
    const page = await sql.tx(async () => {
      const todo = await uninvited(sql, l.id, after, PAGE);
      for (const a of todo) {
        await o.queue.add({ listId: l.id, postId: null, kind: 'notice', rcpt: a, mail: invitationMail(l, a, o.publicUrl) });
        await recordInvitation(sql, l.id, a, now());
      }
      return todo;
    });
    if (page.length === 0) break;
    invited += page.length;
    after = page[page.length - 1]!;
    o.onProgress?.(invited, Math.max(total, invited));
    // Let a progress bar draw and signals land between pages.
    await new Promise((r) => setImmediate(r));
  }
  const counts = await memberKeyCounts(sql, list.id);
  log.info('mailman.imported', { list: address, count: counts.members });
  if (invited) log.info('mailman.invited', { list: address, count: invited });
  return { list: address, mailmanListId: ml.list_id, created, fixed, members: counts.members, withKey: counts.withKey, invited, invitedBefore: before.invited, subscribedInMailman };
}
