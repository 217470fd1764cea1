// RFC 9580 v6 member keys (issue 9: "RFC 9580 v6 keys where openpgp.js reads them"),
// through the real server over SMTP. A v6 member registers, posts signed with
// their v6 key, and receives copies; v4 members (openpgp.js and GnuPG 2.2) keep
// receiving copies they read. Copies stay one shared SEIPD v1 body: each v6
// subscriber gets a v3 PKESK to their X25519/X448 subkey (RFC 9580 §5.1 pairs v3
// PKESK with SEIPD v1, for any key version), so the body is still encrypted once.

import { rmSync } from 'node:fs';
import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { composePost, readMail } from '../../../shared/index.ts';
import { Gpg } from '../../support/gpg.ts';
import { addList, initData, listPublicKey, person, send, Sink, tempDir, type Person } from './harness.ts';

const LIST = 'v6@lists.test';
let sink: Sink;
let server: RunningServer;
let dataDir = '';
let listKey: PublicKey;
let v4: Person;
let ed25519: Person;
let ed448: Person;
let gpg: Gpg;

/** A v6 key as openpgp.js makes it (RFC 9580: Ed25519 + X25519, or Ed448 + X448). */
async function v6Person(address: string, type: 'curve25519' | 'curve448'): Promise<Person> {
  const { privateKey, publicKey, revocationCertificate } = await openpgp.generateKey({
    type, userIDs: [{ email: address }], format: 'object', config: { v6Keys: true },
  });
  return {
    address, passphrase: '', publicArmored: publicKey.armor(), privateArmored: privateKey.armor(), revocationCertificate, privateKey, publicKey,
  };
}

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('v6');
  await initData(dataDir, sink.port);
  [v4, ed25519, ed448] = await Promise.all([person('four@example.org'), v6Person('six@example.org', 'curve25519'), v6Person('six448@example.org', 'curve448')]);
  // Registration goes through the key policy, as every subscription does.
  await addList(dataDir, LIST, {}, [v4, ed25519, ed448]);
  listKey = await listPublicKey(dataDir, LIST);
  gpg = new Gpg();
  await gpg.importKey(v4.privateArmored, v4.passphrase);
  // gpg 2.2 cannot import a v6 key ("packet(6) with unknown version 6"): the v4 reader has only its own.
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, 'integration-test-secret-0123456789', { log: createEventLog({ file: `${dataDir}/logs/server.log`, stdout: false }) });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  gpg?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function postAndCollect(from: Person, marker: string): Promise<Map<string, Buffer>> {
  const post = await composePost({
    message: { subject: `v6 ${marker}`, from: { address: from.address }, to: [{ address: LIST }], text: `Body ${marker}` }, senderKey: from.privateKey, listKey,
  });
  expect(await send(server.smtpPort, from.address, LIST, post.pgpMime)).toMatch(/^250/);
  const readers = [v4, ed25519, ed448].filter((p) => p !== from);
  const copyTo = (p: Person) => sink.to(p.address).find((m) => m.from.includes('+bounces-') && m.raw.toString('latin1').includes(post.messageId))?.raw;
  await sink.waitFor(() => readers.every((p) => copyTo(p)), 60_000, `copies of ${marker}`);
  return new Map(readers.map((p) => [p.address, copyTo(p)!]));
}

