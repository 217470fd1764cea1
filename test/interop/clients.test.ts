// Posts in, from every common client, read out by every OpenPGP implementation (issue 9,
// "How it is checked"). The corpus is made here by the real tools: GnuPG in both RFC 3156
// forms and inline, gpgme-style §6.1 (a multipart/signed, then encrypted), RNP and Sequoia
// as senders with keys they made themselves, members with a separate signing subkey, NIST
// and RSA keys, a post with a second (non-member) signature, and hand-shaped MIME for the
// Exchange-mangled and HTML-ified inline shapes. Every post goes through the real list
// server over SMTP; the copy each reaches a subscriber with is decrypted by gpg, rnp, sq and
// sqop, which must exit 0, report the author's good signature and print exactly the bytes
// the author signed, and the copy must keep the client's threading headers.
//
// Everything slow happens once in beforeAll (keys made in parallel, posts made and tool
// calls run a few at a time); each case then asserts on what its post produced.

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { findPayload, INTENDED_RECIPIENT_SUBPACKET } from '../../shared/index.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData, startServer, type RunningServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config/config.ts';
import { createEventLog } from '../../server/log/log.ts';
import { createList } from '../../server/lists/lists.ts';
import { registerMember } from '../../server/lists/members.ts';
import { initData, listPublicKey, SECRET, send, Sink, tempDir } from '../integration/server/harness.ts';
import { Gpg } from '../support/gpg.ts';
import { makeKindKey, OpenPgpTools, TOOLS, type KindKey, type Tool, type Verdict } from '../support/openpgp-tools.ts';

const LIST = 'clients@lists.test';
const PASS = 'client-pass';

// ---- running the tools ------------------------------------------------------------

interface Run { code: number; stdout: Buffer; stderr: string }

function run(cmd: string, args: string[], input?: Uint8Array | string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 180_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(input === undefined ? undefined : Buffer.from(input));
  });
}

async function mustRun(cmd: string, args: string[], input?: Uint8Array | string): Promise<Run> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** At most `n` calls of `f` at once: a busy 2-core machine, and each tool call is a process. */
async function inPool<T, R>(items: T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  }));
  return out;
}

// ---- senders, each with a key made by its own tool ----------------------------------

interface Sender {
  name: string;
  address: string;
  /** Primary-key fingerprint, upper case. */
  fingerprint: string;
  /** The 16-hex key IDs of the primary key and every subkey (rnp and sq name the signing key by its ID). */
  keyIds: string[];
  publicArmored: string;
  /** Signs `data` as binary (no text mode) and encrypts it to the list key; armored. */
  signEncrypt(data: Uint8Array, extra?: string[]): Promise<string>;
  /** Encrypts without signing (the §6.1 form signs inside the MIME entity). */
  encrypt(data: Uint8Array): Promise<string>;
}

async function keyIdsOf(armored: string): Promise<string[]> {
  const key = await openpgp.readKey({ armoredKey: armored });
  return key.getKeys().map((k) => k.getKeyID().toHex().toUpperCase());
}

let listFpr = '';
let listCertFile = '';

/**
 * A gpg member: `primary` and `subkeys` as gpg --quick-gen-key / --quick-add-key take them
 * ([algorithm, usage]), or a separate signing subkey when the primary is certify-only.
 */
async function gpgSender(name: string, address: string, primary: [string, string], subkeys: Array<[string, string]>): Promise<Sender & { gpg: Gpg }> {
  const gpg = new Gpg();
  const made = await gpg.mustRun(['--quick-generate-key', `${name} <${address}>`, primary[0], primary[1], '0'], undefined, PASS);
  const fpr = /KEY_CREATED \w (\w+)/.exec(made.stderr)![1]!;
  for (const [algo, usage] of subkeys) await gpg.mustRun(['--quick-add-key', fpr, algo, usage, '0'], undefined, PASS);
  const publicArmored = (await gpg.mustRun(['--armor', '--export', fpr])).stdout.toString();
  return {
    gpg, name, address, fingerprint: fpr, keyIds: await keyIdsOf(publicArmored), publicArmored,
    signEncrypt: async (data, extra = []) =>
      (await gpg.mustRun(['--armor', '--sign', '--encrypt', '--local-user', fpr, ...extra, '--recipient', listFpr], data, PASS)).stdout.toString(),
    encrypt: async (data) => (await gpg.mustRun(['--armor', '--encrypt', '--recipient', listFpr], data)).stdout.toString(),
  };
}

