// Scans files for a marker string: raw, and inside every base64 run and after
// quoted-printable decoding, so an encoded copy of plaintext is found too.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const s = statSync(p, { throwIfNoEntry: false });
      if (!s) continue;
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) out.push(p);
    }
  };
  walk(root);
  return out;
}

function decodeQuotedPrintable(text: string): Buffer {
  const soft = text.replace(/=\r?\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes);
}

/** Where the marker shows up in `data`: 'raw', 'base64', 'quoted-printable', or null. */
export function findMarker(data: Buffer, marker: string): string | null {
  const needle = Buffer.from(marker, 'utf8');
  if (data.includes(needle)) return 'raw';
  const text = data.toString('latin1');
  // Base64 runs, possibly folded into lines; decode at each of the 4 alignments.
  for (const m of text.matchAll(/[A-Za-z0-9+/]{8,}(?:={0,2})(?:\r?\n[A-Za-z0-9+/]{4,}={0,2})*/g)) {
    const run = m[0].replace(/\r?\n/g, '');
    for (let shift = 0; shift < 4; shift++) {
      if (Buffer.from(run.slice(shift), 'base64').includes(needle)) return 'base64';
    }
  }
  if (text.includes('=') && decodeQuotedPrintable(text).includes(needle)) return 'quoted-printable';
  return null;
}

export function scan(roots: string[], marker: string): Array<{ file: string; how: string }> {
  const hits: Array<{ file: string; how: string }> = [];
  for (const root of roots) {
    for (const file of listFiles(root)) {
      const how = findMarker(readFileSync(file), marker);
      if (how) hits.push({ file, how });
    }
  }
  return hits;
}
