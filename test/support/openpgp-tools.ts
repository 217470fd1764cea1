// Drives the three OpenPGP implementations a subscriber may read list mail with:
// GnuPG 2.2 (`gpg`), RNP (`rnp`, Thunderbird's engine) and Sequoia (`sq`, and
// `sqop`, its Stateless OpenPGP command line), each with its own keyring or key
// files made once per test file. Nothing is faked: every call runs the real binary
// and reports its exit status, what it printed, and the signer it vouched for.
//
// Flags differ per tool (Debian 12's builds): rnp 0.16 keeps keys under --homedir
// (imported with rnpkeys); sq 0.27 takes --recipient-key and --signer-cert files and
// exits non-zero unless a signature by a given cert verifies; sqop 0.27 (SOP draft
// 0.4) writes verifications with --verifications-out (later SOP drafts call it --verify-out).

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { Gpg, type GpgResult } from './gpg.ts';
import { makeKey } from './keys.ts';

export const TOOLS = ['gpg', 'rnp', 'sq', 'sqop'] as const;
export type Tool = (typeof TOOLS)[number];

/** The subscriber key algorithms a list must serve (the key policy accepts them all). */
export const KEY_KINDS = ['curve25519', 'rsa2048', 'rsa3072', 'rsa4096', 'nistP256', 'nistP384'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

export interface KindKey {
  kind: KeyKind;
  address: string;
  name: string;
  fingerprint: string;
  publicArmored: string;
  /** Unprotected: test keyrings only, so no tool asks for a passphrase. */
  secretArmored: string;
  publicKey: PublicKey;
  privateKey: PrivateKey;
}

/** A v4 key of the given kind. Curve25519 keys are made the way Letterlock makes them (test/support/keys.ts). */
export async function makeKindKey(kind: KeyKind, address: string, name: string): Promise<KindKey> {
  if (kind === 'curve25519') {
    const k = await makeKey(address, 'subscriber', name);
    return { kind, address, name, fingerprint: k.fingerprint, publicArmored: k.publicArmored, secretArmored: k.privateKey.armor(), publicKey: k.publicKey, privateKey: k.privateKey };
  }
  const type = kind.startsWith('rsa')
    ? { type: 'rsa' as const, rsaBits: Number(kind.slice(3)) }
    : { type: 'ecc' as const, curve: kind as 'nistP256' | 'nistP384' };
  const g = await openpgp.generateKey({ ...type, userIDs: [{ name, email: address }], format: 'object' });
  return {
    kind, address, name, fingerprint: g.publicKey.getFingerprint().toUpperCase(),
    publicArmored: g.publicKey.armor(), secretArmored: g.privateKey.armor(), publicKey: g.publicKey, privateKey: g.privateKey,
  };
}

export interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: Uint8Array | string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
    child.stdin!.on('error', () => {}); // a tool may exit before reading all its input
    child.stdin!.end(input === undefined ? undefined : Buffer.from(input));
  });
}

export interface Verdict {
  tool: Tool;
  code: number;
  plaintext: Buffer;
  /** The primary-key fingerprint (gpg, sqop) or key ID (rnp, sq), upper case, of every good signature the tool reported. */
  goodSigners: string[];
  /** Lines that say something went wrong, even when the exit status is 0. */
  complaints: string[];
  stderr: string;
}

const COMPLAINT = /\b(invalid|errors?|fail(ed|ure|s)?|bad|corrupt(ed)?|crc|malformed|warning|skipped|unknown)\b/i;
// gpg's notes on the reader's web of trust, not on the message: with --trust-model
// always (test/support/gpg.ts) every good signature is "[unknown]" validity.
const TRUST_NOTE = /^gpg: (Good signature from .* \[unknown\]|WARNING: Using untrusted key!)$/;

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
const complaintsIn = (s: string) => lines(s).filter((l) => !l.startsWith('[GNUPG:]') && !TRUST_NOTE.test(l) && COMPLAINT.test(l));

/**
 * Each tool's run read as a verdict: exit status, complaints and good signers as the
 * tool reports them. `sqopVerifications` holds sqop's verification lines (from
 * --verifications-out, or stdout for `sqop verify`); `withPlaintext` keeps stdout as the plaintext.
 */