/** RNP as Thunderbird uses it: rnpkeys makes the key with its defaults (RSA 2048 in rnp 0.16). */
async function rnpSender(dir: string, name: string, address: string): Promise<Sender> {
  const home = join(dir, 'rnp-sender');
  mkdirSync(home, { mode: 0o700 });
  await mustRun('rnpkeys', ['--homedir', home, '--generate-key', '--userid', `${name} <${address}>`, '--password', '']);
  const publicArmored = (await mustRun('rnpkeys', ['--homedir', home, '--export', address])).stdout.toString();
  const key = await openpgp.readKey({ armoredKey: publicArmored });
  let listImported: Promise<Run> | undefined;
  let n = 0;
  const io = (data: Uint8Array) => {
    const file = join(dir, `rnp-in-${n++}`);
    writeFileSync(file, data);
    return file;
  };
  return {
    name, address, fingerprint: key.getFingerprint().toUpperCase(), keyIds: await keyIdsOf(publicArmored), publicArmored,
    signEncrypt: async (data) => {
      const file = io(data);
      // Once, before the first post (parallel imports into one keyring would race).
      listImported ??= mustRun('rnpkeys', ['--homedir', home, '--import', listCertFile]);
      await listImported;
      return (await mustRun('rnp', ['--homedir', home, '--notty', '--password', '', '--sign', '--encrypt', '--armor', '-u', address, '-r', listFpr, '--output', '-', file])).stdout.toString();
    },
    encrypt: () => Promise.reject(new Error('not used')),
  };
}

/** Sequoia's sq: `sq key generate` (its default cv25519 suite, with a signing subkey) and `sq encrypt --signer-key`. */
async function sqSender(dir: string, name: string, address: string): Promise<Sender> {
  const keyFile = join(dir, 'sq-sender.key');
  const certFile = join(dir, 'sq-sender.cert');
  await mustRun('sq', ['key', 'generate', '--userid', `${name} <${address}>`, '--export', keyFile]);
  await mustRun('sq', ['key', 'extract-cert', '--output', certFile, keyFile]);
  const publicArmored = readFileSync(certFile, 'utf8');
  const key = await openpgp.readKey({ armoredKey: publicArmored });
  return {
    name, address, fingerprint: key.getFingerprint().toUpperCase(), keyIds: await keyIdsOf(publicArmored), publicArmored,
    signEncrypt: async (data) => (await mustRun('sq', ['encrypt', '--signer-key', keyFile, '--recipient-cert', listCertFile], data)).stdout.toString(),
    encrypt: () => Promise.reject(new Error('not used')),
  };
}

// ---- post shapes -----------------------------------------------------------------

const CRLF = '\r\n';
const bytes = (s: string) => Buffer.from(s, 'utf8');
let seq = 0;

interface Threading { messageId: string; inReplyTo: string; references: string[] }

function threading(tag: string): Threading {
  const n = seq++;
  const root = `<root-${tag}-${n}@client.example>`;
  const parent = `<parent-${tag}-${n}@client.example>`;
  return { messageId: `<post-${tag}-${n}-${Date.now().toString(36)}@client.example>`, inReplyTo: parent, references: [root, parent] };
}

function outerHeaders(s: Sender, subject: string, t: Threading): string[] {
  return [
    `From: ${s.name} <${s.address}>`, `To: <${LIST}>`, `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`,
    `Message-ID: ${t.messageId}`, `In-Reply-To: ${t.inReplyTo}`, `References: ${t.references.join(' ')}`, 'MIME-Version: 1.0',
  ];
}

