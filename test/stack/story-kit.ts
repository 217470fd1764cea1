// Steps of the end-to-end story shared by its runs (Node only, Chromium, Firefox):
// the list server's HTTP API, Dave's subscription and reading with the real gpg
// binary, a non-member's archive log-in, and the no-plaintext scan over the stack.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { expect } from 'vitest';
import { CONFIRMATION_TOKEN_LINE, signStatement } from '../../shared/index.ts';
import { listFiles, scan } from '../integration/server/scan.ts';
import type { Gpg } from '../support/gpg.ts';
import type { TestKey } from '../support/keys.ts';
import { armoredMessageOf, waitForMail, type FetchedMail } from './imap.ts';
import type { MailStack, StackUser } from './mailstack.ts';

export async function api(stack: MailStack, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stack.urls.api}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

export async function listInfo(stack: MailStack): Promise<{ fingerprint: string; armored: string }> {
  const info = await api(stack, `/v1/lists/${stack.listAddress}`);
  expect(info.status).toBe(200);
  return info.body.listKey as { fingerprint: string; armored: string };
}

/**
 * A subscriber without the extension: a key made by the real gpg, subscribed
 * through the HTTP API (PGP/MIME delivery); the encrypted confirmation travels
 * list server → Postfix → Dovecot, is read over IMAP, decrypted by gpg and confirmed.
 * Returns the confirmation mail (later mail has a higher uid).
 */
export async function subscribeWithGpg(stack: MailStack, gpg: Gpg, user: StackUser, name: string): Promise<{ fingerprint: string; confirmation: FetchedMail }> {
  const made = await gpg.generateKey(name, user.address);
  await gpg.importKey((await listInfo(stack)).armored);
  const sub = await api(stack, `/v1/lists/${stack.listAddress}/subscriptions`, { address: user.address, publicKey: made.publicKey });
  expect(sub.status).toBe(202);
  const confirmation = await waitForMail(stack, user, (m) => m.from.endsWith(`@${stack.listDomain}`), `${name}'s confirmation mail`);
  const out = await gpg.run(['--decrypt'], await armoredMessageOf(confirmation.raw), 'gpg-pass');
  expect(out.code, out.stderr).toBe(0);
  expect(out.status.some((l) => l.startsWith('GOODSIG'))).toBe(true); // signed by the list key
  const inner = await PostalMime.parse(out.stdout);
  const token = CONFIRMATION_TOKEN_LINE.exec(inner.text ?? '')?.[1];
  expect(token, 'Letterlock-Confirm line in the decrypted confirmation').toBeTruthy();
  const confirmed = await api(stack, `/v1/lists/${stack.listAddress}/subscriptions/confirm`, { token });
  expect(confirmed.status).toBe(200);
  expect(confirmed.body).toMatchObject({ status: 'member', address: user.address });
  return { fingerprint: made.fingerprint, confirmation };
}

/** `gpg --decrypt` of a delivered copy: the parsed inner message and the signer's fingerprint (VALIDSIG). */
export async function gpgRead(gpg: Gpg, raw: Buffer, signerPublicKey: string): Promise<{ subject: string | undefined; text: string; from: string | undefined; goodsig: string; validFingerprint: string }> {
  await gpg.importKey(signerPublicKey);
  const out = await gpg.run(['--decrypt'], await armoredMessageOf(raw), 'gpg-pass');
  expect(out.code, out.stderr).toBe(0);
  expect(out.status.some((l) => l.startsWith('BADSIG') || l.startsWith('ERRSIG'))).toBe(false);
  const goodsig = out.status.find((l) => l.startsWith('GOODSIG ')) ?? '';
  const validFingerprint = out.status.find((l) => l.startsWith('VALIDSIG '))?.split(' ')[1] ?? '';
  const inner = await PostalMime.parse(out.stdout);
  return { subject: inner.subject, text: inner.text ?? '', from: inner.from?.address, goodsig, validFingerprint };
}

/**
 * A non-member's archive log-in, the way the extension signs in: ask for a
 * challenge, sign the statement with the key, send the signature. Returns the
 * HTTP status that refused it (the challenge or the log-in).
 */
export async function archiveLogin(stack: MailStack, key: TestKey): Promise<{ status: number; body: Record<string, unknown> }> {
  const ch = await api(stack, `/v1/lists/${stack.listAddress}/auth/challenge`, { address: key.address });
  if (ch.status !== 200) return ch;
  const signature = await signStatement(String(ch.body.statement), key.privateKey);
  return api(stack, `/v1/lists/${stack.listAddress}/auth/login`, { challengeId: ch.body.challengeId, signature });
}

/**
 * The no-plaintext scan over every folder of the (stopped) stack and `extraRoots`:
 * first that it reaches where each part keeps its data (Postfix's queue, Dovecot's
 * mailboxes of `mailboxes`, Roundcube's database, the list server's data, logs),
 * and that it finds the marker planted raw, base64, quoted-printable and inside
 * the stack folder; then that the marker is nowhere.
 */
export function scanStack(stack: MailStack, marker: string, plaintext: string, o: { extraRoots?: string[]; mailboxes?: string[] } = {}): void {
  const roots = [...stack.scanRoots(), ...(o.extraRoots ?? [])];
  const files = roots.flatMap((r) => listFiles(r));
  const f = stack.folders;
  for (const [what, prefix] of [
    ['Postfix config', f.postfixConfig], ['Postfix queue', f.postfixQueue], ['Postfix data', f.postfixData],
    ['Dovecot state', f.dovecotState], ['Roundcube DB', f.roundcubeDb], ['list server data', f.listData], ['logs', f.logs],
    ...(o.mailboxes ?? []).map((u) => [`${u}'s mailbox`, join(f.mail, u, 'Maildir')] as const),
  ] as const) {
    expect(files.some((p) => p.startsWith(prefix)), `${what} (${prefix}) has files`).toBe(true);
  }
  const control = mkdtempSync(join(tmpdir(), 'letterlock-stack-control-'));
  try {
    writeFileSync(join(control, 'raw.txt'), `x ${plaintext} y`);
    writeFileSync(join(control, 'b64.txt'), Buffer.from(plaintext).toString('base64').replace(/(.{76})/g, '$1\r\n'));
    writeFileSync(join(control, 'qp.txt'), marker.replace(/-/g, '=2D'));
    expect(scan([control], marker).map((h) => h.how).sort()).toEqual(['base64', 'quoted-printable', 'raw']);
    writeFileSync(join(stack.root, 'planted.txt'), plaintext);
    expect(scan(roots, marker).map((h) => h.file)).toEqual([join(stack.root, 'planted.txt')]);
    rmSync(join(stack.root, 'planted.txt'));
  } finally {
    rmSync(control, { recursive: true, force: true });
  }
  const hits = scan(roots, marker);
  expect(hits, `plaintext marker found in: ${hits.map((h) => `${h.file} (${h.how})`).join(', ')}`).toEqual([]);
}
