// Hostile and refused posts for the policy tests, made with openpgp.js directly:
// unsigned, signed over other content (bad signature), encrypted to a wrong key.

import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { buildInnerMessage, buildPgpMimeMail, formatDate, type HeaderList } from '../../../shared/index.ts';

function outer(from: string, list: string, messageId: string): HeaderList {
  return [['From', `<${from}>`], ['To', `<${list}>`], ['Subject', '...'], ['Date', formatDate(new Date())], ['Message-ID', messageId]];
}

function inner(from: string, list: string, text: string) {
  return buildInnerMessage({ subject: `subject ${text}`, from: { address: from }, to: [{ address: list }], text });
}

export async function unsignedPost(from: string, list: string, listKey: PublicKey, text: string): Promise<string> {
  const i = inner(from, list, text);
  const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: i.bytes, format: 'binary' }), encryptionKeys: listKey });
  return buildPgpMimeMail(outer(from, list, i.messageId), armored);
}

/** Signed by `signer`, but over other content: the signature does not match. */
export async function badSignaturePost(from: string, list: string, listKey: PublicKey, signer: PrivateKey, text: string): Promise<string> {
  const i = inner(from, list, text);
  const other = inner(from, list, `${text} (what was really signed)`);
  const signature = await openpgp.sign({ message: await openpgp.createMessage({ binary: other.bytes, format: 'binary' }), signingKeys: signer, detached: true, format: 'object' });
  const literal = await openpgp.createMessage({ binary: i.bytes, format: 'binary' });
  // A signature packet followed by literal data: the plain "signed message" form.
  const packets = new openpgp.PacketList<openpgp.AnyPacket>();
  packets.push(...signature.packets, ...literal.packets);
  const armored = await openpgp.encrypt({ message: new openpgp.Message(packets) as never, encryptionKeys: listKey });
  return buildPgpMimeMail(outer(from, list, i.messageId), armored);
}

/** Properly signed, but encrypted to some key other than the list's. */
export async function wrongKeyPost(from: string, list: string, wrongKey: PublicKey, signer: PrivateKey, text: string): Promise<string> {
  const i = inner(from, list, text);
  const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ binary: i.bytes, format: 'binary' }), encryptionKeys: wrongKey, signingKeys: signer });
  return buildPgpMimeMail(outer(from, list, i.messageId), armored);
}
