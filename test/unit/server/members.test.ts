import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKey, parsePrivateKey, unlockPrivateKey } from '../../../shared/index.ts';
import { registerMember } from '../../../server/lists/members.ts';
import { normalizeListAddress } from '../../../server/lists/lists.ts';
import { openSqlite } from '../../../server/store/db.ts';
import { insertList } from '../../../server/store/lists.ts';
import { getMember } from '../../../server/store/members.ts';
import { openTestSql } from '../../support/test-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'letterlock-members-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sql = await openTestSql(join(dir, 'm.db'));
const listId = await insertList(sql, { address: 'l@x.test', owner: null, listFingerprint: 'A', listPublic: 'p', listPrivate: 'k', archiveFingerprint: 'B', archivePublic: 'p', archivePrivate: 'k', postPolicy: 'members', posters: [], requireSignature: true, maxBytes: 1000 });

describe('registering a member key (the key policy, with the member address expected)', () => {
  it('stores the key, its fingerprint, expiry and encryption key packet', async () => {
    const k = await generateKey({ kind: 'subscriber', address: 'ann@x.test', passphrase: 'p', expiresInSeconds: 3600 });
    const r = await registerMember(sql, listId, 'Ann@X.test', k.publicKeyArmored);
    expect(r.record.address).toBe('ann@x.test');
    expect(r.facts.fingerprint).toBe(k.facts.fingerprint);
    const m = (await getMember(sql, listId, 'ann@x.test'))!;
    expect(m.expiresAt).toBeGreaterThan(Date.now());
    expect(m.encryptionKey.length).toBeGreaterThan(30);
  });
  it('refuses a key whose user IDs do not hold the member address', async () => {
    const k = await generateKey({ kind: 'subscriber', address: 'someone@x.test', passphrase: 'p' });
    await expect(registerMember(sql, listId, 'ben@x.test', k.publicKeyArmored)).rejects.toMatchObject({ code: 'KEY_USERID_MISMATCH' });
    await expect(registerMember(sql, listId, 'ben@x.test', 'not a key')).rejects.toMatchObject({ code: 'KEY_UNREADABLE' });
  });
  it('refuses a revoked key for a new member, but records the revocation of a registered one', async () => {
    const k = await generateKey({ kind: 'subscriber', address: 'cy@x.test', passphrase: 'p' });
    const priv = await unlockPrivateKey(await parsePrivateKey(k.privateKeyArmored), 'p');
    const { publicKey: revoked } = await openpgp.revokeKey({ key: priv, format: 'object' });
    await expect(registerMember(sql, listId, 'cy@x.test', revoked.armor())).rejects.toMatchObject({ code: 'KEY_REVOKED' });
    await registerMember(sql, listId, 'cy@x.test', k.publicKeyArmored);
    const r = await registerMember(sql, listId, 'cy@x.test', revoked.armor());
    expect(r.revoked).toBe(true);
    expect((await getMember(sql, listId, 'cy@x.test'))!.keyState).toBe('revoked');
  });
  it('list addresses are validated', () => {
    expect(normalizeListAddress(' News@Lists.Example.org ')).toBe('news@lists.example.org');
    expect(() => normalizeListAddress('news+x@lists.test')).toThrow(/not a valid list address/);
    expect(() => normalizeListAddress('no-at-sign')).toThrow(/not a valid list address/);
  });
});
