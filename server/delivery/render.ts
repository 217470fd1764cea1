// Renders one queued copy into the mail sent to the relay: the post's shared
// headers, the recipient's list headers, and PGP/MIME around the armored
// OpenPGP message PKESK ‖ body. The armored body lines are computed once per
// post (per PKESK length class), so a copy costs a header and a short prefix,
// not a base64 pass over the whole body.

import { encryptedBodyFrame, writeHeaders, type DeliveryForm, type HeaderList } from '../../shared/index.ts';
import { markClean, passesUnchanged, piecesPassUnchanged, TERMINATOR_ROOM } from './data-stream.ts';

const LINE_BYTES = 48; // 64 base64 characters per armor line

function base64Lines(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return lines.join('\r\n');
}

// ---- CRC-24, the armor checksum (RFC 4880 section 6.1) -------------------------
// GnuPG 2.2 ends the radix-64 data only at '=': at the padding or at the CRC
// line. Armor without a CRC line whose data is a multiple of 3 bytes has no
// padding, so gpg reads "-----END PGP MESSAGE-----" as radix-64 ("invalid
// radix64 character 2D skipped", "invalid packet (ctb=10)") and exits 2: one copy
// in three (GnuPG T7071). openpgp.js writes the CRC line for the same reason.
// The CRC is linear over GF(2), so a copy's CRC(pkesk ‖ body) is combined from the
// body's CRC, computed once per post, and the PKESK's: no pass over the body per copy.

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x864cfb; // x^24 is implicit
const CRC24_TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 16;
    for (let j = 0; j < 8; j++) c = c & 0x800000 ? ((c << 1) ^ CRC24_POLY) & 0xffffff : (c << 1) & 0xffffff;
    t[i] = c;
  }
  return t;
})();

