import { describe, expect, it } from 'vitest';
import { decide } from '../../../server/pipeline/decide.ts';
import type { ListRecord } from '../../../server/store/lists.ts';
import type { MemberRecord } from '../../../server/store/members.ts';
import type { Verification } from '../../../shared/index.ts';

const list = (over: Partial<ListRecord> = {}): ListRecord => ({
  id: 1, address: 'l@x.test', owner: null, listFingerprint: '', listPublic: '', listPrivate: '', archiveFingerprint: '',
  archivePublic: '', archivePrivate: '', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000, replayWindowDays: 7, hideSubjects: false, replyTo: 'author', ...over,
});
const member = (address = 'a@x.test', keyState: 'valid' | 'revoked' = 'valid'): MemberRecord => ({
  listId: 1, address, fingerprint: 'F', publicKey: '', encryptionKey: new Uint8Array(), expiresAt: null, keyState,
});
const good: Verification = { valid: true, signerFingerprint: 'F', signerKeyId: 'K', signedAt: null };
const bad = (code: 'UNSIGNED' | 'BAD_SIGNATURE' | 'SIGNER_UNKNOWN'): Verification => ({ valid: false, code, reason: '', signerKeyId: null });
const outer = { from: 'a@x.test', messageId: null, inReplyTo: null, references: [], date: null, autoSubmitted: false };

describe('decide (list policy)', () => {
  it('accepts a member with a good signature', () => {
    expect(decide({ list: list(), member: member(), verification: good, outer })).toEqual({ action: 'accept' });
  });
  it('refuses a non-member on every policy', () => {
    expect(decide({ list: list(), member: null, verification: null, outer })).toEqual({ action: 'refuse', code: 'NOT_MEMBER' });
    expect(decide({ list: list({ postPolicy: 'moderated' }), member: null, verification: null, outer })).toEqual({ action: 'refuse', code: 'NOT_MEMBER' });
    expect(decide({ list: list({ postPolicy: 'announce' }), member: null, verification: null, outer })).toEqual({ action: 'refuse', code: 'NOT_POSTER' });
  });
  it('refuses failed signatures with their own code', () => {
    for (const c of ['UNSIGNED', 'BAD_SIGNATURE', 'SIGNER_UNKNOWN'] as const) {
      expect(decide({ list: list(), member: member(), verification: bad(c), outer })).toEqual({ action: 'refuse', code: c });
    }
  });
  it('lets an unsigned post through only when the list does not require signatures, never a bad one', () => {
    const open = list({ requireSignature: false });
    expect(decide({ list: open, member: member(), verification: bad('UNSIGNED'), outer })).toEqual({ action: 'accept' });
    expect(decide({ list: open, member: member(), verification: bad('BAD_SIGNATURE'), outer })).toEqual({ action: 'refuse', code: 'BAD_SIGNATURE' });
  });
  it('holds on a moderated list until approved', () => {
    const mod = list({ postPolicy: 'moderated' });
    expect(decide({ list: mod, member: member(), verification: good, outer })).toEqual({ action: 'hold', reason: 'moderated' });
    expect(decide({ list: mod, member: member(), verification: good, outer }, { approved: true })).toEqual({ action: 'accept' });
    expect(decide({ list: mod, member: member(), verification: bad('BAD_SIGNATURE'), outer }, { approved: true })).toEqual({ action: 'refuse', code: 'BAD_SIGNATURE' });
  });
  it('announce lists accept only named posters', () => {
    const ann = list({ postPolicy: 'announce', posters: ['boss@x.test'] });
    expect(decide({ list: ann, member: member('boss@x.test'), verification: good, outer })).toEqual({ action: 'accept' });
    expect(decide({ list: ann, member: member('a@x.test'), verification: good, outer })).toEqual({ action: 'refuse', code: 'NOT_POSTER' });
  });
  it('refuses a member whose registered key was revoked', () => {
    expect(decide({ list: list(), member: member('a@x.test', 'revoked'), verification: good, outer })).toEqual({ action: 'refuse', code: 'KEY_STATE_INVALID' });
  });
});
