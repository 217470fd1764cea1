// The outer headers of a delivered copy: threading headers of the original, a
// placeholder subject (the real one is a protected header inside), and the list
// headers of RFC 2919 (List-Id), RFC 2369 (List-Post, List-Unsubscribe,
// List-Archive) and RFC 8058 (one-click unsubscribe).

import { formatDate, PLACEHOLDER_SUBJECT, type HeaderList } from '../../shared/index.ts';
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
}

/** Headers shared by every copy of one post (computed once per post). */
export function postHeaders(p: CopyHeaderInput): HeaderList {
  const h: HeaderList = [
    ['From', `<${p.listAddress}>`],
    ['To', `<${p.listAddress}>`],
    ['Subject', PLACEHOLDER_SUBJECT],
    ['Date', formatDate(new Date(p.date ?? Date.now()))],
  ];
  if (p.messageId) h.push(['Message-ID', p.messageId]);
  if (p.inReplyTo) h.push(['In-Reply-To', p.inReplyTo]);
  if (p.references.length) h.push(['References', p.references.join(' ')]);
  if (p.autocrypt) h.push(['Autocrypt', p.autocrypt]);
  return h;
}

export function unsubscribeUrl(publicUrl: string, listAddress: string, member: string, token: string): string {
  const base = publicUrl.replace(/\/+$/, '');
  return `${base}/lists/${encodeURIComponent(listAddress)}/unsubscribe?m=${encodeURIComponent(member)}&t=${token}`;
}