/** The CRC-24 register after `bytes`, starting from `crc` (RFC 4880's init value by default). */
function crc24(bytes: Uint8Array, crc: number = CRC24_INIT): number {
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) & 0xffffff) ^ CRC24_TABLE[((crc >>> 16) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** a·b mod P(x), for 24-bit polynomials over GF(2). */
function mulMod(a: number, b: number): number {
  let r = 0;
  for (let i = 23; i >= 0; i--) {
    r = r & 0x800000 ? ((r << 1) ^ CRC24_POLY) & 0xffffff : (r << 1) & 0xffffff;
    if ((b >>> i) & 1) r ^= a;
  }
  return r;
}

/** x^(8n) mod P(x): what running the register over n zero bytes multiplies it by. */
function zerosOperator(n: number): number {
  let result = 1;
  let power = 0x100; // x^8
  for (let k = n; k > 0; k = Math.floor(k / 2)) {
    if (k % 2) result = mulMod(result, power);
    power = mulMod(power, power);
  }
  return result;
}

/** What the register holds after `tail`, from any start, given crc24(tail, 0) and zerosOperator(tail.length). */
function crc24Continue(crc: number, tailZeroCrc: number, tailOperator: number): number {
  return mulMod(crc, tailOperator) ^ tailZeroCrc;
}

function crcLine(crc: number): string {
  return `\r\n=${Buffer.from([crc >>> 16, (crc >>> 8) & 0xff, crc & 0xff]).toString('base64')}`;
}

/**
 * True when the first packet is a v2 SEIPD (RFC 9580): an armored message that
 * ends in one MUST NOT carry the CRC line. (seal() makes v1, for GnuPG 2.2.)
 */
function isSeipdV2(body: Uint8Array): boolean {
  const b0 = body[0];
  if (b0 === undefined || !(b0 & 0x80)) return false;
  let tag: number, headerLength: number;
  if (b0 & 0x40) {
    tag = b0 & 0x3f;
    const l = body[1] ?? 0;
    headerLength = l < 192 || (l >= 224 && l < 255) ? 2 : l < 224 ? 3 : 6;
  } else {
    tag = (b0 >> 2) & 0x0f;
    headerLength = 1 + ([1, 2, 4, 0][b0 & 3] ?? 0);
  }
  return tag === 18 && body[headerLength] === 2;
}

/** A piece every copy of a post shares, with whether it passes the DATA encoder unchanged after a byte other than CR and LF. */
function shared(bytes: Buffer): { bytes: Buffer; clean: boolean } {
  return { bytes, clean: passesUnchanged(bytes, 0x41) };
}

/** The pieces of one post that every copy shares. */
export class PostRender {
  /** Per alignment: the body's armor lines after the first `skip` bytes, as bytes. */
  private readonly tails = new Map<number, { bytes: Buffer; clean: boolean }>();
  readonly headerText: string;
  private readonly frames: Record<DeliveryForm, { head: string; tail: string }>;
  private readonly closings: Record<DeliveryForm, { bytes: Buffer; clean: boolean }>;
  /** crc24(body, 0) and x^(8·|body|) mod P, or null when no CRC line is written. */
  private readonly bodyCrc: { zero: number; operator: number } | null;

  constructor(private readonly body: Uint8Array, headers: HeaderList, boundaryTag: string) {
    this.headerText = writeHeaders(headers);
    const boundary = `=_ll_${boundaryTag}`;
    this.frames = { 'pgp-mime': encryptedBodyFrame('pgp-mime', boundary), inline: encryptedBodyFrame('inline') };
    const closing = (form: DeliveryForm) => shared(Buffer.from(`\r\n-----END PGP MESSAGE-----\r\n${this.frames[form].tail}`, 'latin1'));
    this.closings = { 'pgp-mime': closing('pgp-mime'), inline: closing('inline') };
    this.bodyCrc = isSeipdV2(body) ? null : { zero: crc24(body, 0), operator: zerosOperator(body.byteLength) };
  }

  private tail(skip: number): { bytes: Buffer; clean: boolean } {
    let t = this.tails.get(skip);
    if (t === undefined) {
      t = shared(Buffer.from(skip < this.body.byteLength ? `\r\n${base64Lines(this.body.subarray(skip))}` : '', 'latin1'));
      this.tails.set(skip, t);
    }
    return t;
  }

  /**
   * The whole copy for one recipient: RFC 4880 armor of pkesk ‖ body, with its
   * CRC line, inside PGP/MIME, or as the whole text/plain body for subscribers who
   * read list mail in webmail. Only the headers, the first armor lines and the CRC
   * of the PKESK are made per copy.
   */
  mail(pkesk: Uint8Array, recipientHeaders: HeaderList, form: DeliveryForm = 'pgp-mime'): Buffer {
    return this.mailWithHeaderText(pkesk, writeHeaders(recipientHeaders), form);
  }

  /** As mail(), with the recipient's headers already written (header lines joined by CRLF, no final CRLF). */
  mailWithHeaderText(pkesk: Uint8Array, recipientHeaderText: string, form: DeliveryForm = 'pgp-mime'): Buffer {
    // The head is cut at a whole armor line (a multiple of 3 bytes), so its
    // base64 has no '=' padding unless it is the end of the data.
    const skip = (LINE_BYTES - (pkesk.byteLength % LINE_BYTES)) % LINE_BYTES;
    const head = new Uint8Array(pkesk.byteLength + Math.min(skip, this.body.byteLength));
    head.set(pkesk, 0);
    head.set(this.body.subarray(0, skip), pkesk.byteLength);
    const prefix =
      `${this.headerText}\r\n${recipientHeaderText}\r\n${this.frames[form].head}` +
      `-----BEGIN PGP MESSAGE-----\r\n\r\n${base64Lines(head)}`;
    const checksum = this.bodyCrc ? crcLine(crc24Continue(crc24(pkesk), this.bodyCrc.zero, this.bodyCrc.operator)) : '';
    const tail = this.tail(skip);
    const closing = this.closings[form];
    // Written straight into one buffer, with room after it for the DATA terminator (data-stream.ts).
    const prefixLength = Buffer.byteLength(prefix, 'utf8');
    const checksumAt = prefixLength + tail.bytes.length;
    const closingAt = checksumAt + checksum.length;
    const total = closingAt + closing.bytes.length;
    const room = Buffer.allocUnsafe(total + TERMINATOR_ROOM);
    room.write(prefix, 0, 'utf8');
    tail.bytes.copy(room, prefixLength);
    room.write(checksum, checksumAt, 'latin1');
    closing.bytes.copy(room, closingAt);
    const copy = room.subarray(0, total);
    const pieces = [copy.subarray(0, prefixLength), tail.bytes, copy.subarray(checksumAt, closingAt), closing.bytes];
    // The relay's DATA encoder need not scan the copy when its pieces are clean: the
    // shared ones were checked once per post, the small per-copy ones are checked here.
    return piecesPassUnchanged(pieces, [null, tail.clean, null, closing.clean]) ? markClean(copy, room) : copy;
  }
}
