// `letterlock mailman status`: each bound list, its last roster sync, its members with
// and without a registered key, and the drift between Mailman's settings and what
// Letterlock holds or does. Stored facts come from the database and are shown even
// when the Core is down; the drift needs the Core and says so when it cannot be read.
//
// Drift kinds:
//   unsafe   a setting binding refuses (server/mailman/safety.ts): fix with --fix or Postorius
//   stale    a setting Letterlock follows changed in Mailman since the last sync (the next
//            sync, within mailman.syncIntervalSeconds, applies it)
//   differs  a setting Letterlock does not take from Mailman and enforces its own way
//            (size limit, Reply-To, the owner who gets failure reports)

import type { Sql } from '../store/db.ts';
import { allLists, type ListRecord } from '../store/lists.ts';
import { invitationCounts } from './import.ts';
import { isUnreachable, MailmanError, type MailmanRest } from './rest.ts';
import { checkSafety } from './safety.ts';
import { countOutbox, getState, rosterCounts } from '../store/mailman.ts';

export interface Drift {
  kind: 'unsafe' | 'stale' | 'differs';
  setting: string;
  mailman: string;
  letterlock: string;
  note: string;
}

export interface ListStatus {
  list: string;
  mailmanListId: string;
  syncedAt: number | null;
  attemptedAt: number | null;
  /** A MailmanError code of the last failed sync, null when the last attempt succeeded. */
  lastError: string | null;
  members: number;
  withKey: number;
  withoutKey: number;
  deliveryDisabled: number;
  owners: number;
  moderators: number;
  nonmembers: number;
  invited: number;
  /** Subscription changes waiting to be sent to the Core. */
  outbox: number;
  /** null: the Core could not be asked (see reachError). */
  drift: Drift[] | null;
  reachError: string | null;
  /** The Core is down or timed out (the CLI exits 3). */
  unreachable: boolean;
}

/** Reply-To: Mailman's reply_goes_to_list vs Letterlock's replyTo. */
const REPLY: Record<string, ListRecord['replyTo'] | null> = { point_to_list: 'list', no_munging: 'author', explicit_header: null };

async function driftOf(rest: MailmanRest, sql: Sql, list: ListRecord): Promise<Drift[]> {
  const id = list.mailmanListId!;
  const [config, unsafe, owners] = await Promise.all([rest.listConfig(id), checkSafety(rest, id), rest.roster(id, 'owner')]);
  const c = config as Record<string, unknown>;
  const out: Drift[] = unsafe.map((u) => ({ kind: 'unsafe', setting: u.setting, mailman: u.current, letterlock: `wants ${u.wanted}`, note: u.why }));
  const state = await getState(sql, list.id);
  const followed: Array<[string, unknown, unknown]> = [
    ['default_member_action', c.default_member_action, state?.defaultMemberAction],
    ['default_nonmember_action', c.default_nonmember_action, state?.defaultNonmemberAction],
    ['subscription_policy', c.subscription_policy, state?.subscriptionPolicy],
    ['emergency', c.emergency ?? false, state?.emergency],
  ];
  for (const [setting, mm, ll] of followed) {
    if (state === null || String(mm) !== String(ll)) {
      out.push({ kind: 'stale', setting, mailman: String(mm), letterlock: state === null ? '(never synced)' : String(ll), note: 'the next roster sync applies it' });
    }
  }
  const kb = typeof c.max_message_size === 'number' ? c.max_message_size : null;
  if (kb !== null && kb > 0 && kb * 1024 !== list.maxBytes) {
    out.push({ kind: 'differs', setting: 'max_message_size', mailman: `${kb} KB`, letterlock: `${Math.round(list.maxBytes / 1024)} KB`, note: "Letterlock enforces its own limit (letterlock list set --max-bytes); an encrypted post is about a third larger than its text" });
  }
  const reply = typeof c.reply_goes_to_list === 'string' ? c.reply_goes_to_list : null;
  if (reply !== null && REPLY[reply] !== list.replyTo) {
    out.push({ kind: 'differs', setting: 'reply_goes_to_list', mailman: reply, letterlock: `reply-to ${list.replyTo}`, note: 'copies carry Letterlock\'s Reply-To (letterlock list set --reply-to)' });
  }
  const ownerSet = new Set(owners.map((o) => o.email.toLowerCase()));
  if (!list.owner || !ownerSet.has(list.owner.toLowerCase())) {
    out.push({ kind: 'differs', setting: 'owner', mailman: ownerSet.size ? [...ownerSet].sort().slice(0, 3).join(', ') + (ownerSet.size > 3 ? ', ...' : '') : '(none)', letterlock: list.owner ?? '(none)', note: 'failure reports go to Letterlock\'s owner (letterlock list set --owner)' });
  }
  return out;
}

/** Status of the bound lists (one, or all); with `rest` null (no mailman section) drift is not asked. */
export async function mailmanStatus(sql: Sql, rest: MailmanRest | null, only?: string): Promise<ListStatus[]> {
  const lists = (await allLists(sql)).filter((l) => l.mailmanListId && (!only || l.address === only.toLowerCase()));
  const out: ListStatus[] = [];
  for (const list of lists) {
    const state = await getState(sql, list.id);
    const counts = await rosterCounts(sql, list.id);
    const inv = await invitationCounts(sql, list.id);
    let drift: Drift[] | null = null;
    let reachError: string | null = rest ? null : 'NOT_CONFIGURED';
    let unreachable = false;
    if (rest) {
      try {
        drift = await driftOf(rest, sql, list);
      } catch (e) {
        if (!(e instanceof MailmanError)) throw e;
        reachError = `MAILMAN_${e.code}`;
        unreachable = isUnreachable(e);
      }
    }
    out.push({
      list: list.address, mailmanListId: list.mailmanListId!, syncedAt: state?.syncedAt ?? null, attemptedAt: state?.attemptedAt ?? null,
      lastError: state?.lastError ?? null, members: counts.members, withKey: counts.withKey, withoutKey: counts.members - counts.withKey,
      deliveryDisabled: counts.deliveryDisabled, owners: counts.owners, moderators: counts.moderators, nonmembers: counts.nonmembers,
      invited: inv.invited, outbox: await countOutbox(sql, list.id), drift, reachError, unreachable,
    });
  }
  return out;
}