/** RFC 3156 multipart/encrypted, as Thunderbird, Enigmail and gpgme clients send it. */
function pgpMime(headers: string[], armored: string): string {
  const b = `enc-${seq++}`;
  return [
    ...headers, `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${b}"`, '',
    'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)', `--${b}`,
    'Content-Type: application/pgp-encrypted', 'Content-Description: PGP/MIME version identification', '', 'Version: 1', '', `--${b}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"', 'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc"', '', armored.replace(/\r?\n/g, CRLF).trimEnd(), '', `--${b}--`, '',
  ].join(CRLF);
}

/** The same two parts as Exchange/Outlook deliver them: attachments of a multipart/mixed, base64. */
function exchangeMangled(headers: string[], armored: string, emptyTextPart: boolean): string {
  const b = `exch-${seq++}`;
  const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, `$&${CRLF}`);
  const parts = [
    ...(emptyTextPart ? [`Content-Type: text/plain; charset="us-ascii"${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${CRLF}`] : []),
    `Content-Type: application/pgp-encrypted${CRLF}Content-Disposition: attachment; filename="PGPMIME Versions Identification"${CRLF}` +
      `Content-Description: PGP/MIME Versions Identification${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${b64('Version: 1\r\n')}${CRLF}`,
    `Content-Type: application/octet-stream; name="encrypted.asc"${CRLF}Content-Disposition: attachment; filename="encrypted.asc"${CRLF}` +
      `Content-Description: OpenPGP encrypted message.asc${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${b64(armored)}${CRLF}`,
  ];
  return [...headers, `Content-Type: multipart/mixed; boundary="${b}"`, '', parts.map((p) => `--${b}${CRLF}${p}`).join('') + `--${b}--`, ''].join(CRLF);
}

function singlePart(headers: string[], contentType: string, cte: string, body: string): string {
  return [...headers, `Content-Type: ${contentType}`, `Content-Transfer-Encoding: ${cte}`, '', body, ''].join(CRLF);
}

/** Armor lines of a gpg output, optionally without its CRC line. */
function armorLines(armored: string, crc: boolean): string[] {
  const lines = armored.replace(/\r?\n$/, '').split(/\r?\n/);
  return crc ? lines : lines.filter((l) => !/^=[A-Za-z0-9+/]{4}$/.test(l));
}

function qpEncode(text: string): string {
  // Each line stays under 76 characters here (armor lines are 64); "=" and 8-bit bytes are escaped.
  return Array.from(Buffer.from(text, 'utf8'), (c) => (c === 0x3d || c > 0x7e ? `=${c.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(c))).join('');
}

/** A §6.2 MIME entity: plain, or with RFC 9788 / "v1" protected headers and a legacy display part. */
function mimeEntity(s: Sender, text: string, protectedSubject: string | null, t: Threading): Buffer {
  // Each post's signed content is its own (the post's id in the text): a list accepts a signature once.
  text = `${text}(${t.messageId})\r\n`;
  if (protectedSubject === null) {
    return bytes(['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text, ''].join(CRLF));
  }
  const b = `ph-${seq++}`;
  return bytes([
    `Content-Type: multipart/mixed; boundary="${b}"; protected-headers="v1"`,
    `Subject: ${protectedSubject}`, `From: ${s.name} <${s.address}>`, `To: <${LIST}>`, `Message-ID: ${t.messageId}`, '',
    `--${b}`, 'Content-Type: text/rfc822-headers; protected-headers="v1"', 'Content-Disposition: inline', '', `Subject: ${protectedSubject}`, '',
    `--${b}`, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text, '', `--${b}--`, '',
  ].join(CRLF));
}

/**
 * A multipart/signed as Evolution, KMail and Mutt (gpgme) make it: a detached gpg
 * signature over the first part's exact bytes (CRLF, as RFC 3156 §5 wants them signed).
 */
async function gpgmeSigned(s: Sender & { gpg: Gpg }, protectedSubject: string | null, lineEnd: string): Promise<Buffer> {
  const b = `signed-${seq++}`;
  // Unique per post: Ed25519 signatures are deterministic, and the list accepts a signature once.
  const part = ['Content-Type: text/plain; charset=iso-8859-1', 'Content-Transfer-Encoding: 8bit', '', `Signed first, then encrypted (${b}). Gr\xfc\xdfe (8-bit latin-1).`, ''].join(CRLF);
  const partBytes = Buffer.from(part, 'latin1');
  const sig = (await s.gpg.mustRun(['--armor', '--detach-sign', '--digest-algo', 'SHA256', '--local-user', s.fingerprint], partBytes, PASS)).stdout.toString();
  const head = [
    `Content-Type: multipart/signed; micalg=pgp-sha256;${lineEnd} protocol="application/pgp-signature"; boundary="${b}"`,
    ...(protectedSubject === null ? [] : [`Subject: ${protectedSubject}`, `From: ${s.name} <${s.address}>`, `To: <${LIST}>`]),
    'MIME-Version: 1.0',
  ].join(lineEnd);
  const text = `${head}${lineEnd}${lineEnd}This is an OpenPGP/MIME signed message (RFC 4880 and 3156)${lineEnd}--${b}${lineEnd}` +
    `${part.replace(/\r\n/g, lineEnd)}${lineEnd}--${b}${lineEnd}Content-Type: application/pgp-signature; name="signature.asc"${lineEnd}` +
    `Content-Description: OpenPGP digital signature${lineEnd}${lineEnd}${sig.replace(/\r?\n/g, lineEnd)}${lineEnd}--${b}--${lineEnd}`;
  return Buffer.from(text, 'latin1');
}

/** What a mail client verifying a §6.1 entity checks: the first part, canonical CRLF, and the detached signature. */
function splitSigned(entity: Buffer): { part: Buffer; signature: string } {
  const text = entity.toString('latin1');
  const boundary = /boundary="?([^";\s]+)"?/i.exec(text)?.[1];
  if (!boundary) throw new Error('no boundary in the multipart/signed');
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${boundary.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n`, 'g');
  const pieces = text.split(delimiter);
  if (pieces.length < 4) throw new Error(`multipart/signed has ${pieces.length - 2} parts`);
  const signature = /-----BEGIN PGP SIGNATURE-----[\s\S]*?-----END PGP SIGNATURE-----/.exec(pieces[2]!)?.[0];
  if (!signature) throw new Error('no signature part');
  return { part: Buffer.from(pieces[1]!.replace(/\r?\n/g, CRLF), 'latin1'), signature };
}

// ---- the corpus --------------------------------------------------------------------

interface Case {
  name: string;
  author: Sender;
  /** 'inline': the OpenPGP message carries the signature; 'detached': §6.1, the signature is a MIME part inside. */
  signature: 'inline' | 'detached';
  /**
   * The list delivers this inline-signed post in §6.1 form, the same signature detached beside the
   * signed entity, because the signature names the list as its intended recipient (shared/post/detach.ts).
   */
  deliveredDetached?: boolean;
  /** Further signers whose good signature the tools may also report (the two-signature post). */
  alsoSigned?: Sender[];
  /** Signed by a signing subkey (the primary can only certify). */
  bySubkey?: boolean;
  threading: Threading;
  raw: string;
  /** Exactly what the author signed: what every tool must print. */
  signed: Buffer;
  /** The protected subject inside, if the post has one. */
  protectedSubject?: string;
  // Filled in beforeAll.
  response?: string;
  refused?: string;
  copy?: Buffer;
  verdicts?: Record<Tool, Verdict>;
  detachedCheck?: { code: number; status: string[]; stderr: string };
  /** For deliveredDetached: each tool's check of the detached signature in the copy. */
  detachedVerdicts?: Record<Tool, Verdict>;
  /** For deliveredDetached: the detached signature block found in the copy. */
  detachedSignature?: string;
}

let sink: Sink;
let dataDir: string;
let server: RunningServer;
let tools: OpenPgpTools;
let verifier: Gpg; // the reader's gpg, for §6.1 detached signatures
let reader: KindKey;
let work: string;
const cases = new Map<string, Case>();

type GpgSender = Sender & { gpg: Gpg };
let senders: {
  gpg: GpgSender; mallory: GpgSender; sub: GpgSender; p256: GpgSender; p384: GpgSender; rsa2048: GpgSender; rsa4096: GpgSender;
  rnp: Sender; sq: Sender;
};

async function buildCorpus(): Promise<Case[]> {
  const s = senders;
  const built: Array<() => Promise<Case>> = [];
  const text = (who: string) => `Hello list, this is ${who}.\r\nGrüße, ✓ and a line with trailing space \r\n-- \r\n${who}\r\n`;

  // §6.2 combined, a MIME entity signed and encrypted in one OpenPGP message.
  const combined = (name: string, a: Sender, protectedSubject: string | null, extra?: { also?: Sender[]; args?: string[]; bySubkey?: boolean; deliveredDetached?: boolean }) => built.push(async () => {
    const t = threading(name.replace(/\W+/g, '-'));
    const signed = mimeEntity(a, text(a.name), protectedSubject, t);
    const armored = await a.signEncrypt(signed, extra?.args);
    const raw = pgpMime(outerHeaders(a, protectedSubject === null ? `Clear subject from ${a.name}` : '...', t), armored);
    return { name, author: a, signature: 'inline', threading: t, raw, signed, ...(protectedSubject ? { protectedSubject } : {}), ...(extra?.also ? { alsoSigned: extra.also } : {}), ...(extra?.bySubkey ? { bySubkey: true } : {}), ...(extra?.deliveredDetached ? { deliveredDetached: true } : {}) };
  });
  combined('gpg, §6.2 with protected headers "v1"', s.gpg, 'Protected subject from gpg ✓');
  combined('gpg, §6.2 without protected headers', s.gpg, null);
  combined('rnp as sender (RSA 2048 key made by rnpkeys), §6.2 with protected headers', s.rnp, 'Protected subject from rnp');
  combined('sq as sender (key made by sq key generate), §6.2', s.sq, null, { deliveredDetached: true });
  combined('gpg member with a certify-only primary and a signing subkey', s.sub, 'Signed by a subkey', { bySubkey: true });
  combined('gpg NIST P-256 member', s.p256, null);
  combined('gpg NIST P-384 member', s.p384, null);
  combined('gpg RSA 2048 member', s.rsa2048, null);
  combined('gpg RSA 4096 member', s.rsa4096, null);
  combined('two signatures: the member\'s and a non-member\'s', s.gpg, null, { also: [s.mallory], args: ['--local-user', s.mallory.fingerprint] });

  // §6.1, gpgme style: multipart/signed, then encrypted without an OpenPGP signature around it.
  for (const [name, protectedSubject, lineEnd] of [['CRLF, protected headers', 'Protected subject, signed then encrypted', CRLF], ['LF, no protected headers', null, '\n']] as const) {
    built.push(async () => {
      const t = threading('gpgme');
      const signed = await gpgmeSigned(s.gpg, protectedSubject, lineEnd);
      const raw = pgpMime(outerHeaders(s.gpg, protectedSubject ? '...' : 'Clear §6.1 subject', t), await s.gpg.encrypt(signed));
      return { name: `gpgme-style §6.1 sign-then-encrypt (${name})`, author: s.gpg, signature: 'detached', threading: t, raw, signed, ...(protectedSubject ? { protectedSubject } : {}) };
    });
  }

  // Exchange/Outlook-mangled PGP/MIME, with and without the empty text part.
  for (const emptyText of [true, false]) {
    built.push(async () => {
      const t = threading('exchange');
      const signed = mimeEntity(s.gpg, text('Exchange'), 'Through Exchange', t);
      const raw = exchangeMangled(outerHeaders(s.gpg, '...', t), await s.gpg.signEncrypt(signed), emptyText);
      return { name: `Exchange-mangled PGP/MIME ${emptyText ? 'with' : 'without'} the empty text part`, author: s.gpg, signature: 'inline', threading: t, raw, signed, protectedSubject: 'Through Exchange' };
    });
  }

  // Inline armor: `gpg --armor --sign --encrypt` of plain text, in the bodies webmail and scripts make.
  const inline = (name: string, args: string[], shape: (armored: string) => { contentType: string; cte: string; body: string }) => built.push(async () => {
    const t = threading('inline');
    const signed = bytes(`Inline post (${name}).\nGrüße ✓\n`);
    const { contentType, cte, body } = shape(await s.gpg.signEncrypt(signed, args));
    return { name: `inline ${name}`, author: s.gpg, signature: 'inline', threading: t, raw: singlePart(outerHeaders(s.gpg, `Inline: ${name}`, t), contentType, cte, body), signed };
  });
  inline('text/plain 7bit, CRLF, with CRC', [], (a) => ({ contentType: 'text/plain; charset=us-ascii', cte: '7bit', body: armorLines(a, true).join(CRLF) }));
  inline('text/plain 7bit, CRLF, without CRC', [], (a) => ({ contentType: 'text/plain; charset=us-ascii', cte: '7bit', body: armorLines(a, false).join(CRLF) }));
  inline('text/plain quoted-printable, with CRC', [], (a) => ({
    contentType: 'text/plain; charset=utf-8', cte: 'quoted-printable', body: qpEncode(`Grüße,${CRLF}${CRLF}${armorLines(a, true).join(CRLF)}${CRLF}`),
  }));
  inline('text/plain base64, LF inside, without CRC', [], (a) => ({
    contentType: 'text/plain; charset=utf-8', cte: 'base64', body: Buffer.from(`Hi,\n\n${armorLines(a, false).join('\n')}\n`).toString('base64').replace(/.{76}/g, `$&${CRLF}`),
  }));
  inline('text/plain base64, CRLF inside, with CRC and Version/Comment headers', ['--emit-version', '--comment', 'Sent with a client'], (a) => ({
    contentType: 'text/plain; charset=utf-8', cte: 'base64', body: Buffer.from(`${armorLines(a, true).join(CRLF)}${CRLF}`).toString('base64').replace(/.{76}/g, `$&${CRLF}`),
  }));
  inline('HTML as Gmail makes it (<div> per line, &nbsp;, &#43;)', ['--comment', 'Sent from webmail'], (a) => ({
    contentType: 'text/html; charset=utf-8', cte: '7bit',
    body: `<div dir="ltr">${armorLines(a, true).map((l) => (l === '' ? '<div><br></div>' : `<div>${l.replace(/\+/g, '&#43;').replace(/ /g, '&nbsp;')}</div>`)).join(CRLF)}</div>`,
  }));
  inline('HTML as Outlook on the web makes it (<p>, <br>)', [], (a) => ({
    contentType: 'text/html; charset=utf-8', cte: '7bit',
    body: `<html><body><p class="MsoNormal">${armorLines(a, false).map((l) => l.replace(/\//g, '&#x2F;')).join(`<br>${CRLF}`)}</p></body></html>`,
  }));

  return inPool(built, 4, (f) => f());
}

/** A header of a mail, unfolded (long message ids are folded onto a continuation line). */
function headerOf(raw: Buffer, name: string): string | undefined {
  const head = raw.toString('latin1').split(/\r?\n\r?\n/, 1)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim();
}

/**
 * The armored message in a copy: PGP/MIME, or inline for posts whose signed
 * content is bare text (README, "What a copy shows"), found the way the
 * extension finds it.
 */
async function armorOfCopy(copy: Buffer): Promise<string> {
  const found = await findPayload(copy, 64 * 1024 * 1024);
  if (!found.armored) throw new Error('the copy has no armored message');
  return found.armored;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'letterlock-clients-'));
  // Keys first, all at once: each tool makes its own member's key.
  const [gpgA, sub, p256, p384, rsa2048, rsa4096, rnp, sq, r] = await Promise.all([
    gpgSender('Gnu Member', 'gnu@example.org', ['ed25519', 'sign'], [['cv25519', 'encr']]),
    gpgSender('Sub Signer', 'sub@example.org', ['ed25519', 'cert'], [['ed25519', 'sign'], ['cv25519', 'encr']]),
    gpgSender('P256 Member', 'p256@example.org', ['nistp256', 'sign'], [['nistp256', 'encr']]),
    gpgSender('P384 Member', 'p384@example.org', ['nistp384', 'sign'], [['nistp384', 'encr']]),
    gpgSender('RSA2048 Member', 'rsa2048@example.org', ['rsa2048', 'sign'], [['rsa2048', 'encr']]),
    gpgSender('RSA4096 Member', 'rsa4096@example.org', ['rsa4096', 'sign'], [['rsa4096', 'encr']]),
    rnpSender(work, 'Rnp Member', 'rnp@example.org'),
    sqSender(work, 'Sq Member', 'sq@example.org'),
    makeKindKey('curve25519', 'reader@example.org', 'Reader'),
  ]);
  reader = r;
  // Mallory is no member; her key lives in the same gpg home as the member she co-signs with.
  const mallory = await (async (): Promise<GpgSender> => {
    const made = await gpgA.gpg.mustRun(['--quick-generate-key', 'Mallory <mallory@example.net>', 'ed25519', 'sign', '0'], undefined, PASS);
    const fpr = /KEY_CREATED \w (\w+)/.exec(made.stderr)![1]!;
    const publicArmored = (await gpgA.gpg.mustRun(['--armor', '--export', fpr])).stdout.toString();
    return { ...gpgA, name: 'Mallory', address: 'mallory@example.net', fingerprint: fpr, keyIds: await keyIdsOf(publicArmored), publicArmored };
  })();
  senders = { gpg: gpgA, mallory, sub, p256, p384, rsa2048, rsa4096, rnp, sq };
  const members = [gpgA, sub, p256, p384, rsa2048, rsa4096, rnp, sq];

  sink = new Sink();
  await sink.start();
  dataDir = tempDir('interop-clients');
  await initData(dataDir, sink.port);
  const sql = await openData(dataDir, SECRET);
  try {
    const l = await createList(sql, SECRET, LIST, { maxBytes: 25 * 1024 * 1024 });
    // Each key goes through the key policy, as any subscription does.
    for (const m of members) await registerMember(sql, l.id, m.address, m.publicArmored);
    await registerMember(sql, l.id, reader.address, reader.publicArmored);
  } finally {
    await sql.close();
  }
  const listKey = await listPublicKey(dataDir, LIST);
  listFpr = listKey.getFingerprint().toUpperCase();
  listCertFile = join(work, 'list.asc');
  writeFileSync(listCertFile, listKey.armor());
  await Promise.all([gpgA, sub, p256, p384, rsa2048, rsa4096].map((g) => g.gpg.importKey(listKey.armor())));

  const [corpus, t] = await Promise.all([
    buildCorpus(),
    OpenPgpTools.create([reader], [...members, mallory]),
    (async () => {
      verifier = new Gpg();
      for (const m of [...members, mallory]) await verifier.importKey(m.publicArmored);
    })(),
    (async () => {
      const { config } = loadConfig(dataDir);
      server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'warn', stdout: false }) });
    })(),
  ]);
  tools = t as OpenPgpTools;
  for (const c of corpus) cases.set(c.name, c);

  // Over SMTP, one post at a time, as clients send them.
  for (const c of corpus) {
    try {
      c.response = await send(server.smtpPort, c.author.address, LIST, c.raw);
    } catch (e) {
      c.refused = e instanceof Error ? e.message : String(e);
    }
  }
  const accepted = corpus.filter((c) => c.response?.startsWith('250'));
  const copyOf = (c: Case) => sink.to(reader.address).find((m) => headerOf(m.raw, 'Message-ID') === c.threading.messageId)?.raw;
  // A missing copy fails its own case below, not the whole file.
  await sink.waitFor(() => accepted.every((c) => copyOf(c)), 180_000, 'a copy of every accepted post').catch(() => {});
  for (const c of corpus) c.copy = copyOf(c);

  await inPool(corpus.filter((c) => c.copy), 2, async (c) => {
    c.verdicts = await tools.decryptAll(await armorOfCopy(c.copy!), reader.fingerprint, { signed: c.signature === 'inline' && !c.deliveredDetached });
    if (c.deliveredDetached && c.verdicts.gpg.code === 0) {
      const { part, signature } = splitSigned(c.verdicts.gpg.plaintext);
      c.detachedSignature = signature;
      c.detachedVerdicts = await tools.verifyDetachedAll(part, signature);
    }
    if (c.signature === 'detached' && c.verdicts.gpg.code === 0) {
      const { part, signature } = splitSigned(c.verdicts.gpg.plaintext);
      c.detachedCheck = await verifier.run(['--verify', verifier.file(`sig-${seq++}.asc`, signature), verifier.file(`part-${seq++}`, part)]);
    }
  });
}, 420_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  tools?.cleanup();
  verifier?.cleanup();
  for (const s of Object.values(senders ?? {})) if ('gpg' in s && s !== senders.mallory) (s as GpgSender).gpg.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---- the checks ------------------------------------------------------------------

