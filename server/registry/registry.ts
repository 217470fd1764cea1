// The key registry (the role the proposal gives Postorius): subscription with
// proof of address and key, confirmation, moderator approval, key change, key
// revocation, unsubscribing, and the daily key-expiry check. Mail it sends goes
// through the durable queue; a confirmation is encrypted to the key being
// registered, so only whoever reads that mailbox AND holds that key can confirm.

import * as openpgp from 'openpgp';
import type { PrivateKey } from 'openpgp';
import {
  buildInlineMail, buildInnerMessage, buildPgpMimeMail, encryptInner, formatDate, newMessageId, parseStatement,
  readPublicKey, verifyStatement, domainOf, type ConfirmResponse, type SignedRequest, type SubscribeRequest,
} from '../../shared/index.ts';
import { serviceMail } from '../delivery/notices.ts';
import { codeOf, type EventLog } from '../log/log.ts';
import { sealedNoticeMail } from '../ops/sealed.ts';
import { getNotifySettings, registeredKeyOf } from '../store/notify.ts';
import type { HttpLimits } from '../config/config.ts';
import { ApiFailure, busy } from '../http/errors.ts';
import type { ListKeys } from '../lists/lists.ts';
import { registerMember } from '../lists/members.ts';
import type { Sql } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import { allLists, getListById } from '../store/lists.ts';
import { findMemberByKeyId, getMember, iterateMembers, removeMember } from '../store/members.ts';
import type { QueueStore } from '../store/queue.ts';
import {
  countPendingSubscriptions, deletePendingMember, deleteSessions, getDeliveryPreference, getPendingMember, insertPendingToken, recordNonce, recordWarning,
  setDeliveryPreference, takePendingToken, upsertPendingMember, wasWarned,
} from '../store/registry.ts';
import type { Limiter, Rule } from './limits.ts';
import { queueOutbox } from '../store/mailman.ts';
import { getListSettings } from '../store/settings.ts';
import { hashToken, newToken } from './tokens.ts';

export const CONFIRM_TTL_MS = 48 * 3600_000;
export const REQUEST_CLOCK_SKEW_MS = 10 * 60_000;
export const EXPIRY_WARNING_MS = 14 * 86_400_000;
/** Members named in the owner's expiry summary; the rest are counted. */
const MAX_SUMMARY_LISTED = 200;

export interface RegistryDeps {
  sql: Sql;
  queue: QueueStore;
  publicUrl: string;
  keysFor(list: ListRecord): Promise<ListKeys>;
  /** Wakes the delivery worker after mail was queued. */
  onQueued(): void;
  limits: HttpLimits;
  limiter: Limiter;
  now?: () => number;
  /** Events of the key-expiry check (an owner that cannot be told); absent: not logged. */
  log?: EventLog;
}


