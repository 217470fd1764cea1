// Scans files for a marker string: raw, and inside every base64 run and after
// quoted-printable decoding, so an encoded copy of plaintext is found too.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Every regular file under `root`. A running daemon (PostgreSQL rewrites
 * pg_internal.init by rename, Postfix moves queue files) can remove a file or
 * folder between the listing and the read; what is gone is no longer on disk, so
 * it is skipped rather than failing the scan.
 */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if (gone(e) && dir !== root) return;
      throw e;
    }
    for (const name of names) {
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

/** The bytes of a listed file, or null when it was removed since the listing (see listFiles). */
export function readListed(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch (e) {
    if (gone(e)) return null;
    throw e;
  }
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
      const bytes = readListed(file);
      const how = bytes && findMarker(bytes, marker);
      if (how) hits.push({ file, how });
    }
  }
  return hits;
}

/**
 * Reads every value of every column of every table in the PostgreSQL database at
 * `url` (the schema `public`) through SQL, and looks for the marker in each. A
 * value PostgreSQL compressed (TOAST) is not in clear in the cluster's files, so a
 * raw scan of those cannot see it; a SELECT returns it decompressed. bytea comes back
 * as its bytes, anything else cast to text. Returns the hits and how many values were read.
 */
export async function scanDatabase(url: string, marker: string): Promise<{ hits: Array<{ column: string; how: string }>; values: number; tables: number }> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const cols = await c.query<{ t: string; col: string; type: string }>(
      "SELECT c.table_name AS t, c.column_name AS col, c.data_type AS type FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name) WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY 1, 2",
    );
    const hits: Array<{ column: string; how: string }> = [];
    let values = 0;
    const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
    for (const { t, col, type } of cols.rows) {
      const expr = type === 'bytea' ? q(col) : `${q(col)}::text`;
      const r = await c.query<{ v: Buffer | string | null }>(`SELECT ${expr} AS v FROM ${q(t)} WHERE ${q(col)} IS NOT NULL`);
      for (const { v } of r.rows) {
        if (v === null) continue;
        values++;
        const how = findMarker(Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'), marker);
        if (how) hits.push({ column: `${t}.${col}`, how });
      }
    }
    return { hits, values, tables: new Set(cols.rows.map((r) => r.t)).size };
  } finally {
    await c.end();
  }
}
