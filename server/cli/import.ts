// Reading the sources of `letterlock member import`: an armored keyring (several
// public keys), a CSV (address,keyfile or address,armored key) or an mbox of mails
// that carry keys (application/pgp-keys attachments, armored blocks in the text,
// Autocrypt headers). Each source becomes a bounded list of entries, each one an
// address with a key, or a refusal saying why; registering them is the caller's job.

import { dirname, isAbsolute, join } from 'node:path';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { normalizeAddress } from '../lists/lists.ts';
import { holdsSecretKey, MAX_KEY_FILE_BYTES, readBoundedText } from './keyfile.ts';

/** The import file: a large mbox of key mails still fits; beyond that, split the file. */
export const MAX_IMPORT_BYTES = 64 * 1024 * 1024;
/** Entries per import (keys, rows or mails). */
export const MAX_IMPORT_ENTRIES = 50_000;
/** One mail of an mbox: a key mail is small; bigger ones are skipped, not parsed. */
export const MAX_MAIL_BYTES = 2 * 1024 * 1024;

export type ImportFormat = 'keyring' | 'csv' | 'mbox';

/** Refusals of the import itself; key policy refusals use the codes of shared/errors.ts. */
export const IMPORT_REASONS = {
  SECRET_KEY: 'a secret key: only public keys are imported, and the list never stores secret keys',
  NO_ADDRESS: 'no email address: the key has no user ID with an address, and none was given',
  BAD_ADDRESS: 'not a valid email address',
  NO_KEY: 'no public key found in this entry',
  KEY_FILE: 'the key file cannot be read',
  MAIL_TOO_LARGE: `the mail is larger than ${MAX_MAIL_BYTES / 1024 / 1024} MB`,
  MAIL_MALFORMED: 'the mail could not be read',
  CSV_MALFORMED: 'the row is not "address,keyfile" or "address,armored key"',
  DUPLICATE: 'the same address appears again later in the file (the later one is used)',
} as const;
export type ImportReason = keyof typeof IMPORT_REASONS;

export interface ImportEntry {
  /** Where it came from, for the summary: "key 3", "line 7", "mail 12". */
  where: string;
  address: string | null;
  /** Armored public key of exactly one key. */
  armored?: string;
  refused?: ImportReason;
}

export class ImportSourceError extends Error {
  override name = 'ImportSourceError';
}

export function detectFormat(text: string): ImportFormat {
  const start = text.trimStart();
  if (/^From \S/.test(text)) return 'mbox';
  if (start.startsWith('-----BEGIN PGP')) return 'keyring';
  return 'csv';
}

function tooMany(): never {
  throw new ImportSourceError(`more than ${MAX_IMPORT_ENTRIES} entries: split the file`);
}

const BLOCK = /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/** The address of a key: its primary user ID's email, else the first user ID with one. */
async function addressOf(key: openpgp.Key): Promise<string | null> {
  const primary = await key.getPrimaryUser().catch(() => null);
  const emails = [primary?.user.userID?.email, ...key.users.map((u) => u.userID?.email)].filter((e): e is string => Boolean(e));
  for (const e of emails) {
    try {
      return normalizeAddress(e);
    } catch { /* try the next */ }
  }
  return null;
}

/** Every key in armored text (several blocks, or one block of several keys); secret blocks are refusals. */
async function keysInText(text: string, where: (i: number) => string, given: string | null, out: ImportEntry[]): Promise<number> {
  let found = 0;
  for (const m of text.matchAll(BLOCK)) {
    if (out.length >= MAX_IMPORT_ENTRIES) tooMany();
    if (m[1] === 'PRIVATE') {
      // Named in the summary by its address when it can be read; never imported.
      const key = given ? null : await openpgp.readKey({ armoredKey: m[0] }).catch(() => null);
      out.push({ where: where(out.length), address: given ?? (key ? await addressOf(key) : null), refused: 'SECRET_KEY' });
      found++;
      continue;
    }
    const keys = await openpgp.readKeys({ armoredKeys: m[0] }).catch(() => null);
    if (!keys) {
      // Kept as one entry: the key policy names what is wrong (KEY_UNREADABLE).
      out.push({ where: where(out.length), address: given, armored: m[0] });
      found++;
      continue;
    }
    for (const key of keys) {
      if (out.length >= MAX_IMPORT_ENTRIES) tooMany();
      const address = given ?? (await addressOf(key));
      out.push(key.isPrivate() ? { where: where(out.length), address, refused: 'SECRET_KEY' }
        : address ? { where: where(out.length), address, armored: key.armor() } : { where: where(out.length), address: null, refused: 'NO_ADDRESS' });
      found++;
    }
  }
  return found;
}

