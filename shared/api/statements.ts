// Statements a member signs with their key: the archive log-in (over a single-use
// server challenge) and signed requests (unsubscribe, key change, delivery form).
// A statement names its purpose, the server, the list and the member, so a
// signature made for one cannot be replayed as another.

import * as openpgp from 'openpgp';
import type { PrivateKey, PublicKey } from 'openpgp';
import { fail } from '../errors.ts';
import type { SignedAction } from './types.ts';

export interface LoginStatementFields {
  server: string; // the API base URL
  list: string;
  address: string;
  challengeId: string;
  expiresAt: string; // ISO 8601
}

export interface RequestStatementFields {
  server: string;
  list: string;
  address: string;
  action: SignedAction;
  /** Random per request; the server refuses one it has seen. */
  nonce: string;
  date: string; // ISO 8601
  /** key-change: fingerprint of the new key. delivery: 'pgp-mime' | 'inline'. */
  value?: string;
}

function lines(kind: string, fields: Record<string, string | undefined>): string {
  const body = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      if (/[\r\n]/.test(v!)) throw new Error(`statement field ${k} has a line break`);
      return `${k}: ${v}`;
    });
  return [`letterlock-${kind}: v1`, ...body, ''].join('\n');
}

export function loginStatement(f: LoginStatementFields): string {
  return lines('login', { server: f.server, list: f.list, address: f.address, challenge: f.challengeId, expires: f.expiresAt });
}

export function requestStatement(f: RequestStatementFields): string {
  return lines('request', { server: f.server, list: f.list, address: f.address, action: f.action, nonce: f.nonce, date: f.date, value: f.value });
}

/** Parses a statement back into its fields (for the server's checks). */
export function parseStatement(text: string): { kind: string; fields: Record<string, string> } {
  const [first, ...rest] = text.split('\n');
  const m = /^letterlock-(login|request): v1$/.exec(first ?? '');
  if (!m) fail('OPENPGP_MALFORMED', 'not a Letterlock statement');
  const fields: Record<string, string> = {};
  for (const line of rest) {
    if (line === '') continue;
    const i = line.indexOf(': ');
    if (i <= 0) fail('OPENPGP_MALFORMED', 'bad statement line');
    fields[line.slice(0, i)] = line.slice(i + 2);
  }
  return { kind: m[1]!, fields };
}

/** A detached, armored signature over the statement text. */
export async function signStatement(statement: string, key: PrivateKey): Promise<string> {
  const message = await openpgp.createMessage({ text: statement });
  return openpgp.sign({ message, signingKeys: key, detached: true, format: 'armored' });
}

/**
 * True when `signature` is a valid signature over exactly `statement` by `key`
 * at `date`. Any failure (wrong key, altered text, expired or revoked key,
 * unreadable signature) is false: the caller answers with one generic refusal.
 */
export async function verifyStatement(statement: string, signature: string, key: PublicKey, date = new Date()): Promise<boolean> {
  try {
    const message = await openpgp.createMessage({ text: statement });
    const sig = await openpgp.readSignature({ armoredSignature: signature });
    const result = await openpgp.verify({ message, signature: sig, verificationKeys: key, date });
    if (result.signatures.length !== 1) return false;
    await result.signatures[0]!.verified;
    return true;
  } catch {
    return false;
  }
}
