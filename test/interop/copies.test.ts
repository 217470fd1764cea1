// Copies out, read by every OpenPGP implementation a subscriber may use: GnuPG 2.2,
// RNP (Thunderbird's engine), Sequoia's `sq` and `sqop`. Each must exit 0, report the
// author's good signature, and print the author's words, for copies of every size and
// alignment: the armor a copy gets depends on the length of PKESK ‖ body (GnuPG 2.2
// misread one copy in three when the armor had no CRC line, issue 9), so this is a
// property over sizes, PKESK lengths (one per subscriber key algorithm) and both
// delivery forms, rendered by the server's own PostRender and wrap. Then a few
// copies go through the real server over SMTP to a sink.
//
// Copies are checked in batches (one fast-check run = a few posts, their tool calls
// in parallel), so a failure shrinks to the fewest posts that still fail.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, openPost, parseInner, type DeliveryForm } from '../../shared/index.ts';
import { PostRender } from '../../server/delivery/render.ts';
import { PacketRecipient } from '../../server/pipeline/recipient.ts';
import { seal as sealStep } from '../../server/pipeline/seal.ts';
import type { Verified } from '../../server/pipeline/types.ts';
import { openData, startServer, type RunningServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config/config.ts';
import { createEventLog } from '../../server/log/log.ts';
import { createList } from '../../server/lists/lists.ts';
import { registerMember } from '../../server/lists/members.ts';
import { setDeliveryPreference } from '../../server/store/registry.ts';
import { initData, listPublicKey, SECRET, send, Sink, tempDir } from '../integration/server/harness.ts';
import { KEY_KINDS, makeKindKey, OpenPgpTools, TOOLS, type KeyKind, type KindKey, type Verdict } from '../support/openpgp-tools.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../support/keys.ts';
import { referenceCrc24 } from '../support/crc24.ts';

const LINE_BYTES = 48;

let list: TestKey;
let author: KindKey; // Alice, who writes every post (Curve25519, as Letterlock makes keys)
let subscribers: Record<KeyKind, KindKey>;
let recipients: Record<KeyKind, PacketRecipient>;
let tools: OpenPgpTools;

beforeAll(async () => {
  const made = await Promise.all([
    makeKey(LIST_ADDRESS, 'list'),
    makeKindKey('curve25519', 'alice@example.org', 'Alice Author'),
    ...KEY_KINDS.map((k) => makeKindKey(k, `${k.toLowerCase()}@example.org`, `Reader ${k}`)),
  ]);
  list = made[0] as TestKey;
  author = made[1] as KindKey;
  subscribers = Object.fromEntries(made.slice(2).map((k) => [(k as KindKey).kind, k])) as Record<KeyKind, KindKey>;
  // The server's wrap: a recipient built from the stored encryption-key packet, native
  // X25519 for Curve25519 keys, shared/envelope's openpgp.js path for the others.
  recipients = Object.fromEntries(await Promise.all(KEY_KINDS.map(async (k) => {
    const s = subscribers[k];
    return [k, await PacketRecipient.fromPacket(s.fingerprint, (await s.publicKey.getEncryptionKey()).keyPacket.write())];
  }))) as Record<KeyKind, PacketRecipient>;
  expect(KEY_KINDS.filter((k) => recipients[k].usesNativeX25519)).toEqual(['curve25519']);
  tools = await OpenPgpTools.create([author, ...Object.values(subscribers)], [author]);
}, 180_000);

afterAll(() => tools?.cleanup());

// ---- helpers -------------------------------------------------------------------

/** Deterministic text of `length` characters: lines of mixed length, some non-ASCII. */
function textOf(length: number, seed: number): string {
  let x = seed >>> 0 || 1;
  const next = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:-=ü€';
  const out: string[] = [];
  for (let i = 0; i < length; i++) out.push(next() % 61 === 0 ? '\n' : alphabet[next() % alphabet.length]!);
  return out.join('');
}

/** What is wrong with the armor's shape, if anything; the data must be exactly `expected`. */
function armorProblems(armored: string, expected: Uint8Array): string[] {
  const problems: string[] = [];
  const lines = armored.replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n');
  if (lines[0] !== '-----BEGIN PGP MESSAGE-----' || lines[1] !== '') problems.push('bad armor header');
  if (lines.at(-1) !== '-----END PGP MESSAGE-----') problems.push('bad armor tail');
  const crcLine = lines.at(-2) ?? '';
  if (!/^=[A-Za-z0-9+/]{4}$/.test(crcLine)) problems.push(`no CRC line before the tail (${JSON.stringify(crcLine)})`);
  const data = lines.slice(2, -2);
  data.forEach((l, i) => {
    const last = i === data.length - 1;
    if (!/^[A-Za-z0-9+/]*=*$/.test(l)) problems.push(`line ${i}: not base64`);
    if (!last && (l.length !== 64 || l.includes('='))) problems.push(`line ${i}: ${l.length} characters${l.includes('=') ? ', padding inside the data' : ''}`);
    if (last && (l.length === 0 || l.length > 64 || l.length % 4 !== 0)) problems.push(`last line: ${l.length} characters`);
  });
  const decoded = Buffer.from(data.join(''), 'base64');
  if (!decoded.equals(Buffer.from(expected))) problems.push('armored data differs from PKESK ‖ body');
  const padding = (3 - (expected.length % 3)) % 3;
  if (!(data.at(-1) ?? '').endsWith('='.repeat(padding)) || /={3}/.test(data.at(-1) ?? '')) problems.push('wrong final padding');
  const crc = Buffer.from(crcLine.slice(1), 'base64');
  if (crc.length !== 3 || crc.readUIntBE(0, 3) !== referenceCrc24(expected)) problems.push('CRC line does not match the data');
  return problems;
}

/** The armored block as a mail client finds it: the PGP/MIME encrypted part, or the inline text body. */
async function armorFromMail(mail: Buffer | string, form: DeliveryForm): Promise<string> {
  const parsed = await PostalMime.parse(mail, { attachmentEncoding: 'arraybuffer' });
  if (form === 'inline') return parsed.text ?? '';
  const version = parsed.attachments.find((a) => a.mimeType === 'application/pgp-encrypted');
  const part = parsed.attachments.find((a) => a.mimeType === 'application/octet-stream');
  if (!version || !/^Version: 1\s*$/.test(Buffer.from(version.content as ArrayBuffer).toString())) throw new Error('no PGP/MIME version part');
  if (!part) throw new Error('no PGP/MIME encrypted part');
  return Buffer.from(part.content as ArrayBuffer).toString('latin1');
}

interface Expected {
  subject: string;
  text: string;
  /** The literal data the author signed: what every tool must print. */
  literal: Uint8Array;
}

/** Every way a tool's reading of one copy can fall short. */
async function toolProblems(verdicts: Record<string, Verdict>, expected: Expected): Promise<string[]> {
  const problems: string[] = [];
  const aliceKeyId = author.fingerprint.slice(-16);
  for (const tool of TOOLS) {
    const v = verdicts[tool]!;
    const say = (what: string) => problems.push(`${tool}: ${what}\n${v.stderr.trim().split('\n').slice(0, 12).join('\n')}`);
    if (v.code !== 0) say(`exit status ${v.code}`);
    if (v.complaints.length) say(`complained: ${v.complaints.join(' | ')}`);
    const signer = tool === 'gpg' || tool === 'sqop' ? author.fingerprint : aliceKeyId;
    if (!v.goodSigners.includes(signer) || v.goodSigners.length !== 1) say(`good signatures ${JSON.stringify(v.goodSigners)}, expected the author's alone`);
    if (!v.plaintext.equals(Buffer.from(expected.literal))) {
      say(`printed ${v.plaintext.length} bytes, not the ${expected.literal.length} the author signed`);
      continue;
    }
    const inner = await parseInner(new Uint8Array(v.plaintext));
    if (inner.subject !== expected.subject || (inner.text ?? '') !== expected.text) say(`the author's subject or text differs (${JSON.stringify(inner.subject)}, ${inner.text?.length ?? 'no'} characters)`);
  }
  return problems;
}

async function literalOf(innerPackets: Uint8Array): Promise<Uint8Array> {
  const message = await openpgp.readMessage({ binaryMessage: innerPackets });
  const data = message.getLiteralData();
  if (!(data instanceof Uint8Array)) throw new Error('no literal data');
  return data;
}

// ---- the property ----------------------------------------------------------------

interface Case {
  textLength: number;
  /** Wanted (|PKESK| + |body|) mod 48 for the first copy (where the last armor line ends), or any. */
  residue: number | null;
  copies: Array<{ kind: KeyKind; form: DeliveryForm }>;
  seed: number;
}

interface Checked {
  kind: KeyKind;
  form: DeliveryForm;
  pkesk: number;
  total: number;
  textLength: number;
}
const checked: Checked[] = [];

/**
 * One post by Alice, composed, opened with the list key and sealed as the pipeline
 * does, with a subject padded so that the first copy's PKESK ‖ body has the wanted
 * length mod 48 (the padding goes 1:1 into the signed entity; a length header or a
 * signature MPI may still shift by a byte, hence the retries).
 */
async function makePost(c: Case): Promise<{ body: Uint8Array; pkesks: Uint8Array[]; expected: Expected }> {
  const text = textOf(c.textLength, c.seed);
  let pad = 0;
  for (let attempt = 0; ; attempt++) {
    const subject = `Copy ${c.seed} s${'s'.repeat(pad)}`;
    const post = await composePost({
      message: { subject, from: { address: author.address, name: author.name }, to: [{ address: LIST_ADDRESS }], text },
      senderKey: author.privateKey, listKey: list.publicKey,
    });
    const opened = await openPost(post.pgpMime, { listKey: list.privateKey, memberKeys: [author.publicKey] });
    // The pipeline's seal step reads only the inner packets of the verified post.
    const { sealed } = await sealStep({ innerPackets: opened.innerPackets } as Verified);
    const pkesks = await Promise.all(c.copies.map((x) => recipients[x.kind].wrap(sealed.sessionKey)));
    const off = c.residue === null ? 0 : (c.residue - ((pkesks[0]!.length + sealed.body.length) % LINE_BYTES) + LINE_BYTES) % LINE_BYTES;
    if (off === 0 || attempt === 3) {
      return { body: sealed.body, pkesks, expected: { subject, text, literal: await literalOf(opened.innerPackets) } };
    }
    pad = (pad + off) % LINE_BYTES;
  }
}

async function checkCase(c: Case): Promise<string[]> {
  const { body, pkesks, expected } = await makePost(c);
  // One PostRender per post, as the delivery worker keeps one: copies share its cached tails.
  const render = new PostRender(body, [['Subject', '...'], ['Message-ID', `<case-${c.seed}@lists.example.org>`]], `case${c.seed}`);
  const problems = await Promise.all(c.copies.map(async ({ kind, form }, i) => {
    const pkesk = pkesks[i]!;
    const whole = Buffer.concat([pkesk, body]);
    const mail = render.mail(pkesk, [['To', `<${subscribers[kind].address}>`]], form);
    const armored = await armorFromMail(mail, form);
    checked.push({ kind, form, pkesk: pkesk.length, total: whole.length, textLength: c.textLength });
    const found = [...armorProblems(armored, whole), ...(await toolProblems(await tools.decryptAll(armored, subscribers[kind].fingerprint), expected))];
    const what = `${kind} ${form} copy: text ${c.textLength} chars, PKESK ${pkesk.length} + body ${body.length} = ${whole.length} bytes (mod 3: ${whole.length % 3}, mod 48: ${whole.length % 48})`;
    return found.map((p) => `${what}: ${p}`);
  }));
  return problems.flat();
}

const copyArb = fc.record({ kind: fc.constantFrom(...KEY_KINDS), form: fc.constantFrom<DeliveryForm>('pgp-mime', 'inline') });
const caseArb: fc.Arbitrary<Case> = fc.record({
  textLength: fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 400 }) },
    { weight: 1, arbitrary: fc.integer({ min: 5_500, max: 6_500 }) }, // where the literal packet's length header grows from 2 to 5 octets
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 200_000 }) },
  ),
  residue: fc.constant(null), // random lengths; the sweep below aims at each residue
  copies: fc.array(copyArb, { minLength: 2, maxLength: 3 }),
  seed: fc.nat(),
});

