// Reading and decrypting one OpenPGP message under limits, shared by the list
// (opening posts) and the subscriber (reading copies). Every openpgp.js failure
// is mapped to one Letterlock error code here and nowhere else.

import * as openpgp from 'openpgp';
import type { AnyPacket, Message, MaybeStream, PacketList, PrivateKey } from 'openpgp';
import { fail, isLetterlockError } from '../errors.ts';
import type { OpenLimits } from '../limits.ts';

export type PgpMessage = Message<MaybeStream<string | Uint8Array>>;

const { packet: TAG } = openpgp.enums;
const SESSION_KEY_PACKETS = new Set<number>([TAG.publicKeyEncryptedSessionKey, TAG.symEncryptedSessionKey]);

function tagOf(p: AnyPacket): number {
  return (p.constructor as unknown as { tag: number }).tag;
}

function configFor(limits: OpenLimits): openpgp.Config {
  return { ...openpgp.config, maxDecompressedMessageSize: limits.maxDecompressedBytes };
}

export async function readPgpMessage(input: string | Uint8Array, limits: OpenLimits): Promise<PgpMessage> {
  const size = typeof input === 'string' ? input.length : input.byteLength;
  if (size > limits.maxMessageBytes) fail('TOO_LARGE', `${size} bytes, limit ${limits.maxMessageBytes}`);
  const config = configFor(limits);
  let message: PgpMessage;
  try {
    message = typeof input === 'string'
      ? await openpgp.readMessage({ armoredMessage: input, config })
      : await openpgp.readMessage({ binaryMessage: input, config });
  } catch (e) {
    fail('OPENPGP_MALFORMED', undefined, e);
  }
  checkEncryptedShape(message.packets, limits);
  return message;
}

/** An encrypted message is session-key packets followed by exactly one SEIPD. */
function checkEncryptedShape(packets: PacketList<AnyPacket>, limits: OpenLimits): void {
  if (packets.length > limits.maxPackets) fail('TOO_MANY_PACKETS', `${packets.length} packets`);
  let encrypted = 0;
  for (const p of packets) {
    const tag = tagOf(p);
    if (tag === TAG.symmetricallyEncryptedData) fail('LEGACY_UNPROTECTED');
    if (tag === TAG.aeadEncryptedData) fail('LEGACY_UNPROTECTED', 'non-standard AEAD packet');
    if (tag === TAG.symEncryptedIntegrityProtectedData) encrypted++;
    else if (!SESSION_KEY_PACKETS.has(tag)) fail('NOT_ENCRYPTED', `unexpected packet type ${tag}`);
  }
  if (encrypted === 0) fail('NOT_ENCRYPTED');
  if (encrypted > 1) fail('MULTIPLE_PAYLOADS', 'more than one encrypted data packet');
}

interface LazyPacketList extends PacketList<AnyPacket> {
  stream?: { readToEnd?(join: (rest: AnyPacket[]) => AnyPacket[]): Promise<AnyPacket[]> } | null;
}

/**
 * openpgp.js parses decrypted content lazily: packets after the literal data
 * (the trailing signatures) wait in `list.stream`. Pull them in, at every level,
 * so the list is whole, can be counted, and writes out every packet. A compressed
 * packet keeps its original compressed bytes for writing.
 */
async function completePackets(list: LazyPacketList, limits: OpenLimits): Promise<PacketList<AnyPacket>> {
  const whole = new openpgp.PacketList<AnyPacket>();
  whole.push(...list);
  if (list.stream?.readToEnd) whole.push(...(await list.stream.readToEnd((rest) => rest ?? [])));
  if (whole.length > limits.maxPackets) fail('TOO_MANY_PACKETS', `${whole.length} inner packets`);
  for (const p of whole) {
    const nested = p as { packets?: LazyPacketList | null };
    if (tagOf(p) === TAG.compressedData && nested.packets) nested.packets = await completePackets(nested.packets, limits);
  }
  return whole;
}

/** Decrypts with one private key; returns the message of decrypted packets, all of them read. */
export async function decryptWithKey(message: PgpMessage, key: PrivateKey, limits: OpenLimits, date: Date): Promise<PgpMessage> {
  const config = configFor(limits);
  let sessionKeys;
  try {
    sessionKeys = await openpgp.decryptSessionKeys({ message, decryptionKeys: key, date, config });
  } catch (e) {
    fail('WRONG_KEY', undefined, e);
  }
  const usable = sessionKeys.filter((k): k is openpgp.SessionKey => k.algorithm !== null);
  if (usable.length === 0) fail('WRONG_KEY');
  try {
    const decrypted = await message.decrypt(undefined, undefined, usable, date, config);
    return new openpgp.Message(await completePackets(decrypted.packets, limits));
  } catch (e) {
    if (isLetterlockError(e)) throw e;
    const text = e instanceof Error ? e.message : '';
    if (/decompressed message size/i.test(text)) fail('DECOMPRESSED_TOO_LARGE', undefined, e);
    if (/Modification detected|integrity|authentication tag|Unexpected session key|MDC/i.test(text)) fail('DECRYPTION_FAILED', undefined, e);
    fail('OPENPGP_MALFORMED', 'inside the encrypted data', e);
  }
}
