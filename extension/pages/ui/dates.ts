// Which date a message is shown with, the same in the archive's thread lines and
// in the message itself: the date inside the signed message when the signature
// is verified (the sender vouched for it), else the date the archive received
// it (the server's own record), and the words say which one it is.

import type { ReadView } from '../../messages.ts';

export type DateKind = 'signed' | 'archived' | 'unverified';

export interface ShownDate {
  iso: string;
  kind: DateKind;
}

/**
 * `archived` is the archive's date for the message (null outside the archive).
 * Outside the archive an unverified message has only its own, unvouched date.
 */
export function shownDate(read: Pick<ReadView, 'date' | 'signature'> | null | undefined, archived: string | null): ShownDate | null {
  const own = read?.date && Number.isFinite(Date.parse(read.date)) ? read.date : null;
  if (own && read?.signature.status === 'verified') return { iso: own, kind: 'signed' };
  if (archived && Number.isFinite(Date.parse(archived))) return { iso: archived, kind: 'archived' };
  if (own) return { iso: own, kind: 'unverified' };
  return null;
}

/** The words beside the date: what it is and who vouches for it. */
export const dateKindWords: Record<DateKind, string> = {
  signed: 'signed by the sender',
  archived: 'received by the archive',
  unverified: 'as the sender wrote it, not verified',
};

/** "3 Dec 2026, 10:00 (signed by the sender)", in the user's locale. */
export function dateLine(d: ShownDate): string {
  return `${new Date(d.iso).toLocaleString()} (${dateKindWords[d.kind]})`;
}
