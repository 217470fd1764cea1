// Hand-made OpenPGP for hostile-input tests: packets that honest software does not
// produce (legacy unprotected encryption, compression bombs, doubled payloads).
// Encryption itself always goes through openpgp.js or the protocol core.

import { deflateSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { concatBytes, KeyRecipient, seal, type SessionKey } from '../../shared/index.ts';

/** A new-format packet header for `tag` and a body of `length` bytes. */
export function packetHeader(tag: number, length: number): Uint8Array {
  const first = 0xc0 | tag;
  if (length < 192) return new Uint8Array([first, length]);
  if (length < 8384) {
    const l = length - 192;
    return new Uint8Array([first, (l >> 8) + 192, l & 0xff]);
  }
  return new Uint8Array([first, 0xff, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]);
}

export function packet(tag: number, body: Uint8Array): Uint8Array {
  return concatBytes([packetHeader(tag, body.length), body]);
}

/** A literal data packet ('b', no file name, date 0). */
export function literalPacket(data: Uint8Array): Uint8Array {
  return packet(11, concatBytes([new Uint8Array([0x62, 0, 0, 0, 0, 0]), data]));
}

/** A compressed packet (ZLIB) whose literal content is `size` zero bytes. */
export function compressionBomb(size: number): Uint8Array {
  const literalHeader = concatBytes([packetHeader(11, size + 6), new Uint8Array([0x62, 0, 0, 0, 0, 0])]);
  const zeros = new Uint8Array(size);
  const deflated = deflateSync(concatBytes([literalHeader, zeros]), { level: 9 });
  return packet(8, concatBytes([new Uint8Array([2]), deflated]));
}

/** PKESK(to) ‖ SEIPD(inner): an integrity-protected message around arbitrary packets. */
export async function encryptPackets(inner: Uint8Array, to: openpgp.PublicKey): Promise<Uint8Array> {
  const sealed = await seal(inner);
  const pkesk = await (await KeyRecipient.fromPublicKey(to)).wrap(sealed.sessionKey);
  return concatBytes([pkesk, sealed.body]);
}

/** PKESK(to) ‖ SED (tag 9): the legacy encryption without integrity protection. */
export async function legacyUnprotected(inner: Uint8Array, to: openpgp.PublicKey): Promise<Uint8Array> {
  const sessionKey: SessionKey = { data: crypto.getRandomValues(new Uint8Array(32)), algorithm: 'aes256' };
  const sed = new openpgp.SymmetricallyEncryptedDataPacket() as unknown as {
    packets: { write(): Uint8Array };
    encrypt(algo: number, key: Uint8Array, config: openpgp.Config): Promise<void>;
    write(): Uint8Array;
  };
  sed.packets = { write: () => inner };
  await sed.encrypt(openpgp.enums.symmetric.aes256, sessionKey.data, { ...openpgp.config, allowUnauthenticatedMessages: true });
  const pkesk = await (await KeyRecipient.fromPublicKey(to)).wrap(sessionKey);
  return concatBytes([pkesk, packet(9, sed.write())]);
}

/**
 * Splits a packet sequence into (tag, body) pairs, reading old-format headers
 * (including indeterminate length) and new-format ones (including partial
 * lengths). Lets tests compare packet contents independent of framing.
 */
export function splitPackets(bytes: Uint8Array): Array<{ tag: number; body: Uint8Array }> {
  const out: Array<{ tag: number; body: Uint8Array }> = [];
  let i = 0;
  while (i < bytes.length) {
    const first = bytes[i++]!;
    if ((first & 0x80) === 0) throw new Error('not a packet header');
    if (first & 0x40) {
      const tag = first & 0x3f;
      const chunks: Uint8Array[] = [];
      for (;;) {
        const l0 = bytes[i++]!;
        let len: number;
        let partial = false;
        if (l0 < 192) len = l0;
        else if (l0 < 224) len = ((l0 - 192) << 8) + bytes[i++]! + 192;
        else if (l0 === 255) { len = (bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!; i += 4; }
        else { len = 1 << (l0 & 0x1f); partial = true; }
        chunks.push(bytes.subarray(i, i + len));
        i += len;
        if (!partial) break;
      }
      out.push({ tag, body: concatBytes(chunks) });
    } else {
      const tag = (first >> 2) & 0x0f;
      const type = first & 3;
      let len: number;
      if (type === 0) len = bytes[i++]!;
      else if (type === 1) { len = (bytes[i]! << 8) | bytes[i + 1]!; i += 2; }
      else if (type === 2) { len = (bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!; i += 4; }
      else len = bytes.length - i;
      out.push({ tag, body: bytes.subarray(i, i + len) });
      i += len;
    }
  }
  return out;
}
