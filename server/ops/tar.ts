// A minimal ustar (POSIX tar) writer and reader for the backup bundle: regular
// files with short names only. Tar rather than a format of our own, so that an
// operator without Letterlock can still recover: gpg --decrypt FILE | tar -x.

export interface TarEntry {
  name: string;
  data: Uint8Array;
}

export class TarError extends Error {
  override name = 'TarError';
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as tar(1) writes them.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mtime: number): Buffer {
  if (!/^[A-Za-z0-9._-]{1,99}$/.test(name)) throw new TarError(`tar: unsupported name ${JSON.stringify(name)}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'ascii');
  h.write(octal(0o600, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtime / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // the checksum counts itself as spaces
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(`${checksum(h).toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

function checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum;
}

export function packTar(entries: TarEntry[], mtime = Date.now()): Buffer {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(header(e.name, e.data.length, mtime), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

function field(h: Uint8Array, from: number, length: number): string {
  const raw = Buffer.from(h.subarray(from, from + length)).toString('latin1');
  const nul = raw.indexOf('\0');
  return (nul < 0 ? raw : raw.slice(0, nul)).trim();
}

/** Reads at most maxEntries regular files; anything else (links, devices, bad checksums, overruns) is refused. */
export function unpackTar(buf: Uint8Array, maxEntries: number): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return out;
    if (out.length >= maxEntries) throw new TarError(`tar: more than ${maxEntries} entries`);
    const sum = field(h, 148, 8);
    if (!/^[0-7]{1,7}$/.test(sum) || parseInt(sum, 8) !== checksum(h)) throw new TarError('tar: a header checksum does not match');
    const type = String.fromCharCode(h[156]!);
    if (type !== '0' && type !== '\0') throw new TarError('tar: an entry is not a regular file');
    const name = field(h, 0, 100);
    const sizeText = field(h, 124, 12);
    if (!/^[0-7]{1,11}$/.test(sizeText)) throw new TarError('tar: a size field is not a number');
    const size = parseInt(sizeText, 8);
    const start = off + BLOCK;
    if (start + size > buf.length) throw new TarError('tar: an entry runs past the end');
    out.push({ name, data: buf.subarray(start, start + size) });
    off = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new TarError('tar: the end-of-archive blocks are missing');
}
