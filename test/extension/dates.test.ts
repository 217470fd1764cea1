// The date a message is shown with: the signed one when verified, else the
// archive's, and the words say which (issue 12: thread lines and the message
// showed different dates).

import { describe, expect, it } from 'vitest';
import { dateLine, shownDate } from '../../extension/pages/ui/dates.ts';

const SIGNED = '2026-12-01T10:00:00.000Z';
const ARCHIVED = '2026-12-01T10:05:00.000Z';
const verified = { status: 'verified', fingerprint: 'A'.repeat(40), address: 'alice@example.org' } as const;
const unchecked = { status: 'unchecked', reason: 'Signature not checked: sender key unavailable.' } as const;
const invalid = { status: 'invalid', code: 'BAD_SIGNATURE', reason: 'no' } as const;

describe('shownDate', () => {
  it('shows the signed date only when the signature is verified', () => {
    expect(shownDate({ date: SIGNED, signature: verified }, ARCHIVED)).toEqual({ iso: SIGNED, kind: 'signed' });
    expect(shownDate({ date: SIGNED, signature: verified }, null)).toEqual({ iso: SIGNED, kind: 'signed' });
  });

  it('falls back to the archive date when the message is not verified, or not decrypted yet', () => {
    expect(shownDate({ date: SIGNED, signature: unchecked }, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
    expect(shownDate({ date: SIGNED, signature: invalid }, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
    expect(shownDate(null, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
    expect(shownDate(undefined, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
    // A verified message without a date of its own still has the archive's.
    expect(shownDate({ date: null, signature: verified }, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
  });

  it('outside the archive an unverified date is shown as such; junk dates are ignored', () => {
    expect(shownDate({ date: SIGNED, signature: unchecked }, null)).toEqual({ iso: SIGNED, kind: 'unverified' });
    expect(shownDate({ date: 'not a date', signature: verified }, ARCHIVED)).toEqual({ iso: ARCHIVED, kind: 'archived' });
    expect(shownDate({ date: null, signature: unchecked }, 'junk')).toBeNull();
  });

  it('the words say which date it is', () => {
    expect(dateLine({ iso: SIGNED, kind: 'signed' })).toMatch(/\(signed by the sender\)$/);
    expect(dateLine({ iso: ARCHIVED, kind: 'archived' })).toMatch(/\(received by the archive\)$/);
    expect(dateLine({ iso: SIGNED, kind: 'unverified' })).toMatch(/\(as the sender wrote it, not verified\)$/);
    expect(dateLine({ iso: SIGNED, kind: 'signed' })).toContain(new Date(SIGNED).toLocaleString());
  });
});
