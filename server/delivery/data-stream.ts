// A faster DATA encoder for the relay's SMTP client. nodemailer's DataStream
// (dot-stuffing, bare CR/LF to CRLF, RFC 5321 4.5.2) looks at every byte of every
// copy in JavaScript: measured on a 10,000-copy fan-out it was the main thread's
// largest single cost (about a sixth of its time). Our copies are already CRLF mail
// with no line starting with a dot (armor and header lines), so there is nothing to
// change: this checks that with the native Buffer.indexOf, line by line, and passes
// such a chunk through untouched. Any chunk that needs a change (or that is not a
// Buffer) goes to nodemailer's own code, so the bytes on the wire are the same as
// before in every case (test/unit/server/data-stream.test.ts compares both on random
// input). Installed once, on nodemailer's DataStream prototype, by importing this module.

import DataStream from 'nodemailer/lib/smtp-connection/data-stream';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

type Transform = (this: DataStream, chunk: unknown, encoding: BufferEncoding, done: (err?: Error | null) => void) => void;

/** True when nodemailer's encoder would leave `chunk` (after `lastByte`) unchanged. */
export function passesUnchanged(chunk: Buffer, lastByte: number | false): boolean {
  const first = chunk[0]!;
  // What the previous chunk's last byte asks of this one.
  if (lastByte === CR && first !== LF) return false;
  if (first === DOT && (lastByte === LF || lastByte === false)) return false;
  // Every LF after a CR and not followed by a dot; every CR followed by an LF (a CR at
  // the very end is judged with the next chunk, as nodemailer does).
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
    if ((i === 0 ? lastByte : chunk[i - 1]) !== CR || chunk[i + 1] === DOT) return false;
  }
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) {
    if (i + 1 < chunk.length && chunk[i + 1] !== LF) return false;
  }
  return true;
}

/**
 * Copies the server built itself and proved clean piece by piece (render.ts: the
 * per-post pieces are checked once per post, the per-copy ones per copy), so the
 * encoder need not scan their bytes again. Only whole copies at the start of the data
 * are trusted this way; such a buffer must never be changed after it was marked.
 */
const provenClean = new WeakMap<Buffer, Buffer | null>();

/** Room a copy needs after its end for the data's terminator ("\r\n.\r\n" at most). */
export const TERMINATOR_ROOM = 5;

/**
 * Marks `copy` as one for which passesUnchanged(copy, false) holds (the caller proved
 * it). `room`, when given, is the copy's own buffer with TERMINATOR_ROOM spare bytes
 * after it (copy = room.subarray(0, copy.length)), which nothing else uses: the end
 * of the data is written there instead of copying the whole copy once more.
 */
export function markClean(copy: Buffer, room: Buffer | null = null): Buffer {
  provenClean.set(copy, room !== null && room.buffer === copy.buffer && room.byteOffset === copy.byteOffset && room.length >= copy.length + TERMINATOR_ROOM ? room : null);
  return copy;
}

/** True when `copy` was marked by markClean. */
export function isMarkedClean(copy: Buffer): boolean {
  return provenClean.has(copy);
}

/**
 * passesUnchanged over pieces that will be joined in this order, scanning only those
 * not known clean: `known` holds, per piece, true when it was checked before to pass
 * after any byte other than CR and LF (null: check it now).
 */
export function piecesPassUnchanged(pieces: readonly Buffer[], known: readonly (boolean | null)[]): boolean {
  let last: number | false = false;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (piece.length === 0) continue;
    const k = known[i];
    if (k === null || k === undefined || last === false || last === CR || last === LF) {
      if (!passesUnchanged(piece, last)) return false;
    } else if (!k) return false;
    last = piece[piece.length - 1]!;
  }
  return true;
}

type Flush = (this: DataStream, done: (err?: Error | null) => void) => void;
type Held = DataStream & { __held?: Buffer | null };
const proto = DataStream.prototype as unknown as { _transform: Transform; _flush: Flush; __letterlockOriginal?: Transform; __letterlockOriginalFlush?: Flush };

/** Chunks passed through untouched, and of those the ones not scanned (marked clean); the tests check the relay's client uses these paths. */
export const fastPath = { chunks: 0, trusted: 0 };

/** nodemailer's own encoder (for the tests' comparison). */
export const originalTransform: Transform = proto.__letterlockOriginal ?? proto._transform;
export const originalFlush: Flush = proto.__letterlockOriginalFlush ?? proto._flush;

/** The end of the data as nodemailer writes it, after `lastByte`. */
function terminator(lastByte: number | false): Buffer {
  return Buffer.from(lastByte === LF ? '.\r\n' : lastByte === CR ? '\n.\r\n' : '\r\n.\r\n', 'latin1');
}

if (!proto.__letterlockOriginal) {
  const original = originalTransform;
  const originalEnd = originalFlush;
  // A clean chunk is held until the next one or the end, so that a whole copy and the
  // final "." go to the socket in one write (one loopback write per copy fewer).
  const release = (s: Held) => {
    if (s.__held) s.push(s.__held);
    s.__held = null;
  };
  proto._transform = function (this: Held, chunk, encoding, done) {
    // Only a non-empty Buffer, and only on a DataStream whose counters look as expected.
    if (Buffer.isBuffer(chunk) && chunk.length > 0 && typeof this.inByteCount === 'number' && typeof this.outByteCount === 'number' &&
      (this.lastByte === false || typeof this.lastByte === 'number') &&
      ((this.lastByte === false && provenClean.has(chunk) && ++fastPath.trusted > 0) || passesUnchanged(chunk, this.lastByte))) {
      release(this);
      this.inByteCount += chunk.length;
      this.outByteCount += chunk.length;
      this.lastByte = chunk[chunk.length - 1]!;
      fastPath.chunks++;
      this.__held = chunk;
      done();
      return;
    }
    release(this);
    original.call(this, chunk, encoding, done);
  };
  proto._flush = function (this: Held, done) {
    const held = this.__held;
    if (!held) return originalEnd.call(this, done);
    this.__held = null;
    const end = terminator(this.lastByte);
    this.outByteCount += end.length;
    const room = provenClean.get(held);
    if (room) {
      end.copy(room, held.length); // the spare bytes after a rendered copy: no 15 KB copy per message
      this.push(room.subarray(0, held.length + end.length));
    } else {
      this.push(Buffer.concat([held, end], held.length + end.length));
    }
    done();
  };
  proto.__letterlockOriginal = original;
  proto.__letterlockOriginalFlush = originalEnd;
}

export { DataStream };
