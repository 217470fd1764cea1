// Runs inside a worker thread of the open pool (pool.ts): the part of the
// pipeline whose cost an incoming mail controls (MIME parsing, dearmoring,
// decryption, decompression, signature checking). A slow or hostile input
// costs one worker until its time budget ends, never the server's event loop.
// Results cross the thread boundary as plain data: coded refusals come back as
// { ok: false, code }, because error classes do not survive structured cloning.

import { setPriority } from 'node:os';
import type { PrivateKey } from 'openpgp';
import * as openpgp from 'openpgp';
import {
  decryptWithKey, detachedForm, findPayload, isLetterlockError, parsePublicKey, readPgpMessage, resolveLimits, SIGNATURE_CLOCK_SKEW_MS,
  protectedFacts, outerFactsOf, signedContentFacts, verifyAgainst, type ClearFacts, type ErrorCode, type InnerDisplay, type ProtectedThreading, type OuterFacts, type PayloadForm, type Verification,
} from '../../shared/index.ts';

// Tests ask a thread how it was started (pools' probe()).
export { probe } from './worker-probe.ts';

export interface ParseTask {
  kind: 'parse';
  raw: Uint8Array;
  maxBytes: number;
}

export interface ParsedMail {
  form: PayloadForm;
  /** The OpenPGP payload exactly as found (armored text or binary): ciphertext. */
  payload: string | Uint8Array;
  outer: OuterFacts;
  clear: ClearFacts;
}

export interface OpenTask {
  kind: 'open';
  payload: string | Uint8Array;
  maxBytes: number;
  /** The unlocked list key as binary packets, and its fingerprint (the worker's cache key). */
  listKey: Uint8Array;
  listFingerprint: string;
  /** The registered key of the member in From, armored; null: nobody to verify against. */
  memberKey: string | null;
  date: number;
  /** Set for requests to a list's -request address (server/commands): return the decrypted content up to this many bytes. */
  contentMax?: number;
}

export interface OpenedMail {
  /** The sender's packets under the encryption, bodies byte for byte (for sealing). */
  innerPackets: Uint8Array;
  verification: Verification | null;
  /** What replay protection needs of the signed content (pipeline/replay.ts), as plain data. */
  signatureDigest: string | null;
  protectedRecipients: string[] | null;
  /** What copies may show before they are opened (delivery/headers.ts); null without a member. */
  inner: InnerDisplay | null;
  /** The signed Message-ID, In-Reply-To and References; null without a member or when the content states none. */
  threading: ProtectedThreading | null;
  /** Only when asked (contentMax): the literal data, plaintext for the caller's memory only; null when larger than contentMax. */
  content?: Uint8Array | null;
}

export type Task = ParseTask | OpenTask;
export type TaskResult<T> = { ok: true; value: T } | { ok: false; code: ErrorCode | 'INTERNAL'; outer?: OuterFacts | null };

// On Linux a priority set with pid 0 applies to the calling thread only: the
// pool's threads yield the cores to the main thread, which serves SMTP, HTTP and
// delivery, when a heavy post competes with them.
try {
  setPriority(0, 10);
} catch {
  // not permitted or not supported: the pool still works, only without the yield
}

// Unlocked list keys parsed once per worker; a handful of lists at most in practice.
const listKeys = new Map<string, Promise<PrivateKey>>();

function listKeyFor(task: OpenTask): Promise<PrivateKey> {
  let key = listKeys.get(task.listFingerprint);
  if (!key) {
    if (listKeys.size >= 256) listKeys.delete(listKeys.keys().next().value!);
    key = openpgp.readPrivateKey({ binaryKey: task.listKey });
    listKeys.set(task.listFingerprint, key);
  }
  return key;
}

async function parseMail(task: ParseTask): Promise<ParsedMail> {
  const found = await findPayload(task.raw, task.maxBytes);
  return { form: found.form, payload: found.armored ?? found.binary!, outer: found.outer, clear: found.clear };
}

async function openMail(task: OpenTask): Promise<OpenedMail> {
  const limits = resolveLimits({ maxMessageBytes: task.maxBytes });
  const date = new Date(task.date);
  const message = await readPgpMessage(task.payload, limits);
  const { innerPackets, message: decrypted } = await decryptWithKey(message, await listKeyFor(task), limits, date);
  const literal = decrypted.getLiteralData();
  const content = literal instanceof Uint8Array ? literal : null;
  // The literal data itself leaves the worker only when asked (commands by mail), within contentMax.
  const asked = task.contentMax === undefined ? {} : { content: content && content.byteLength <= task.contentMax ? content : null };
  if (!task.memberKey) return { innerPackets, verification: null, signatureDigest: null, protectedRecipients: null, inner: null, threading: null, ...asked };
  // Only the From member's key is offered, so another member's valid signature
  // does not pass as theirs. A signature dated up to the allowed clock skew ahead
  // still verifies; beyond it verifyAgainst says SIGNATURE_FROM_FUTURE.
  const memberKey = await parsePublicKey(task.memberKey);
  const verifyDate = new Date(date.getTime() + SIGNATURE_CLOCK_SKEW_MS);
  const verification = await verifyAgainst(decrypted, [memberKey], verifyDate);
  // Signatures naming the list as intended recipient, or v6 ones, go out detached (§6.1), where Sequoia and GnuPG 2.2 readers cope.
  const detached = verification.valid ? await detachedForm(decrypted, [memberKey], verifyDate) : null;
  const sealed = detached?.content ?? content;
  const facts = sealed ? await protectedFacts(sealed) : null;
  const inner = facts?.inner ?? null;
  // Only a verified sender's ids are taken: they thread the archive and replace a webmail's outer ids.
  const threading = verification.valid ? facts?.threading ?? null : null;
  return { innerPackets: detached?.innerPackets ?? innerPackets, verification, ...(await signedContentFacts(decrypted, verification)), inner, threading, ...asked };
}

export default async function run(task: Task): Promise<TaskResult<ParsedMail | OpenedMail>> {
  try {
    return { ok: true, value: task.kind === 'parse' ? await parseMail(task) : await openMail(task) };
  } catch (e) {
    // Messages of foreign errors may quote input: only the code leaves the worker.
    return isLetterlockError(e) ? { ok: false, code: e.code, outer: outerFactsOf(e) } : { ok: false, code: 'INTERNAL' };
  }
}