export class Registry {
  constructor(private readonly deps: RegistryDeps) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private async enqueue(list: ListRecord, rcpt: string, mail: string): Promise<void> {
    await this.deps.queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt, mail });
    this.deps.onQueued();
  }

  // ---- subscription ---------------------------------------------------------------

  /** `client`: the requester's IP (normalized), for the per-IP mail bound. */
  async subscribe(list: ListRecord, req: SubscribeRequest, client: string | null = null): Promise<{ expiresAt: string }> {
    // The key policy, with the user ID required to hold the subscribing address.
    const { key, facts } = await readPublicKey(req.publicKey, { expectedAddress: req.address, date: new Date(this.now()) });
    const now = this.now();
    // Caps on what strangers can make the server hold: each pending subscription
    // waits 48 h for its confirmation.
    const limits = this.deps.limits;
    const retry = (soonest: number | null) => Math.min(3600, Math.max(60, ((soonest ?? now) - now) / 1000));
    const { token, hash } = newToken();
    const expiresAt = now + CONFIRM_TTL_MS;
    // Caps, rate limits and the new token in one transaction: two requests at once
    // cannot both pass a cap that has room for one.
    await this.deps.sql.tx(async () => {
      const ofList = await countPendingSubscriptions(this.deps.sql, list.id, now);
      if (ofList.n >= limits.maxPendingSubscriptionsPerList) {
        throw busy('This list has too many subscriptions waiting for confirmation. Try again later.', retry(ofList.soonest));
      }
      const all = await countPendingSubscriptions(this.deps.sql, null, now);
      if (all.n >= limits.maxPendingSubscriptions) throw busy('This server has too many subscriptions waiting for confirmation. Try again later.', retry(all.soonest));
      await this.deps.limiter.take(this.mailRules(list, req.address, client), (s) => `Too many confirmation mails were asked for (for this address, from your network or for this list). Try again in ${s} s.`);
      await insertPendingToken(this.deps.sql, hash, {
        purpose: 'subscribe', listId: list.id, address: req.address, fingerprint: facts.fingerprint, publicKey: key.armor(), delivery: req.delivery, expiresAt,
      });
    });
    await this.enqueue(list, req.address, await this.confirmationMail(list, req.address, key, facts.fingerprint, token, expiresAt, req.delivery === 'inline' ? 'inline' : 'pgp-mime'));
    return { expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Confirmation mails: per address over all lists, per requesting IP, per list. */
  private mailRules(list: ListRecord, address: string, client: string | null): Rule[] {
    const l = this.deps.limits;
    return [
      { bucket: 'mail:address', key: address.toLowerCase(), rate: l.mailPerAddress },
      { bucket: 'mail:list', key: String(list.id), rate: l.mailPerList },
      ...(client === null ? [] : [{ bucket: 'mail:ip', key: client, rate: l.mailPerIp }]),
    ];
  }

  /** In the form the subscriber chose for list mail: a webmail user reads an inline block where a PGP/MIME mail shows only an attachment. */
  private async confirmationMail(list: ListRecord, address: string, key: openpgp.PublicKey, fingerprint: string, token: string, expiresAt: number, form: 'pgp-mime' | 'inline'): Promise<string> {
    const { listKey } = await this.deps.keysFor(list);
    const link = `${this.deps.publicUrl}/v1/lists/${encodeURIComponent(list.address)}/subscriptions/confirm?token=${token}`;
    const text = [
      `Someone, hopefully you, asked to subscribe ${address} to the encrypted mailing list ${list.address},`,
      `with the OpenPGP key ${fingerprint}.`,
      '',
      'To confirm with the Letterlock extension, open this message in your webmail and press "Confirm subscription".',
      `Without the extension, open this link and press the button there (valid until ${new Date(expiresAt).toUTCString()}):`,
      link,
      '',
      `Letterlock-Confirm: ${token}`,
      '',
      'If you did not ask for this, ignore this message: nothing will happen.',
      '',
    ].join('\n');
    const inner = buildInnerMessage({
      subject: `Confirm your subscription to ${list.address}`, from: { address: list.address }, to: [{ address }], text,
    });
    const armored = await encryptInner(inner.bytes, listKey, key);
    return (form === 'inline' ? buildInlineMail : buildPgpMimeMail)([
      ['From', `<${list.address}>`], ['To', `<${address}>`], ['Subject', `Confirm your subscription to ${list.address}`],
      ['Date', formatDate(inner.date)], ['Message-ID', inner.messageId], ['Auto-Submitted', 'auto-generated'],
    ], armored);
  }

  async confirm(list: ListRecord, token: string): Promise<ConfirmResponse> {
    const pending = await takePendingToken(this.deps.sql, hashToken(token), 'subscribe', this.now());
    if (!pending || pending.listId !== list.id || !pending.publicKey || !pending.fingerprint) {
      throw new ApiFailure(400, 'TOKEN_INVALID', 'This confirmation link is unknown, already used or expired. Subscribe again to get a new one.');
    }
    const delivery = pending.delivery === 'inline' ? 'inline' : 'pgp-mime';
    if ((await getListSettings(this.deps.sql, list.id)).subscription === 'moderated' && !await getMember(this.deps.sql, list.id, pending.address)) {
      await upsertPendingMember(this.deps.sql, { listId: list.id, address: pending.address, fingerprint: pending.fingerprint, publicKey: pending.publicKey, delivery });
      return { status: 'pending-approval', address: pending.address, fingerprint: pending.fingerprint };
    }
    await this.admit(list, pending.address, pending.publicKey, delivery);
    return { status: 'member', address: pending.address, fingerprint: pending.fingerprint };
  }

  /** Makes (or re-keys) a member; sessions under an old key end. */
  async admit(list: ListRecord, address: string, publicKey: string, delivery: 'pgp-mime' | 'inline'): Promise<void> {
    const before = await getMember(this.deps.sql, list.id, address);
    const { record } = await registerMember(this.deps.sql, list.id, address, publicKey, new Date(this.now()));
    await setDeliveryPreference(this.deps.sql, list.id, address, delivery);
    await deletePendingMember(this.deps.sql, list.id, address);
    if (before && before.fingerprint !== record.fingerprint) await deleteSessions(this.deps.sql, list.id, address);
    // A list bound to Mailman: the Core gets the member too (sent by server/mailman/sync.ts, kept while it is down).
    if (list.mailmanListId) await queueOutbox(this.deps.sql, list.id, address, 'subscribe');
  }

  async approvePending(list: ListRecord, address: string): Promise<void> {
    const p = await getPendingMember(this.deps.sql, list.id, address);
    if (!p) throw new ApiFailure(404, 'NOT_FOUND', 'No pending subscription for that address.');
    await this.admit(list, p.address, p.publicKey, p.delivery === 'inline' ? 'inline' : 'pgp-mime');
  }

  async removeMember(list: ListRecord, address: string): Promise<boolean> {
    const removed = await removeMember(this.deps.sql, list.id, address);
    await deleteSessions(this.deps.sql, list.id, address);
    await deletePendingMember(this.deps.sql, list.id, address);
    if (list.mailmanListId) await queueOutbox(this.deps.sql, list.id, address, 'unsubscribe');
    return removed;
  }

  // ---- signed requests --------------------------------------------------------------

  async signedRequest(list: ListRecord, req: SignedRequest): Promise<'unsubscribed' | 'key-changed' | 'delivery-changed'> {
    const refused = (message: string) => new ApiFailure(401, 'SIGNATURE_INVALID', message);
    let parsed;
    try {
      parsed = parseStatement(req.statement);
    } catch {
      throw new ApiFailure(400, 'BAD_REQUEST', 'The statement is not a Letterlock request.');
    }
    const f = parsed.fields;
    if (parsed.kind !== 'request' || f.server !== this.deps.publicUrl || f.list !== list.address || !f.address || !f.nonce || !f.date || !f.action) {
      throw refused('The request is not for this server and list.');
    }
    const when = Date.parse(f.date);
    if (!Number.isFinite(when) || Math.abs(when - this.now()) > REQUEST_CLOCK_SKEW_MS) throw refused('The request is too old or dated in the future.');
    const member = await getMember(this.deps.sql, list.id, f.address);
    if (!member || member.keyState !== 'valid') throw refused('The request is not signed by the registered key of a member.');
    const { key } = await readPublicKey(member.publicKey).catch(() => {
      throw refused('The registered key of this member can no longer verify requests.');
    });
    if (!(await verifyStatement(req.statement, req.signature, key, new Date(this.now())))) {
      throw refused('The request is not signed by the registered key of a member.');
    }
    // Only after the signature holds: a stranger cannot burn a member's nonces.
    if (!await recordNonce(this.deps.sql, list.id, f.nonce, this.now())) throw new ApiFailure(409, 'CONFLICT', 'This request was already made once.');

    switch (f.action) {
      case 'unsubscribe':
        await this.removeMember(list, member.address);
        return 'unsubscribed';
      case 'delivery':
        if (f.value !== 'pgp-mime' && f.value !== 'inline') throw new ApiFailure(400, 'BAD_REQUEST', 'Delivery must be pgp-mime or inline.');
        await setDeliveryPreference(this.deps.sql, list.id, member.address, f.value);
        return 'delivery-changed';
      case 'key-change': {
        if (!req.newPublicKey) throw new ApiFailure(400, 'BAD_REQUEST', 'A key change needs the new public key.');
        const { facts } = await readPublicKey(req.newPublicKey, { expectedAddress: member.address, date: new Date(this.now()) });
        if (facts.fingerprint !== f.value) throw refused('The signed request names a different new key.');
        await this.admit(list, member.address, req.newPublicKey, await getDeliveryPreference(this.deps.sql, list.id, member.address));
        return 'key-changed';
      }
      default:
        throw new ApiFailure(400, 'BAD_REQUEST', 'Unknown request action.');
    }
  }

  // ---- revocation ----------------------------------------------------------------------

  /** Applies an uploaded revocation certificate to the member key it belongs to. Deliveries to it stop at once. */
  async revoke(list: ListRecord, certificate: string): Promise<{ address: string; fingerprint: string }> {
    let issuer: string;
    try {
      // openpgp.js and GnuPG armor revocation certificates as PUBLIC KEY BLOCKs
      // holding one signature packet; read the packet whatever the armor says.
      const { data } = await openpgp.unarmor(certificate);
      const sig = await openpgp.readSignature({ binarySignature: data as Uint8Array });
      const packet = sig.packets[0];
      if (!packet || packet.signatureType !== openpgp.enums.signature.keyRevocation) throw new Error('not a key revocation');
      issuer = packet.issuerFingerprint ? Buffer.from(packet.issuerFingerprint).toString('hex').toUpperCase() : packet.issuerKeyID.toHex().toUpperCase();
    } catch {
      throw new ApiFailure(400, 'BAD_REQUEST', 'That is not an OpenPGP key revocation certificate.');
    }
    const row = await findMemberByKeyId(this.deps.sql, list.id, issuer);
    if (!row) throw new ApiFailure(404, 'NOT_FOUND', 'No member of this list has the key this certificate revokes.');
    let revoked: string;
    try {
      const key = await openpgp.readKey({ armoredKey: row.publicKey });
      revoked = (await openpgp.revokeKey({ key: key as openpgp.PublicKey, revocationCertificate: certificate, format: 'armored' })).publicKey;
    } catch {
      throw new ApiFailure(400, 'SIGNATURE_INVALID', 'The revocation certificate does not verify against the member\'s key.');
    }
    const { record } = await registerMember(this.deps.sql, list.id, row.address, revoked, new Date(this.now()));
    await deleteSessions(this.deps.sql, list.id, row.address);
    return { address: row.address, fingerprint: record.fingerprint };
  }

  // ---- unsubscribe by mail -----------------------------------------------------------------

  /** Always answers the same, member or not, so the endpoint tells nobody who is subscribed. */
  async requestUnsubscribe(list: ListRecord, address: string, client: string | null = null): Promise<void> {
    if (!await getMember(this.deps.sql, list.id, address)) return;
    // Over a mail bound the request is dropped silently: a 429 here would tell
    // a stranger that the address is subscribed.
    if (await this.deps.limiter.tryTake(this.mailRules(list, address, client)) > 0) return;
    const { token, hash } = newToken();
    await insertPendingToken(this.deps.sql, hash, { purpose: 'unsubscribe', listId: list.id, address, fingerprint: null, publicKey: null, delivery: null, expiresAt: this.now() + CONFIRM_TTL_MS });
    const link = `${this.deps.publicUrl}/v1/lists/${encodeURIComponent(list.address)}/unsubscribe/confirm?token=${token}`;
    await this.enqueue(list, address, serviceMail(list.address, address, `Confirm leaving ${list.address}`, [
      `Someone, hopefully you, asked to unsubscribe ${address} from ${list.address}.`,
      'To confirm, open this link and press the button there:',
      link,
      '',
      'If you did not ask for this, ignore this message: you stay subscribed.',
    ]));
  }

  async confirmUnsubscribe(list: ListRecord, token: string): Promise<string> {
    const pending = await takePendingToken(this.deps.sql, hashToken(token), 'unsubscribe', this.now());
    if (!pending || pending.listId !== list.id) throw new ApiFailure(400, 'TOKEN_INVALID', 'This link is unknown, already used or expired.');
    await this.removeMember(list, pending.address);
    return pending.address;
  }

  // ---- daily key-expiry check ------------------------------------------------------------------

  /**
   * Warns each member whose key expires within 14 days (once per key), sealed to
   * that key; tells the list owner when the owner's digest is off (the digest lists
   * the same keys). Lists are taken one by one: one list's failure stays with it.
   */
  checkExpiringKeys(): Promise<{ warned: number }> {
    // One check at a time (the daily timer and the operator's POST): two at once
    // would both find a key not yet warned and warn it twice.
    this.checking ??= this.checkAll().finally(() => { this.checking = null; });
    return this.checking;
  }

  private checking: Promise<{ warned: number }> | null = null;

  private async checkAll(): Promise<{ warned: number }> {
    let warned = 0;
    const lists = (await allLists(this.deps.sql)).map((l) => ({ id: l.id }));
    for (const { id } of lists) {
      const list = await getListById(this.deps.sql, id);
      if (!list) continue;
      try {
        warned += await this.checkList(list);
      } catch (e) {
        this.deps.log?.error('notice.failed', { list: list.address, code: codeOf(e) });
      }
    }
    return { warned };
  }

  private async checkList(list: ListRecord): Promise<number> {
    const { sql, log } = this.deps;
    const now = this.now();
    const date = new Date(now);
    let listKey: PrivateKey | null = null;
    const key = async () => (listKey ??= (await this.deps.keysFor(list)).listKey);
    const soon: string[] = [];
    let warned = 0;
    for await (const page of iterateMembers(sql, list.id)) {
      for (const m of page) {
        if (m.keyState !== 'valid' || m.expiresAt === null || m.expiresAt > now + EXPIRY_WARNING_MS) continue;
        if (await wasWarned(sql, list.id, m.address, m.fingerprint)) continue;
        const when = new Date(m.expiresAt).toUTCString();
        const subject = `Your key for ${list.address} expires soon`;
        const lines = [
          `Your OpenPGP key ${m.fingerprint}, registered for ${list.address}, ${m.expiresAt > now ? `expires on ${when}` : `expired on ${when}`}.`,
          'After that you will get a short notice instead of the list\'s posts.',
          'Extend the key\'s expiry date and upload it again (the Letterlock extension does this in its options), or register a new key.',
        ];
        // Sealed to the member's own key while it still takes an encryption. Once it
        // has expired it cannot, and clear text is the only way to reach them: these
        // lines are metadata only (the member's own address, fingerprint and a date).
        const mail = await sealedNoticeMail({
          listAddress: list.address, listKey: await key(), to: m.address, toKey: m.publicKey, subject,
          outerSubject: `Key notice for ${list.address}`, lines, date,
        }) ?? serviceMail(list.address, m.address, subject, lines);
        // Checked again with the write: another check (another process) may have warned meanwhile.
        const sent = await sql.tx(async () => {
          if (await wasWarned(sql, list.id, m.address, m.fingerprint)) return false;
          await this.deps.queue.add({ listId: list.id, postId: null, kind: 'notice', rcpt: m.address, mail });
          await recordWarning(sql, list.id, m.address, m.fingerprint, now);
          return true;
        });
        if (!sent) continue;
        this.deps.onQueued();
        warned++;
        if (soon.length < MAX_SUMMARY_LISTED) soon.push(`${m.address} (${m.fingerprint}, ${when})`);
      }
    }
    // The owner's digest already lists keys expiring within 14 days: no second mail.
    if (warned > 0 && list.owner && !(await getNotifySettings(sql, list.id)).digest) {
      const ownerKey = await registeredKeyOf(sql, list.id, list.owner, now);
      const mail = ownerKey && await sealedNoticeMail({
        listAddress: list.address, listKey: await key(), to: list.owner, toKey: ownerKey.publicKey,
        subject: `Member keys of ${list.address} expiring soon`, outerSubject: `Key notice for ${list.address}`,
        lines: [
          'These members\' keys expire within 14 days; each was told:', ...soon.map((s) => `  ${s}`),
          ...(warned > soon.length ? [`  ... and ${warned - soon.length} more`] : []),
        ], date,
      });
      if (mail) await this.enqueue(list, list.owner, mail);
      // Never in clear: the list of members is member data.
      else log?.warn('ops.owner_unreachable', { list: list.address, count: warned, code: 'NO_KEY' });
    }
    return warned;
  }
}