/** Every way the list's handling of one post, or a tool's reading of its copy, falls short. */
function problems(c: Case): string[] {
  const out: string[] = [];
  if (!c.response?.startsWith('250')) return [`SMTP: ${c.refused ?? c.response}`];
  if (!c.copy) {
    // What the author got instead (a notice says why), for the report.
    const notices = sink.to(c.author.address).filter((m) => !m.from.includes('+bounces-')).map((m) => m.raw.toString('utf8').slice(0, 1500));
    return [`no copy reached the reader; the author got ${notices.length} other mails:\n${notices.join('\n----\n')}`];
  }

  // Threading headers exactly as the client sent them.
  const header = (name: string) => headerOf(c.copy!, name);
  if (header('Message-ID') !== c.threading.messageId) out.push(`Message-ID is ${header('Message-ID')}`);
  if (header('In-Reply-To') !== c.threading.inReplyTo) out.push(`In-Reply-To is ${header('In-Reply-To')}`);
  if ((header('References') ?? '').split(/\s+/).join(' ') !== c.threading.references.join(' ')) out.push(`References is ${header('References')}`);

  for (const tool of TOOLS) {
    const v = c.verdicts?.[tool];
    if (!v) {
      out.push(`${tool}: not run`);
      continue;
    }
    const say = (what: string) => out.push(`${tool}: ${what}\n${v.stderr.trim().split('\n').slice(0, 12).join('\n')}`);
    if (v.code !== 0) say(`exit status ${v.code}`);
    if (v.complaints.length) say(`complained: ${v.complaints.join(' | ')}`);
    if (c.deliveredDetached) {
      // The copy is a multipart/signed whose first part is exactly what the author signed,
      let part: Buffer | null = null;
      try {
        part = splitSigned(v.plaintext).part;
      } catch (e) {
        say(`printed no §6.1 entity: ${(e as Error).message}`);
      }
      if (part && !part.equals(c.signed)) say(`the signed part has ${part.length} bytes, not the ${c.signed.length} the author signed`);
      // and every tool accepts the author's detached signature over it.
      const d = c.detachedVerdicts?.[tool];
      if (!d) say('the detached signature was not checked');
      else {
        const own = tool === 'gpg' || tool === 'sqop' ? [c.author.fingerprint] : c.author.keyIds;
        if (d.code !== 0) say(`detached check: exit status ${d.code}: ${d.stderr.trim().split('\n').slice(0, 6).join(' | ')}`);
        // rnp 0.16 logs every subpacket it does not parse, type 35 among them, and still verifies
        // (exit 0, "Signature(s) verified successfully"): a note on sq's signature, which the
        // list may not change, not on the copy. Any other line counts.
        const complaints = d.complaints.filter((l) => !(tool === 'rnp' && /^\[parse\(\) \S+stream-sig\.cpp:\d+\] unknown subpacket : 35$/.test(l)));
        if (complaints.length) say(`detached check complained: ${complaints.join(' | ')}`);
        if (!d.goodSigners.some((g) => own.includes(g))) say(`detached check: no good signature by the author (${JSON.stringify(d.goodSigners)})`);
      }
      continue;
    }
    if (!v.plaintext.equals(c.signed)) say(`printed ${v.plaintext.length} bytes, not the ${c.signed.length} the author signed`);
    if (c.signature === 'inline') {
      // gpg and sqop name the primary key's fingerprint; rnp and sq the signing key's ID.
      const own = tool === 'gpg' || tool === 'sqop' ? [c.author.fingerprint] : c.author.keyIds;
      const allowed = [c.author, ...(c.alsoSigned ?? [])].flatMap((s) => (tool === 'gpg' || tool === 'sqop' ? [s.fingerprint] : s.keyIds));
      if (!v.goodSigners.some((g) => own.includes(g))) say(`no good signature by the author (${JSON.stringify(v.goodSigners)})`);
      if (v.goodSigners.some((g) => !allowed.includes(g))) say(`good signatures by others: ${JSON.stringify(v.goodSigners)}`);
      // The corpus is what it says: the co-signed post carries both signatures through the list,
      if (tool === 'gpg' && c.alsoSigned?.some((o) => !v.goodSigners.includes(o.fingerprint))) say(`not co-signed: ${JSON.stringify(v.goodSigners)}`);
      // and the subkey member's post is signed by the subkey, not the certify-only primary.
      if (tool === 'rnp' && c.bySubkey && (v.goodSigners.includes(c.author.keyIds[0]!) || v.goodSigners.length === 0)) say(`not signed by a subkey: ${JSON.stringify(v.goodSigners)}`);
    }
  }
  if (c.signature === 'detached') {
    const d = c.detachedCheck;
    if (!d) out.push('§6.1: the detached signature was not checked (gpg could not decrypt)');
    else {
      if (d.code !== 0) out.push(`§6.1: gpg --verify exit status ${d.code}: ${d.stderr}`);
      if (!d.status.some((l) => l.startsWith('GOODSIG ')) || !d.status.some((l) => l.startsWith('VALIDSIG ') && l.split(' ').at(-1) === c.author.fingerprint)) {
        out.push(`§6.1: no good detached signature by the author: ${d.status.join(' | ')}`);
      }
    }
  }
  if (c.protectedSubject !== undefined && !c.verdicts?.gpg.plaintext.toString('latin1').includes(`Subject: ${Buffer.from(c.protectedSubject).toString('latin1')}`)) {
    out.push('the protected subject is not in the decrypted content');
  }
  return out;
}