/** Every residue mod 48 once, over every key kind, both forms and sizes from empty to about 200 KB. */
const SWEEP_SIZES = [0, 1, 2, 3, 57, 130, 700, 1_000, 4_000, 5_900, 6_100, 20_000, 64_000, 150_000, 199_999];
const sweep: Case[] = Array.from({ length: LINE_BYTES }, (_, r) => ({
  textLength: SWEEP_SIZES[r % SWEEP_SIZES.length]!,
  residue: r,
  copies: [
    { kind: KEY_KINDS[r % KEY_KINDS.length]!, form: r % 2 ? 'inline' : 'pgp-mime' },
    { kind: KEY_KINDS[(r * 5 + 1) % KEY_KINDS.length]!, form: r % 4 < 2 ? 'inline' : 'pgp-mime' },
  ],
  seed: 1000 + r,
}));
const sweepBatches: Array<[Case[]]> = [];
for (let i = 0; i < sweep.length; i += 4) sweepBatches.push([sweep.slice(i, i + 4)]);

describe('copies out: gpg, rnp, sq and sqop each exit 0 with the author\'s good signature', () => {
  it('for every size, alignment, subscriber key algorithm and delivery form (property over PostRender)', { timeout: 600_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(caseArb, { minLength: 3, maxLength: 3 }), async (cases) => {
        const problems = (await Promise.all(cases.map(checkCase))).flat();
        if (problems.length) throw new Error(problems.join('\n\n'));
      }),
      // numRuns counts the sweep's batches too: 12 of 4 posts, then 22 random of 3.
      { numRuns: sweepBatches.length + 22, examples: sweepBatches, endOnFailure: true },
    );

    // What the runs covered: the property holds only as far as its inputs reach.
    expect(checked.length).toBeGreaterThanOrEqual(200);
    const residues = new Set(checked.map((c) => c.total % LINE_BYTES));
    expect([...Array(LINE_BYTES).keys()].filter((r) => !residues.has(r))).toEqual([]);
    expect(new Set(checked.map((c) => c.kind)).size).toBe(KEY_KINDS.length);
    expect(new Set(checked.map((c) => c.form)).size).toBe(2);
    expect(checked.some((c) => c.textLength === 0)).toBe(true);
    expect(checked.some((c) => c.textLength >= 150_000)).toBe(true);
    // PKESK lengths differ by algorithm, so copies of one post start their tails at different offsets.
    expect(new Set(checked.map((c) => c.pkesk % LINE_BYTES)).size).toBeGreaterThanOrEqual(5);
  });
});

