// What a copy shows before it is opened: the author (Mailman's DMARC mitigation
// form, `"Alice via news" <news@...>`), a Reply-To, and a Subject when the post
// has no protected one. These are the sender's words and name, so they are kept
// at rest only encrypted to the list key (posts.display) and opened in memory by
// the delivery worker, once per post. The sealed form is a standard OpenPGP
// message; nothing in it is written anywhere in clear.

import * as openpgp from 'openpgp';
import type { PrivateKey } from 'openpgp';
import { fromUtf8, PLACEHOLDER_SUBJECT, utf8, type ClearFacts, type HeaderList, type InnerDisplay } from '../../shared/index.ts';
import { formatAddress, encodeUnstructured, headerText } from '../../shared/index.ts';

export interface PostDisplay {
  /** The verified member who wrote the post. */
  author: string;
  /** The author's display name, from the protected From, else the clear From; null if neither. */
  name: string | null;
  /** The Subject sent in clear, kept only when the signed content has no protected Subject. */
  clearSubject: string | null;
}

export type ReplyTo = 'author' | 'list';

export function displayOf(author: string, inner: InnerDisplay | null, clear: ClearFacts | null): PostDisplay {
  return {
    author,
    name: inner?.fromName ?? clear?.fromName ?? null,
    clearSubject: inner?.subject ? null : (clear?.subject ?? null),
  };
}

export async function sealDisplay(display: PostDisplay, listKey: PrivateKey): Promise<Uint8Array> {
  const message = await openpgp.createMessage({ binary: utf8(JSON.stringify(display)) });
  return openpgp.encrypt({ message, encryptionKeys: listKey.toPublic(), format: 'binary' });
}

export async function openDisplay(sealed: Uint8Array, listKey: PrivateKey): Promise<PostDisplay | null> {
  try {
    const message = await openpgp.readMessage({ binaryMessage: sealed });
    const { data } = await openpgp.decrypt({ message, decryptionKeys: listKey, format: 'binary' });
    const v = JSON.parse(fromUtf8(data as Uint8Array)) as Partial<PostDisplay>;
    if (typeof v.author !== 'string') return null;
    return { author: v.author, name: typeof v.name === 'string' ? v.name : null, clearSubject: typeof v.clearSubject === 'string' ? v.clearSubject : null };
  } catch {
    return null; // shown as the list alone: a copy is never held up by its display
  }
}

/**
 * From, Reply-To and Subject for every copy of one post. The From address is the
 * list's own (the author's domain may publish DMARC p=reject; the list re-sends
 * their words under its name), with the author's name "via" the list, as
 * Mailman does; Reply-To points at the author or the list, as the list chose.
 */
export function displayHeaders(listAddress: string, display: PostDisplay | null, options: { replyTo: ReplyTo; hideSubjects: boolean }): HeaderList {
  const listName = listAddress.slice(0, listAddress.indexOf('@'));
  if (!display) return [['From', `<${listAddress}>`], ['Subject', PLACEHOLDER_SUBJECT]];
  const who = headerText(display.name) ?? display.author;
  const subject = options.hideSubjects ? null : headerText(display.clearSubject);
  return [
    ['From', formatAddress(listAddress, `${who} via ${listName}`)],
    ['Reply-To', options.replyTo === 'author' ? formatAddress(display.author, headerText(display.name) ?? undefined) : `<${listAddress}>`],
    ['Subject', subject ? encodeUnstructured(subject) : PLACEHOLDER_SUBJECT],
  ];
}