const NAMES = [
  'gpg, §6.2 with protected headers "v1"',
  'gpg, §6.2 without protected headers',
  'rnp as sender (RSA 2048 key made by rnpkeys), §6.2 with protected headers',
  'sq as sender (key made by sq key generate), §6.2',
  'gpg member with a certify-only primary and a signing subkey',
  'gpg NIST P-256 member',
  'gpg NIST P-384 member',
  'gpg RSA 2048 member',
  'gpg RSA 4096 member',
  'two signatures: the member\'s and a non-member\'s',
  'gpgme-style §6.1 sign-then-encrypt (CRLF, protected headers)',
  'gpgme-style §6.1 sign-then-encrypt (LF, no protected headers)',
  'Exchange-mangled PGP/MIME with the empty text part',
  'Exchange-mangled PGP/MIME without the empty text part',
  'inline text/plain 7bit, CRLF, with CRC',
  'inline text/plain 7bit, CRLF, without CRC',
  'inline text/plain quoted-printable, with CRC',
  'inline text/plain base64, LF inside, without CRC',
  'inline text/plain base64, CRLF inside, with CRC and Version/Comment headers',
  'inline HTML as Gmail makes it (<div> per line, &nbsp;, &#43;)',
  'inline HTML as Outlook on the web makes it (<p>, <br>)',
];

