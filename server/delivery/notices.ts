// The content-free mails the list writes itself: a bounce to a refused sender,
// a missed-message notice to a member whose key cannot be used, and the text of
// the list owner's report of failed deliveries (sealed by the worker). None of them carries any part of a post:
// they are built only from codes, addresses, dates and message ids.

import { formatDate, newMessageId, writeHeaders, domainOf, type HeaderList } from '../../shared/index.ts';
import { reasonSentence, type ReasonCode } from '../pipeline/reasons.ts';
import { listIdOf, safeMessageId } from './headers.ts';

function textMail(headers: HeaderList, lines: string[]): string {
  return `${writeHeaders(headers)}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${lines.join('\r\n')}\r\n`;
}

function base(listAddress: string, to: string, subject: string, autoSubmitted = 'auto-replied'): HeaderList {
  return [
    ['From', `<${listAddress}>`],
    ['To', `<${to}>`],
    ['Subject', subject],
    ['Date', formatDate(new Date())],
    ['Message-ID', newMessageId(domainOf(listAddress))],
    ['List-Id', listIdOf(listAddress)],
    ['Auto-Submitted', autoSubmitted],
  ];
}

/** A content-free service mail from the list (the key registry's confirmations and warnings). */
export function serviceMail(listAddress: string, to: string, subject: string, lines: string[]): string {
  return textMail(base(listAddress, to, subject, 'auto-generated'), lines);
}

/** Message ids are written only when they look like ids: they come from the sender. */
function safeId(id: string | null): string {
  return safeMessageId(id) ?? '(none)';
}

export function bounceMail(listAddress: string, to: string, code: ReasonCode, messageId: string | null): string {
  return textMail(base(listAddress, to, `Your post to ${listAddress} was not delivered`), [
    `Your message to ${listAddress} was not delivered to the list.`,
    '',
    `Reason: ${reasonSentence(code)}`,
    `Code: ${code}`,
    `Message-ID: ${safeId(messageId)}`,
    '',
    'This notice does not quote your message. Nothing of its content was kept.',
  ]);
}

/** One bounce for a message sent to several lists at once: each refused list and why (the others took it). */
export function refusalsMail(fromList: string, to: string, refusals: ReadonlyArray<{ list: string; code: ReasonCode }>, messageId: string | null): string {
  const shown = refusals.slice(0, 20);
  return textMail(base(fromList, to, `Your post was not delivered to ${shown.length === 1 ? shown[0]!.list : `${refusals.length} lists`}`), [
    `Your message was accepted by some of the lists it was sent to, but not by ${refusals.length === 1 ? 'this one' : 'these'}:`,
    '',
    ...shown.flatMap((r) => [`- ${r.list}: ${reasonSentence(r.code)}`, `  Code: ${r.code}`]),
    '',
    `Message-ID: ${safeId(messageId)}`,
    '',
    'This notice does not quote your message. Nothing of its content was kept.',
  ]);
}

export function heldMail(listAddress: string, to: string, messageId: string | null): string {
  return textMail(base(listAddress, to, `Your post to ${listAddress} awaits moderation`), [
    `Your message to ${listAddress} is held until a moderator approves it.`,
    `Message-ID: ${safeId(messageId)}`,
    '',
    'It is kept only in the encrypted form it arrived in.',
  ]);
}

export function missedNoticeMail(listAddress: string, to: string, code: ReasonCode, messageId: string | null): string {
  return textMail(base(listAddress, to, `You missed a post on ${listAddress}`), [
    `A post was sent to ${listAddress}, but it could not be encrypted to your key.`,
    '',
    `Reason: ${reasonSentence(code)}`,
    `Message-ID: ${safeId(messageId)}`,
    '',
    'Send the list owner an updated public key to receive posts again.',
  ]);
}

/** Reasons come from the remote relay: one printable line each, bounded. */
function oneLine(s: string, max = 300): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

/**
 * The text of the owner's report of failed deliveries: addresses, reason codes and
 * message ids. It is member data, so it goes only sealed to the owner's key (worker.ts).
 */
export function ownerReportLines(listAddress: string, entries: Array<{ rcpt: string; reason: string; messageId: string | null }>): string[] {
  const shown = entries.slice(0, 500);
  return [
    `${entries.length} recipient(s) of ${listAddress} did not receive a post:`,
    '',
    ...shown.map((e) => `- ${oneLine(e.rcpt, 254)}: ${oneLine(e.reason)} (post ${safeId(e.messageId)})`),
    ...(entries.length > shown.length ? [`... and ${entries.length - shown.length} more`] : []),
    '',
    'All failures, with dates: letterlock queue, or GET /v1/admin/lists/{list}/failures on the operator API.',
  ];
}