describe('RFC 9580 v6 member keys', () => {
  it('a v6 (Ed25519) member\'s post reaches a v6 (Ed448) and a v4 member; openpgp.js reads both copies with the author\'s good v6 signature', async () => {
    const copies = await postAndCollect(ed25519, 'from-v6');
    for (const reader of [ed448, v4]) {
      const r = await readMail(copies.get(reader.address)!, { privateKey: reader.privateKey, senderKeys: [ed25519.publicKey] });
      expect(r.verification.valid, reader.address).toBe(true);
      if (r.verification.valid) expect(r.verification.signerFingerprint).toBe(ed25519.publicKey.getFingerprint().toUpperCase());
      expect(r.message.text).toContain('Body from-v6');
    }
  });

  it('a v4 member\'s post reaches both v6 members, who read it; each v6 copy\'s PKESK is v3 to the reader\'s v6 subkey, and the body is the v1 SEIPD every copy shares', async () => {
    const copies = await postAndCollect(v4, 'from-v4');
    const bodies = new Set<string>();
    for (const reader of [ed25519, ed448]) {
      const raw = copies.get(reader.address)!;
      const r = await readMail(raw, { privateKey: reader.privateKey, senderKeys: [v4.publicKey] });
      expect(r.verification.valid, reader.address).toBe(true);
      expect(r.message.text).toContain('Body from-v4');
      const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(raw.toString('latin1'))![0];
      const message = await openpgp.readMessage({ armoredMessage: armored });
      const [pkesk] = message.packets.filterByTag(openpgp.enums.packet.publicKeyEncryptedSessionKey) as unknown as Array<{ version: number; publicKeyID: { toHex(): string } }>;
      expect(pkesk!.version).toBe(3);
      const sub = reader.publicKey.getSubkeys()[0]!;
      expect(pkesk!.publicKeyID.toHex()).toBe(sub.getKeyID().toHex());
      const seipd = message.packets.filterByTag(openpgp.enums.packet.symEncryptedIntegrityProtectedData)[0] as unknown as { version: number; encrypted: Uint8Array };
      expect(seipd.version).toBe(1);
      bodies.add(Buffer.from(seipd.encrypted).toString('base64'));
    }
    expect(bodies.size).toBe(1);
  });

  // gpg 2.2 stops at a v6 one-pass-signature packet and prints nothing, so the list
  // delivers v6-signed posts in §6.1 form (shared/post/detach.ts).
  it('GnuPG 2.2 on a v4 member\'s machine decrypts the copy of a v6 member\'s post with exit 0 to the §6.1 entity holding the post; the detached v6 signature is there for readers that can check it', async () => {
    const copies = await postAndCollect(ed25519, 'gpg-reads-v6');
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(copies.get(v4.address)!.toString('latin1'))![0];
    const r = await gpg.run(['--decrypt'], armored, v4.passphrase);
    // The post's own MIME entity, with its protected subject (the body part is base64 inside).
    expect(r.stdout.toString('utf8'), r.stderr).toContain('Subject: v6 gpg-reads-v6');
    expect(r.status.filter((s) => s.startsWith('BADSIG'))).toEqual([]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const entity = r.stdout.toString('latin1');
    expect(entity).toMatch(/^Content-Type: multipart\/signed; micalg=pgp-sha\d+;/);
    const sig = /-----BEGIN PGP SIGNATURE-----[\s\S]*?-----END PGP SIGNATURE-----/.exec(entity)![0];
    const packet = (await openpgp.readSignature({ armoredSignature: sig })).packets[0]!;
    expect(packet.version).toBe(6);
  });

  it('the v6 member\'s key is served by its 64-digit fingerprint and by its key ID (the first 16 digits)', async () => {
    const fpr = ed25519.publicKey.getFingerprint().toUpperCase();
    expect(fpr).toHaveLength(64);
    const { findMemberByKeyId } = await import('../../../server/store/members.ts');
    const { openData } = await import('../../../server/app.ts');
    const { getList } = await import('../../../server/store/lists.ts');
    const sql = await openData(dataDir, 'integration-test-secret-0123456789');
    try {
      const list = (await getList(sql, LIST))!;
      expect((await findMemberByKeyId(sql, list.id, fpr))?.address).toBe(ed25519.address);
      expect((await findMemberByKeyId(sql, list.id, fpr.slice(0, 16)))?.address).toBe(ed25519.address);
      const subId = ed25519.publicKey.getSubkeys()[0]!.getKeyID().toHex().toUpperCase();
      expect((await findMemberByKeyId(sql, list.id, subId))?.address).toBe(ed25519.address);
    } finally {
      await sql.close();
    }
  });
});