const SQ_POST = 'sq as sender (key made by sq key generate), §6.2';

describe('posts from real clients through the list server, copies read by gpg, rnp, sq and sqop', () => {
  it('the corpus is the one listed here, every post made by its tool', () => {
    expect([...cases.keys()].sort()).toEqual([...NAMES].sort());
  });

  for (const name of NAMES) {
    it(`${name}: 250, the copy decrypts with exit 0 in every tool, the author's good signature, the signed bytes, the threading headers`, () => {
      const c = cases.get(name);
      expect(c, 'case built').toBeDefined();
      expect(problems(c!)).toEqual([]);
    });
  }

  // sq 0.27 signs with an Intended Recipient Fingerprint subpacket (RFC 9580 §5.2.3.36, type 35)
  // naming the list key, and as a reader refuses an inline signature that does not name the key it
  // decrypted with. The list delivers such a post in §6.1 form (shared/post/detach.ts): checked
  // above for every tool; here, that the case really carries the subpacket and that it is the
  // sender's own signature, unchanged, not one the list made.
  it('the sq post\'s signature names the list as intended recipient, and reaches readers detached, unchanged', async () => {
    const c = cases.get(SQ_POST)!;
    expect(c.detachedSignature, 'the copy carries a detached signature').toBeDefined();
    const signature = await openpgp.readSignature({ armoredSignature: c.detachedSignature! });
    const packet = signature.packets[0] as openpgp.SignaturePacket & { unknownSubpackets: { type: number; body: Uint8Array }[] };
    const irf = packet.unknownSubpackets.find((u) => u.type === INTENDED_RECIPIENT_SUBPACKET);
    expect(irf, 'an intended-recipient subpacket').toBeDefined();
    // Its body is a version octet and the list key's fingerprint.
    expect(Buffer.from(irf!.body.subarray(1)).toString('hex').toUpperCase()).toBe(listFpr);
    expect(c.author.keyIds).toContain(packet.issuerKeyID.toHex().toUpperCase());
  });
});