async function fromKeyring(text: string): Promise<ImportEntry[]> {
  const out: ImportEntry[] = [];
  if ((await keysInText(text, (i) => `key ${i + 1}`, null, out)) === 0) throw new ImportSourceError('no OpenPGP key block found');
  return out;
}

/** RFC 4180 rows: quoted fields may hold commas, doubled quotes and line breaks (an armored key). */
export function csvRows(text: string): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else { if (c === '\n') line++; field += c; }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') { fields.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      if (fields.some((f) => f.trim() !== '')) rows.push({ line: rowLine, fields });
      if (rows.length > MAX_IMPORT_ENTRIES + 1) tooMany();
      fields = []; field = ''; line++; rowLine = line;
    } else field += c;
  }
  fields.push(field);
  if (fields.some((f) => f.trim() !== '')) rows.push({ line: rowLine, fields });
  return rows;
}

async function fromCsv(text: string, file: string): Promise<ImportEntry[]> {
  const out: ImportEntry[] = [];
  const rows = csvRows(text);
  for (const [n, { line, fields }] of rows.entries()) {
    const [addr = '', second = '', ...extra] = fields.map((f) => f.trim());
    const where = `line ${line}`;
    if (n === 0 && /^(e-?mail|address)$/i.test(addr)) continue; // a header row
    if (out.length >= MAX_IMPORT_ENTRIES) tooMany();
    let address: string;
    try {
      address = normalizeAddress(addr);
    } catch {
      out.push({ where, address: null, refused: addr ? 'BAD_ADDRESS' : 'CSV_MALFORMED' });
      continue;
    }
    if (!second || extra.some((f) => f !== '')) { out.push({ where, address, refused: 'CSV_MALFORMED' }); continue; }
    let keyText: string;
    if (second.startsWith('-----BEGIN PGP')) keyText = second;
    else {
      try {
        keyText = readBoundedText(isAbsolute(second) ? second : join(dirname(file), second), 'key file', MAX_KEY_FILE_BYTES);
      } catch {
        out.push({ where, address, refused: 'KEY_FILE' });
        continue;
      }
    }
    if (holdsSecretKey(keyText)) { out.push({ where, address, refused: 'SECRET_KEY' }); continue; }
    const before = out.length;
    const found = await keysInText(keyText, () => where, address, out);
    // One row, one member: a file with several keys for one address keeps the first.
    out.splice(before + 1);
    if (found === 0) out.push({ where, address, refused: 'NO_KEY' });
  }
  return out;
}

/** Splits an mbox (mboxrd/mboxo) at its "From " separator lines. */
export function mboxMails(text: string): string[] {
  const mails: string[] = [];
  const re = /^From [^\n]*\n/gm;
  let last = -1;
  for (const m of text.matchAll(re)) {
    if (last >= 0) mails.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (mails.length > MAX_IMPORT_ENTRIES) tooMany();
  }
  if (last >= 0) mails.push(text.slice(last));
  // mboxrd quoting: ">From " at a line start was "From ".
  return mails.map((m) => m.replace(/^>(>*From )/gm, '$1'));
}

/** `Autocrypt: addr=...; [prefer-encrypt=...;] keydata=BASE64` (folded). */
function autocrypt(value: string): { addr: string; keydata: Uint8Array } | null {
  const attrs = new Map<string, string>();
  for (const part of value.replace(/\r?\n[ \t]+/g, ' ').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) attrs.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  const addr = attrs.get('addr');
  const data = attrs.get('keydata');
  if (!addr || !data) return null;
  return { addr, keydata: new Uint8Array(Buffer.from(data.replace(/\s+/g, ''), 'base64')) };
}

