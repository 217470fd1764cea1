// shared/post/detach.ts: a post whose signature names the list as its intended
// recipient (RFC 9580 §5.2.3.36) is carried in RFC 3156 §6.1 form, with the sender's
// own signature packet, when and only when that form verifies as the post did.
// The signatures come from Sequoia's sq, the implementation that writes the
// subpacket (openpgp.js cannot); the list side is the code under test.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detachedForm, decryptWithKey, INTENDED_RECIPIENT_SUBPACKET, namesIntendedRecipients, readPgpMessage, resolveLimits, verifyAgainst,
} from '../../../shared/index.ts';
import { splitMultipartSigned as split } from '../../../shared/mime/signed.ts';

const CRLF = '\r\n';
let dir: string;
let listKey: openpgp.PrivateKey;
let sqCert: openpgp.PublicKey;
let sqKeyFile: string;
let listCertFile: string;
let ownKey: openpgp.PrivateKey; // an openpgp.js signer: no intended-recipient subpacket

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'letterlock-detach-'));
  const list = await openpgp.generateKey({ userIDs: [{ email: 'crypto@example.org' }], format: 'object' });
  listKey = list.privateKey;
  listCertFile = join(dir, 'list.asc');
  writeFileSync(listCertFile, list.publicKey.armor());
  sqKeyFile = join(dir, 'sq.key');
  execFileSync('sq', ['key', 'generate', '--userid', 'Sq <sq@example.org>', '--export', sqKeyFile]);
  sqCert = await openpgp.readKey({ armoredKey: execFileSync('sq', ['key', 'extract-cert', sqKeyFile]).toString() });
  ownKey = (await openpgp.generateKey({ userIDs: [{ email: 'own@example.org' }], format: 'object' })).privateKey;
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function openAsList(armored: string) {
  const limits = resolveLimits({});
  return (await decryptWithKey(await readPgpMessage(armored, limits), listKey, limits, new Date())).message;
}

function sqSignEncrypt(content: Buffer): string {
  return execFileSync('sq', ['encrypt', '--signer-key', sqKeyFile, '--recipient-cert', listCertFile], { input: content }).toString();
}

const entity = (eol: string, marker: string) => Buffer.from(
  ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', `Hello (${marker}), Grüße.`, '-- ', 'Sq', ''].join(eol), 'utf8',
);

describe('detachedForm', () => {
  it('carries an sq post (CRLF MIME entity) as multipart/signed: same signed bytes, the sender\'s own signature packet, verifying as before', async () => {
    const signed = entity(CRLF, 'crlf');
    const message = await openAsList(sqSignEncrypt(signed));
    expect(namesIntendedRecipients(message)).toBe(true);
    const original = new openpgp.PacketList<openpgp.AnyPacket>();
    original.push(...message.unwrapCompressed().packets.filterByTag(openpgp.enums.packet.signature));

    const detached = await detachedForm(message, [sqCert], new Date());
    expect(detached).not.toBeNull();
    const parts = split(detached!.content)!;
    expect(Buffer.from(parts.content).equals(signed)).toBe(true);
    const sig = await openpgp.readSignature({ armoredSignature: parts.signature });
    expect(Buffer.from(sig.packets.write() as Uint8Array).equals(Buffer.from(original.write() as Uint8Array))).toBe(true);
    expect(/micalg=pgp-sha\d+;/.test(Buffer.from(detached!.content).toString('latin1'))).toBe(true);
    // The subpacket is still there: nothing about the signature changed.
    expect((sig.packets[0] as unknown as { unknownSubpackets: { type: number }[] }).unknownSubpackets.map((u) => u.type)).toContain(INTENDED_RECIPIENT_SUBPACKET);

    // What a reader gets after decrypting the sealed packets: the §6.1 entity, verifying for the same key.
    const sealed = await openpgp.readMessage({ binaryMessage: detached!.innerPackets });
    expect(Buffer.from(sealed.getLiteralData() as Uint8Array).equals(Buffer.from(detached!.content))).toBe(true);
    const v = await verifyAgainst(sealed, [sqCert]);
    expect(v.valid && v.signerFingerprint).toBe(sqCert.getFingerprint().toUpperCase());
  });

  it('leaves a post without the subpacket as it came', async () => {
    const signed = entity(CRLF, 'own');
    const armored = await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: signed }), encryptionKeys: listKey.toPublic(), signingKeys: ownKey,
    }) as string;
    const message = await openAsList(armored);
    expect(namesIntendedRecipients(message)).toBe(false);
    expect(await detachedForm(message, [ownKey.toPublic()], new Date())).toBeNull();
  });

  it('leaves a post it cannot carry: bare text (no MIME entity), a binary signature over LF lines (readers check CRLF), a signer not offered', async () => {
    const bare = await openAsList(sqSignEncrypt(Buffer.from('just text, no headers\r\n')));
    expect(namesIntendedRecipients(bare)).toBe(true);
    expect(await detachedForm(bare, [sqCert], new Date())).toBeNull();

    const lf = await openAsList(sqSignEncrypt(entity('\n', 'lf')));
    expect(namesIntendedRecipients(lf)).toBe(true);
    expect((await verifyAgainst(lf, [sqCert])).valid).toBe(true);
    expect(await detachedForm(lf, [sqCert], new Date())).toBeNull();

    const other = await openAsList(sqSignEncrypt(entity(CRLF, 'other')));
    expect(await detachedForm(other, [ownKey.toPublic()], new Date())).toBeNull();
  });
});