// ---- through the real server -------------------------------------------------------

describe('copies out through the real server over SMTP', () => {
  const LIST = 'interop@lists.test';
  const INLINE: KeyKind[] = ['rsa3072', 'nistP256', 'curve25519'];
  let sink: Sink;
  let dataDir: string;
  let server: RunningServer;

  beforeAll(async () => {
    sink = new Sink();
    await sink.start();
    dataDir = tempDir('interop-copies');
    await initData(dataDir, sink.port);
    const sql = await openData(dataDir, SECRET);
    try {
      const l = await createList(sql, SECRET, LIST, { maxBytes: 25 * 1024 * 1024 });
      // Members by the key policy, like any subscription; some read list mail in webmail (inline).
      for (const m of [author, ...Object.values(subscribers)]) await registerMember(sql, l.id, m.address, m.publicArmored);
      for (const k of INLINE) await setDeliveryPreference(sql, l.id, subscribers[k].address, 'inline');
    } finally {
      await sql.close();
    }
    const { config } = loadConfig(dataDir);
    server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: 'warn', stdout: false }) });
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await sink?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('two posts reach all seven members, and every copy reads in all four tools', { timeout: 300_000 }, async () => {
    const listKey = await listPublicKey(dataDir, LIST);
    const posts = [{ subject: 'Short one ✓', text: textOf(300, 7) }, { subject: 'Longer one', text: textOf(48_001, 8) }];
    for (const p of posts) {
      const post = await composePost({ message: { ...p, from: { address: author.address, name: author.name }, to: [{ address: LIST }] }, senderKey: author.privateKey, listKey });
      expect(await send(server.smtpPort, author.address, LIST, post.pgpMime)).toMatch(/^250 /);
    }
    const members = [author, ...Object.values(subscribers)];
    const copiesTo = (m: KindKey) => sink.to(m.address).filter((x) => x.from.includes('+bounces-'));
    await sink.waitFor(() => members.every((m) => copiesTo(m).length >= 2), 120_000, 'two copies for each member');

    const jobs = members.flatMap((m) => copiesTo(m).map((copy) => ({ m, copy })));
    expect(jobs).toHaveLength(2 * members.length);
    const problems: string[] = [];
    const seen: string[] = [];
    for (const { m, copy } of jobs) {
      const form: DeliveryForm = INLINE.includes(m.kind) && m !== author ? 'inline' : 'pgp-mime';
      const armored = await armorFromMail(copy.raw, form);
      const verdicts = await tools.decryptAll(armored, m.fingerprint);
      const inner = verdicts.gpg.code === 0 ? await parseInner(new Uint8Array(verdicts.gpg.plaintext)) : null;
      const p = posts.find((x) => x.subject === inner?.subject);
      if (!p) {
        problems.push(`${m.address}: gpg did not read a known post (exit ${verdicts.gpg.code}): ${verdicts.gpg.stderr}`);
        continue;
      }
      seen.push(`${m.address} ${p.subject}`);
      const found = await toolProblems(verdicts, { subject: p.subject, text: p.text, literal: new Uint8Array(verdicts.gpg.plaintext) });
      problems.push(...found.map((x) => `${m.address} (${m.kind}, ${form}), "${p.subject}": ${x}`));
    }
    expect(problems).toEqual([]);
    // Each member got each post once.
    expect(new Set(seen).size).toBe(2 * members.length);
  });
});