function verdicts(runs: { gpg: GpgResult; rnp: Run; sq: Run; sqop: Run }, sqopVerifications: string, withPlaintext: boolean): Record<Tool, Verdict> {
  const { gpg, rnp, sq, sqop } = runs;
  const out = (r: Run | GpgResult) => (withPlaintext ? r.stdout : Buffer.alloc(0));
  return {
    gpg: {
      tool: 'gpg', code: gpg.code, plaintext: out(gpg), stderr: gpg.stderr, complaints: complaintsIn(gpg.stderr),
      // VALIDSIG <signing key fpr> ... <primary key fpr>, only after a GOODSIG.
      goodSigners: gpg.status.some((s) => s.startsWith('GOODSIG '))
        ? gpg.status.filter((s) => s.startsWith('VALIDSIG ')).map((s) => s.split(' ').at(-1)!.toUpperCase())
        : [],
    },
    rnp: {
      tool: 'rnp', code: rnp.code, plaintext: out(rnp), stderr: rnp.stderr, complaints: complaintsIn(rnp.stderr),
      // "Good signature made <date>" then "using <alg> key <key ID>", maybe with rnp's
      // "[parse() ...]" log lines between (it logs subpackets it does not know).
      goodSigners: /Signature\(s\) verified successfully/.test(rnp.stderr)
        ? [...rnp.stderr.matchAll(/Good signature made [^\n]*\n(?:\s*\[[^\n]*\n)*\s*using \S+ key ([0-9a-f]{16})/gi)].map((m) => m[1]!.toUpperCase())
        : [],
    },
    sq: {
      tool: 'sq', code: sq.code, plaintext: out(sq), stderr: sq.stderr, complaints: complaintsIn(sq.stderr),
      goodSigners: [...sq.stderr.matchAll(/Good signature from ([0-9A-F]{16})/g)].map((m) => m[1]!),
    },
    sqop: {
      tool: 'sqop', code: sqop.code, plaintext: out(sqop), stderr: sqop.stderr, complaints: complaintsIn(sqop.stderr),
      // "<time> <signing key fpr> <primary key fpr> ...", one line per good signature.
      goodSigners: lines(sqopVerifications).map((l) => l.split(' ')[2]?.toUpperCase() ?? ''),
    },
  };
}

/**
 * One keyring (gpg, rnp) or key-file folder (sq, sqop) per tool, holding every
 * recipient's secret key and the author's certificate.
 */
export class OpenPgpTools {
  private readonly gpg = new Gpg();
  private readonly dir = mkdtempSync(join(tmpdir(), 'letterlock-tools-'));
  private readonly rnpHome = join(this.dir, 'rnp');
  private readonly keyFiles = new Map<string, string>();
  private readonly signerFiles: string[] = [];
  private n = 0;

  private constructor() {
    mkdirSync(this.rnpHome, { mode: 0o700 });
  }

  static async create(recipients: KindKey[], signers: Array<{ publicArmored: string }>): Promise<OpenPgpTools> {
    const t = new OpenPgpTools();
    try {
      for (const r of recipients) {
        const file = join(t.dir, `${r.fingerprint}.key`);
        writeFileSync(file, r.secretArmored);
        t.keyFiles.set(r.fingerprint, file);
        await t.gpg.importKey(r.secretArmored);
        await t.mustRun('rnpkeys', ['--homedir', t.rnpHome, '--import', file]);
      }
      for (const [i, s] of signers.entries()) {
        const file = join(t.dir, `signer-${i}.cert`);
        writeFileSync(file, s.publicArmored);
        t.signerFiles.push(file);
        await t.gpg.importKey(s.publicArmored);
        await t.mustRun('rnpkeys', ['--homedir', t.rnpHome, '--import', file]);
      }
    } catch (e) {
      t.cleanup();
      throw e;
    }
    return t;
  }

  private async mustRun(cmd: string, args: string[]): Promise<void> {
    const r = await run(cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  }

  /**
   * Decrypts `message` (armored or binary) with each tool in parallel, as the holder of `recipientFingerprint`.
   * With `signed: false` (an RFC 3156 §6.1 copy, whose signature is a MIME part inside, not an OpenPGP
   * signature around it) sq and sqop are not asked to verify, since sq then fails a message with no signature.
   */
  async decryptAll(message: Uint8Array | string, recipientFingerprint: string, opts: { signed?: boolean } = {}): Promise<Record<Tool, Verdict>> {
    const signers = opts.signed === false ? [] : this.signerFiles;
    const key = this.keyFiles.get(recipientFingerprint);
    if (!key) throw new Error(`no key for ${recipientFingerprint}`);
    const id = this.n++;
    const input = join(this.dir, `copy-${id}.asc`);
    writeFileSync(input, message);
    const verifications = join(this.dir, `copy-${id}.verifications`);
    try {
      const [gpg, rnp, sq, sqop] = await Promise.all([
        this.gpg.run(['--decrypt', input]),
        run('rnp', ['--homedir', this.rnpHome, '--notty', '--decrypt', '--output', '-', input]),
        run('sq', ['decrypt', '--recipient-key', key, ...signers.flatMap((f) => ['--signer-cert', f]), input]),
        run('sqop', ['decrypt', ...(signers.length ? ['--verifications-out', verifications] : []), ...signers.flatMap((f) => ['--verify-with', f]), '--', key], message),
      ]);
      const sqopOut = existsSync(verifications) ? readFileSync(verifications, 'utf8') : '';
      return verdicts({ gpg, rnp, sq, sqop }, sqopOut, true);
    } finally {
      rmSync(input, { force: true });
      rmSync(verifications, { force: true });
    }
  }

  /**
   * Checks a detached signature over `data` (an RFC 3156 §6.1 first part, canonical CRLF) with each
   * tool, as a mail client does after decrypting a §6.1 copy. `plaintext` is empty; the verdict is
   * the exit status, the complaints and the good signers, in the same forms as decryptAll's.
   */
  async verifyDetachedAll(data: Uint8Array, signature: string): Promise<Record<Tool, Verdict>> {
    const id = this.n++;
    const dataFile = join(this.dir, `part-${id}`);
    const sigFile = join(this.dir, `part-${id}.asc`);
    writeFileSync(dataFile, data);
    writeFileSync(sigFile, signature);
    try {
      const [gpg, rnp, sq, sqop] = await Promise.all([
        this.gpg.run(['--verify', sigFile, dataFile]),
        run('rnp', ['--homedir', this.rnpHome, '--notty', '--verify', sigFile, '--source', dataFile]),
        run('sq', ['verify', ...this.signerFiles.flatMap((f) => ['--signer-cert', f]), '--detached', sigFile, dataFile]),
        run('sqop', ['verify', sigFile, ...this.signerFiles], data),
      ]);
      return verdicts({ gpg, rnp, sq, sqop }, sqop.stdout.toString('utf8'), false);
    } finally {
      rmSync(dataFile, { force: true });
      rmSync(sigFile, { force: true });
    }
  }

  cleanup(): void {
    this.gpg.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
