// Reading and decrypting one OpenPGP message under limits, shared by the list
// (opening posts) and the subscriber (reading copies). Every openpgp.js failure
// is mapped to one Letterlock error code here and nowhere else.

import * as openpgp from 'openpgp';
import type { AnyPacket, Message, MaybeStream, PacketList, PrivateKey } from 'openpgp';
import { concatBytes } from '../bytes.ts';
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

async function dearmor(armored: string): Promise<Uint8Array> {
  let unarmored;
  try {
    unarmored = await openpgp.unarmor(armored);
  } catch (e) {
    fail('OPENPGP_MALFORMED', 'bad ASCII armor', e);
  }
  if (unarmored.type !== openpgp.enums.armor.message) fail('NOT_ENCRYPTED', 'the armored block is not a message');
  if (!(unarmored.data instanceof Uint8Array)) fail('OPENPGP_MALFORMED', 'unexpected streamed armor');
  return unarmored.data;
}

/** Reads armored or binary OpenPGP and checks it is one encrypted message, within limits. */
export async function readPgpMessage(input: string | Uint8Array, limits: OpenLimits): Promise<PgpMessage> {
  const size = typeof input === 'string' ? input.length : input.byteLength;
  if (size > limits.maxMessageBytes) fail('TOO_LARGE', `${size} bytes, limit ${limits.maxMessageBytes}`);
  const bytes = typeof input === 'string' ? await dearmor(input) : input;
  // openpgp's own grammar check would refuse a doubled payload with a generic
  // error; checkEncryptedShape below applies the same grammar with specific codes.
  const config = { ...configFor(limits), enforceGrammar: false };
  let packets: PacketList<AnyPacket>;
  try {
    const message = await openpgp.readMessage({ binaryMessage: bytes, config });
    packets = await completePackets(message.packets, limits);
  } catch (e) {
    if (isLetterlockError(e)) throw e;
    fail('OPENPGP_MALFORMED', undefined, e);
  }
  checkEncryptedShape(packets);
  return new openpgp.Message(packets);
}

/** An encrypted message is session-key packets followed by exactly one SEIPD. */
function checkEncryptedShape(packets: PacketList<AnyPacket>): void {
  let encrypted = 0;
  for (const p of packets) {
    const tag = tagOf(p);
    if (tag === TAG.symmetricallyEncryptedData) fail('LEGACY_UNPROTECTED');
    if (tag === TAG.aeadEncryptedData) fail('LEGACY_UNPROTECTED', 'non-standard AEAD packet');
    if (tag === TAG.symEncryptedIntegrityProtectedData) encrypted++;
    else if (!SESSION_KEY_PACKETS.has(tag)) fail('NOT_ENCRYPTED', `unexpected packet type ${tag}`);
    else if (encrypted > 0) fail('OPENPGP_MALFORMED', 'session key after the encrypted data');
  }
  if (encrypted === 0) fail('NOT_ENCRYPTED');
  if (encrypted > 1) fail('MULTIPLE_PAYLOADS', 'more than one encrypted data packet');
}

interface LazyPacketList extends PacketList<AnyPacket> {
  stream?: { readToEnd?(join: (rest: AnyPacket[]) => AnyPacket[]): Promise<AnyPacket[]> } | null;
}

/**
 * openpgp.js parses packet lists lazily: packets after the first that could
 * stream (the encrypted data; in decrypted content, the literal data) wait in
 * `list.stream`. Pull them in, at every level,
 * so the list is whole, can be counted, and writes out every packet. A compressed
 * packet keeps its original compressed bytes for writing.
 */
async function completePackets(list: LazyPacketList, limits: OpenLimits): Promise<PacketList<AnyPacket>> {
  const whole = new openpgp.PacketList<AnyPacket>();
  whole.push(...list);
  if (list.stream?.readToEnd) whole.push(...(await list.stream.readToEnd((rest) => rest ?? [])));
  if (whole.length > limits.maxPackets) fail('TOO_MANY_PACKETS', `${whole.length} packets at one level`);
  for (const p of whole) {
    const nested = p as { packets?: LazyPacketList | null };
    if (tagOf(p) === TAG.compressedData && nested.packets) nested.packets = await completePackets(nested.packets, limits);
  }
  return whole;
}

type ByteSource = Uint8Array | { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } };

async function readAll(source: ByteSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  const reader = source.getReader();
  const parts: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value) parts.push(value);
  }
  return concatBytes(parts);
}

/**
 * A packet kept as the exact bytes of its body. Used for the packets inside the
 * encryption so the list re-seals what the sender made, byte for byte (including
 * the sender's compressed data, never recompressed). Only the length headers are
 * rewritten, in the new format; no signature covers them.
 */
function rawPacketClass(tag: number) {
  return class RawPacket {
    static get tag(): number {
      return tag;
    }
    body: Uint8Array = new Uint8Array(0);
    async read(bytes: ByteSource): Promise<void> {
      this.body = await readAll(bytes);
    }
    write(): Uint8Array {
      return this.body;
    }
  };
}

const RAW_INNER_PACKETS = [TAG.literalData, TAG.compressedData, TAG.onePassSignature, TAG.signature].map(rawPacketClass);

export interface Decrypted {
  /** The packets under the encryption, bodies byte for byte as the sender made them. */
  innerPackets: Uint8Array;
  /** The same packets parsed (decompressed within limits), all read, for verifying and reading. */
  message: PgpMessage;
}

function decryptError(e: unknown): never {
  if (isLetterlockError(e)) throw e;
  const text = e instanceof Error ? e.message : '';
  if (/decompressed message size/i.test(text)) fail('DECOMPRESSED_TOO_LARGE', undefined, e);
  if (/Modification detected|integrity|authentication tag|Unexpected session key|MDC/i.test(text)) fail('DECRYPTION_FAILED', undefined, e);
  fail('OPENPGP_MALFORMED', 'inside the encrypted data', e);
}

/** Decrypts with one private key under the limits. */
export async function decryptWithKey(message: PgpMessage, key: PrivateKey, limits: OpenLimits, date: Date): Promise<Decrypted> {
  const config = configFor(limits);
  let sessionKeys;
  try {
    sessionKeys = await openpgp.decryptSessionKeys({ message, decryptionKeys: key, date, config });
  } catch (e) {
    fail('WRONG_KEY', undefined, e);
  }
  const usable = sessionKeys.filter((k): k is openpgp.SessionKey => k.algorithm !== null);
  if (usable.length === 0) fail('WRONG_KEY');

  let innerPackets: Uint8Array;
  try {
    const decrypted = await message.decrypt(undefined, undefined, usable, date, { ...config, additionalAllowedPackets: RAW_INNER_PACKETS });
    innerPackets = (await completePackets(decrypted.packets, limits)).write();
  } catch (e) {
    decryptError(e);
  }
  try {
    // Parse again with openpgp's own packet classes: this decompresses (bounded by
    // maxDecompressedMessageSize) and enforces the grammar of a signed message.
    const parsed = await openpgp.readMessage({ binaryMessage: innerPackets, config });
    return { innerPackets, message: new openpgp.Message(await completePackets(parsed.packets, limits)) };
  } catch (e) {
    decryptError(e);
  }
}
