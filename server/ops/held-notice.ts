// A notice to each moderator (the list's moderators and its owner) for each held
// post: which list, who sent it, its size, why it is held, its held id and how
// to approve or reject it. Signed by the list key, encrypted to the moderator's
// registered key (sealed.ts). Only metadata: the post itself stays the
// ciphertext that arrived, and nothing of it is decrypted or rendered here.
//
// Notices are made one after another in the background (each costs an
// encryption per moderator), after the hold is committed. The per-list switch
// is read when the post is held. At most `perHour` held posts of a list an hour
// are announced; the rest are counted in the owner's digest (digest.ts), which
// also covers a notice lost to a crash between the hold and its queueing.

import { codeOf, type EventLog } from '../log/log.ts';
import type { ListKeys } from '../lists/lists.ts';
import { safeMessageId } from '../delivery/headers.ts';
import type { Sql } from '../store/db.ts';
import { countHeld, getHeld, type HeldRecord } from '../store/held.ts';
import { addressesWithRole } from '../store/mailman.ts';
import { getListById, type ListRecord } from '../store/lists.ts';
import { getNotifySettings, isAddress, MAX_MODERATORS, registeredKeyOf } from '../store/notify.ts';
import type { QueueStore } from '../store/queue.ts';
import { sealedNoticeMail } from './sealed.ts';

/** Held posts waiting for their notices; beyond this the digest tells instead. */
const MAX_PENDING = 1000;

export interface HeldNotifierDeps {
  sql: Sql;
  queue: QueueStore;
  log: EventLog;
  keysFor(list: ListRecord): Promise<ListKeys>;
  /** The server's public URL (a getter: known once the HTTP port is bound). */
  readonly publicUrl: string;
  /** Held posts of one list announced per hour at most. */
  perHour: number;
  onQueued?(): void;
}

const HOLD_REASONS: Record<string, string> = {
  moderated: 'the list is moderated: every post waits for a moderator',
};

/** Printable and short: the sender address came from the post's outer From. */
function clean(s: string | null, max = 254): string {
  return (s ?? '').replace(/[^\x21-\x7e]/g, '?').slice(0, max) || '(unknown)';
}

export function reasonWords(reason: string): string {
  const code = clean(reason, 40);
  return HOLD_REASONS[reason] ?? `held by the list's policy (${code})`;
}

/** The notice's text: metadata of the held record and the commands, never the post. */
export function heldNoticeLines(list: ListRecord, held: HeldRecord, publicUrl: string): string[] {
  const api = `${publicUrl.replace(/\/+$/, '')}/v1/admin/lists/${encodeURIComponent(list.address)}/held/${held.id}`;
  return [
    `A post to ${list.address} is held for a moderator.`,
    '',
    `  Held id:    ${held.id}`,
    `  List:       ${list.address}`,
    `  From:       ${clean(held.sender)} (signature checked against this member's registered key)`,
    `  Size:       ${held.size} bytes`,
    `  Reason:     ${reasonWords(held.reason)}`,
    `  Received:   ${new Date(held.receivedAt).toUTCString()}`,
    `  Message-ID: ${safeMessageId(held.outer.messageId) ?? '(none)'}`,
    '',
    'To read it and decide in your browser: Letterlock extension (toolbar button) -> Held posts,',
    'then sign in with your key. The post is decrypted on your computer, not on the server.',
    '',
    'To approve it (it is then delivered to every member) or reject it (the sender gets a',
    'notice that quotes nothing), on the list server:',
    '',
    `  letterlock held approve ${held.id}`,
    `  letterlock held reject ${held.id}`,
    '',
    'or with the operator API (the token is in the data folder\'s admin-token file):',
    '',
    `  curl -X POST -H "Authorization: Bearer $TOKEN" ${api}/approve`,
    `  curl -X POST -H "Authorization: Bearer $TOKEN" ${api}/reject`,
    '',
    'This notice does not quote the post: it is kept only in the encrypted form it arrived in.',
    `Notices like this one are turned off with: letterlock list set ${list.address} --no-notify-held`,
  ];
}

/**
 * A list bound to Mailman 3 (server/mailman/, issue 11) also has the owners and
 * moderators Mailman names, from the roster last synced; none when that part is absent.
 */
async function mailmanModerators(sql: Sql, listId: number): Promise<string[]> {
  return (await addressesWithRole(sql, listId, ['owner', 'moderator'], MAX_MODERATORS)).map((a) => a.toLowerCase()).filter(isAddress);
}

/** The list's moderators: its owner, the moderators set on it, and for a Mailman list Mailman's; each once. */
export async function moderatorsOf(sql: Sql, list: ListRecord): Promise<string[]> {
  const s = await getNotifySettings(sql, list.id);
  return [...new Set([...(list.owner ? [list.owner.toLowerCase()] : []), ...s.moderators, ...await mailmanModerators(sql, list.id)])];
}

export class HeldNotifier {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;
  private stopped = false;

  constructor(private readonly d: HeldNotifierDeps) {}

  /** Called right after a hold is committed. Never throws. */
  async held(list: ListRecord, heldId: number): Promise<void> {
    try {
      if (this.stopped) return;
      if (!(await getNotifySettings(this.d.sql, list.id)).held) {
        this.d.log.info('notice.suppressed', { list: list.address, held: heldId, code: 'NOTIFY_OFF' });
        return;
      }
      const hour = await countHeld(this.d.sql, list.id, Date.now() - 3600_000);
      if (hour > this.d.perHour) {
        this.d.log.info('notice.suppressed', { list: list.address, held: heldId, code: 'RATE_LIST' });
        return;
      }
      if (this.pending >= MAX_PENDING) {
        this.d.log.warn('notice.suppressed', { list: list.address, held: heldId, code: 'BUSY' });
        return;
      }
      this.pending++;
      this.chain = this.chain.then(() => this.notify(list.id, heldId)).catch((e: unknown) => {
        this.d.log.error('notice.failed', { list: list.address, held: heldId, code: codeOf(e) });
      }).finally(() => { this.pending--; });
    } catch (e) {
      this.d.log.error('notice.failed', { list: list.address, held: heldId, code: codeOf(e) });
    }
  }

  /** Resolves when every notice asked for so far is queued (or given up). */
  idle(): Promise<void> {
    return this.chain;
  }

  stop(): void {
    this.stopped = true;
  }

  private async notify(listId: number, heldId: number): Promise<void> {
    if (this.stopped) return;
    const { sql, queue, log } = this.d;
    const list = await getListById(sql, listId);
    const held = await getHeld(sql, heldId);
    if (!list || !held) return; // approved or rejected already
    const { listKey } = await this.d.keysFor(list);
    const lines = heldNoticeLines(list, held, this.d.publicUrl);
    let queued = 0;
    for (const to of await moderatorsOf(sql, list)) {
      const key = await registeredKeyOf(sql, list.id, to);
      const mail = key && await sealedNoticeMail({
        listAddress: list.address, listKey, to, toKey: key.publicKey, lines,
        subject: `Held post ${held.id} on ${list.address} awaits moderation`, outerSubject: `Moderation request for ${list.address}`,
      });
      if (!mail) {
        // Never in clear: a moderator without a usable key gets nothing (the log says so).
        log.warn('notice.suppressed', { list: list.address, held: heldId, code: 'NO_KEY' });
        continue;
      }
      await queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: to, mail });
      queued++;
    }
    if (queued > 0) this.d.onQueued?.();
    log.info('notice.queued', { list: list.address, held: heldId, count: queued });
  }
}
