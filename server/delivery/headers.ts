// The outer headers of a delivered copy: threading headers of the original, a
// placeholder subject (the real one is a protected header inside), and the list
// headers of RFC 2919 (List-Id), RFC 2369 (List-Post, List-Unsubscribe,
// List-Archive) and RFC 8058 (one-click unsubscribe).

import { formatDate, isPlainMessageId, PLACEHOLDER_SUBJECT, writeHeaders, type HeaderList } from '../../shared/index.ts';
import { splitAddress } from './tokens.ts';

export interface ListHeaderInput {
  listAddress: string;
  publicUrl: string;
  unsubscribeUrl: string;
}

export function listIdOf(listAddress: string): string {
  const { local, domain } = splitAddress(listAddress);
  return `<${local}.${domain}>`;
}

/**
 * The list headers of one list's copies as a template: written once, with only
 * List-Unsubscribe (which names the recipient) written per copy. fill() gives the
 * same text as writeHeaders(listHeaders(...)).
 */
export class ListHeaderTemplate {
  private readonly before: string;
  private readonly after: string;

  constructor(listAddress: string, publicUrl: string) {
    const all = listHeaders({ listAddress, publicUrl, unsubscribeUrl: '' });
    const at = all.findIndex(([name]) => name === 'List-Unsubscribe');
    this.before = writeHeaders(all.slice(0, at));
    this.after = writeHeaders(all.slice(at + 1));
  }

  fill(unsubscribeUrl: string): string {
    return `${this.before}\r\n${writeHeaders([['List-Unsubscribe', `<${unsubscribeUrl}>`]])}\r\n${this.after}`;
  }
}

export function listHeaders(i: ListHeaderInput): HeaderList {
  const base = i.publicUrl.replace(/\/+$/, '');
  return [
    ['List-Id', listIdOf(i.listAddress)],
    ['List-Post', `<mailto:${i.listAddress}>`],
    ['List-Unsubscribe', `<${i.unsubscribeUrl}>`],
    ['List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'],
    ['List-Archive', `<${base}/lists/${encodeURIComponent(i.listAddress)}/archive>`],
    ['Precedence', 'list'],
  ];
}

export interface CopyHeaderInput {
  listAddress: string;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: number | null;
  /** The Autocrypt header value for the list key (autocrypt.ts). */
  autocrypt?: string;
  /** From, Reply-To and Subject as the post is shown (display.ts); absent: the list's own From and "...". */
  shown?: HeaderList;
}

// The threading headers come from the sender and are copied onto every copy, so
// they are checked where they are written (not only at ingest): a stored id that
// is not a plain printable msg-id is dropped, never passed to the header writer.
export const MAX_REFERENCES = 20;

/** A message id fit to write into a header (the same rule as at ingest, shared/mime/payload.ts), or null. */
export function safeMessageId(id: unknown): string | null {
  return isPlainMessageId(id) ? id : null;
}

/** At most the last MAX_REFERENCES valid ids (the nearest ancestors matter most). */
export function safeReferences(refs: unknown): string[] {
  if (!Array.isArray(refs)) return [];
  const out: string[] = [];
  // Walk from the end and stop early: the input's length does not bound the work.
  for (let i = refs.length - 1; i >= 0 && out.length < MAX_REFERENCES; i--) {
    const id = safeMessageId(refs[i]);
    if (id) out.unshift(id);
  }
  return out;
}

/** A date the header writer can format; anything else is replaced by now. */
function safeDate(date: number | null): Date {
  const d = new Date(typeof date === 'number' && Number.isFinite(date) ? date : Date.now());
  const y = d.getUTCFullYear();
  return Number.isNaN(d.getTime()) || y < 1970 || y > 9999 ? new Date() : d;
}

/** Headers shared by every copy of one post (computed once per post). */
export function postHeaders(p: CopyHeaderInput): HeaderList {
  const shown = p.shown ?? [['From', `<${p.listAddress}>`], ['Subject', PLACEHOLDER_SUBJECT]];
  const h: HeaderList = [...shown, ['To', `<${p.listAddress}>`], ['Date', formatDate(safeDate(p.date))]];
  const messageId = safeMessageId(p.messageId);
  const inReplyTo = safeMessageId(p.inReplyTo);
  const references = safeReferences(p.references);
  if (messageId) h.push(['Message-ID', messageId]);
  if (inReplyTo) h.push(['In-Reply-To', inReplyTo]);
  // 20 ids of at most 250 characters, folded at spaces: no line over 998 octets.
  if (references.length) h.push(['References', references.join(' ')]);
  if (p.autocrypt) h.push(['Autocrypt', p.autocrypt]);
  return h;
}

export function unsubscribeUrl(publicUrl: string, listAddress: string, member: string, token: string): string {
  const base = publicUrl.replace(/\/+$/, '');
  return `${base}/lists/${encodeURIComponent(listAddress)}/unsubscribe?m=${encodeURIComponent(member)}&t=${token}`;
}
