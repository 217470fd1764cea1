// Reading a member's key from a file the operator names: bounded, one clear line
// for each way it can go wrong, and never a secret key (the list stores public
// keys only; a secret key handed over by mistake is refused, not quietly stripped).

import { readFileSync, statSync } from 'node:fs';
import { CliError, EXIT } from './output.ts';

export const MAX_KEY_FILE_BYTES = 1024 * 1024;

const SECRET_BLOCK = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;

export const SECRET_KEY_REFUSAL = 'is a SECRET key: give the public key only (gpg --export --armor ADDRESS); the list never stores secret keys';

/** True when armored text holds a secret (private) key block. */
export function holdsSecretKey(text: string): boolean {
  return SECRET_BLOCK.test(text);
}

function fsReason(e: unknown): string {
  const code = (e as { code?: string } | null)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return `cannot be read (${code ?? 'error'})`;
}

/** Reads a text file of at most `max` bytes; each failure is a one-line CliError. */
export function readBoundedText(path: string, what: string, max: number): string {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new CliError(`${what} ${path} ${fsReason(e)}`, EXIT.REFUSED);
  }
  if (st.isDirectory()) throw new CliError(`${what} ${path} is a folder, not a file`, EXIT.REFUSED);
  if (st.size > max) throw new CliError(`${what} ${path} is larger than ${max / 1024 / 1024} MB`, EXIT.REFUSED);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${what} ${path} ${fsReason(e)}`, EXIT.REFUSED);
  }
}

/** A public key file for `member add`: bounded, and never a secret key. */
export function readPublicKeyFile(path: string): string {
  const text = readBoundedText(path, 'key file', MAX_KEY_FILE_BYTES);
  if (holdsSecretKey(text)) throw new CliError(`key file ${path} ${SECRET_KEY_REFUSAL}`, EXIT.REFUSED, 'SECRET_KEY');
  return text;
}