async function fromMbox(text: string): Promise<ImportEntry[]> {
  const out: ImportEntry[] = [];
  const mails = mboxMails(text);
  if (mails.length === 0) throw new ImportSourceError('no mail found (an mbox starts with a "From " line)');
  for (const [i, raw] of mails.entries()) {
    const where = `mail ${i + 1}`;
    if (out.length >= MAX_IMPORT_ENTRIES) tooMany();
    if (raw.length > MAX_MAIL_BYTES) { out.push({ where, address: null, refused: 'MAIL_TOO_LARGE' }); continue; }
    let mail: Awaited<ReturnType<typeof PostalMime.parse>>;
    try {
      mail = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer', maxNestingDepth: 16, maxHeadersSize: 256 * 1024 });
    } catch {
      out.push({ where, address: null, refused: 'MAIL_MALFORMED' });
      continue;
    }
    let from: string | null = null;
    try {
      from = mail.from?.address ? normalizeAddress(mail.from.address) : null;
    } catch { /* no usable From: keys name their address */ }
    const before = out.length;
    // Autocrypt: the key of the address in addr= (which must be the sender's).
    for (const h of mail.headers.filter((x) => x.key === 'autocrypt').slice(0, 4)) {
      const ac = autocrypt(h.value);
      if (!ac) continue;
      const key = await openpgp.readKey({ binaryKey: ac.keydata }).catch(() => null);
      let addr: string | null = null;
      try { addr = normalizeAddress(ac.addr); } catch { /* refused below */ }
      if (!addr) out.push({ where, address: null, refused: 'BAD_ADDRESS' });
      else if (!key) out.push({ where, address: addr, refused: 'NO_KEY' });
      else if (key.isPrivate()) out.push({ where, address: addr, refused: 'SECRET_KEY' });
      else out.push({ where, address: addr, armored: key.armor() });
    }
    // Attachments (application/pgp-keys, or a key file name) and armored blocks in the text.
    const texts: string[] = [];
    for (const a of mail.attachments.slice(0, 16)) {
      const type = (a.mimeType ?? '').toLowerCase();
      if (type !== 'application/pgp-keys' && !/\.(asc|pub|key)$/i.test(a.filename ?? '')) continue;
      const bytes = new Uint8Array(a.content as ArrayBuffer);
      const asText = Buffer.from(bytes).toString('utf8');
      if (asText.includes('-----BEGIN PGP')) texts.push(asText);
      else {
        const key = await openpgp.readKey({ binaryKey: bytes }).catch(() => null);
        if (key?.isPrivate()) out.push({ where, address: from, refused: 'SECRET_KEY' });
        else if (key) out.push({ where, address: from ?? (await addressOf(key)), armored: key.armor() });
      }
    }
    if (mail.text) texts.push(mail.text);
    for (const t of texts) await keysInText(t, () => where, from, out);
    if (out.length === before) out.push({ where, address: from, refused: 'NO_KEY' });
    for (const e of out.slice(before)) if (!e.address && !e.refused) e.refused = 'NO_ADDRESS';
  }
  return out;
}

/** Later entries for the same address win (an mbox is oldest first); earlier ones are refusals. */
function laterWins(entries: ImportEntry[]): ImportEntry[] {
  const last = new Map<string, number>();
  entries.forEach((e, i) => { if (e.address && !e.refused) last.set(e.address, i); });
  return entries.map((e, i) => (e.address && !e.refused && last.get(e.address) !== i ? { ...e, armored: undefined, refused: 'DUPLICATE' as const } : e));
}

/** Reads FILE (bounded) and returns its entries. */
export async function readImportSource(file: string, format?: ImportFormat): Promise<{ format: ImportFormat; entries: ImportEntry[] }> {
  const text = readBoundedText(file, 'import file', MAX_IMPORT_BYTES);
  const f = format ?? detectFormat(text);
  const entries = f === 'keyring' ? await fromKeyring(text) : f === 'mbox' ? await fromMbox(text) : await fromCsv(text, file);
  if (entries.length === 0) throw new ImportSourceError('nothing to import in this file');
  return { format: f, entries: laterWins(entries) };
}
