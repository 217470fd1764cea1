// Drives the real GnuPG binary in a throw-away home directory, for the
// interoperability tests. Nothing here fakes gpg: every call runs /usr/bin/gpg.

import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GpgResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** Lines of --status-fd output, e.g. "GOODSIG <keyid> <uid>". */
  status: string[];
}

export class Gpg {
  readonly home: string;

  constructor() {
    this.home = mkdtempSync(join(tmpdir(), 'letterlock-gpg-'));
  }

  run(args: string[], input?: Uint8Array | string, passphrase?: string): Promise<GpgResult> {
    const full = ['--homedir', this.home, '--batch', '--no-tty', '--status-fd', '2', '--trust-model', 'always', '--no-auto-key-locate'];
    if (passphrase !== undefined) full.push('--pinentry-mode', 'loopback', '--passphrase', passphrase);
    return new Promise((resolve) => {
      const child = execFile('gpg', [...full, ...args], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
        const err = stderr.toString('utf8');
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr: err,
          status: err.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice(9)),
        });
      });
      child.stdin!.end(input === undefined ? undefined : Buffer.from(input));
    });
  }

  async mustRun(args: string[], input?: Uint8Array | string, passphrase?: string): Promise<GpgResult> {
    const r = await this.run(args, input, passphrase);
    if (r.code !== 0) throw new Error(`gpg ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return r;
  }

  async importKey(armored: string, passphrase?: string): Promise<void> {
    await this.mustRun(['--import'], armored, passphrase);
  }

  /** Generates a v4 Curve25519 key (ed25519 + cv25519) and returns its armored public and secret parts. */
  async generateKey(name: string, address: string, passphrase = 'gpg-pass'): Promise<{ publicKey: string; secretKey: string; fingerprint: string }> {
    const r = await this.mustRun(['--quick-generate-key', `${name} <${address}>`, 'ed25519', 'sign', '0'], undefined, passphrase);
    const fpr = /KEY_CREATED \w (\w+)/.exec(r.stderr)?.[1];
    if (!fpr) throw new Error('gpg did not report the new key');
    await this.mustRun(['--quick-add-key', fpr, 'cv25519', 'encr', '0'], undefined, passphrase);
    const publicKey = (await this.mustRun(['--armor', '--export', fpr])).stdout.toString();
    const secretKey = (await this.mustRun(['--armor', '--export-secret-keys', fpr], undefined, passphrase)).stdout.toString();
    return { publicKey, secretKey, fingerprint: fpr };
  }

  /** Writes `data` to a file in the home directory (gpg reads some inputs best from files). */
  file(name: string, data: Uint8Array | string): string {
    const path = join(this.home, name);
    writeFileSync(path, data);
    return path;
  }

  cleanup(): void {
    // Each home directory gets its own gpg-agent; stop it so no process outlives the test.
    spawnSync('gpgconf', ['--homedir', this.home, '--kill', 'all'], { stdio: 'ignore' });
    rmSync(this.home, { recursive: true, force: true });
  }
}
