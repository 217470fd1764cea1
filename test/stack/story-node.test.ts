// The end-to-end story on the real mail stack, without a browser: Dave subscribes
// with a key from the real gpg binary and confirms from a mail that travelled list
// server → Postfix → Dovecot; Alice's signed, encrypted post travels Postfix → list
// server → Postfix → Dovecot; Dave reads it with `gpg --decrypt`; and no file of
// the stack holds the post's plaintext.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import PostalMime from 'postal-mime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, CONFIRMATION_TOKEN_LINE, readPublicKey } from '../../shared/index.ts';
import { send } from '../integration/server/harness.ts';
import { findMarker, listFiles } from '../integration/server/scan.ts';
import { Gpg } from '../support/gpg.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { armoredMessageOf, waitForMail, type FetchedMail } from './imap.ts';
import { startMailStack, type MailStack } from './mailstack.ts';
import { run } from './procs.ts';
import { api as kitApi, scanStack } from './story-kit.ts';

const MARKER = `LLSTACK-${randomUUID()}`;
const SUBJECT = `Grüße vom Stammtisch ✉ ${MARKER}`;
const BODY = `Liebe Liste,\n\nÄpfel, Öl und Čevapčići — ${MARKER} — 日本語のテキスト.\n\nAlice\n`;

let stack: MailStack;
let gpg: Gpg;
let alice: TestKey, bob: TestKey;
let dave: { address: string; fingerprint: string };
let listArmored: string;
let confirmation: FetchedMail;
const started = Date.now();

function api(path: string, body?: unknown) {
  return kitApi(stack, path, body);
}

/** The decrypted inner entity (protected headers + body) as a parsed mail. */
async function parseInner(bytes: Buffer) {
  return PostalMime.parse(bytes);
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeKey('alice@example.test'), makeKey('bob@example.test')]);
  const t = Date.now();
  stack = await startMailStack({ members: [alice, bob].map((k) => ({ address: k.address, publicKey: k.publicArmored })) });
  console.log(`[stack] started in ${Date.now() - t} ms: ${JSON.stringify(stack.timings)}`);
  gpg = new Gpg();
  const info = await api(`/v1/lists/${stack.listAddress}`);
  expect(info.status).toBe(200);
  listArmored = (info.body.listKey as { armored: string }).armored;
}, 300_000);

afterAll(async () => {
  gpg?.cleanup();
  // STACK_DEBUG=1 prints Postfix's and the list server's logs (the path each mail took).
  if (process.env.STACK_DEBUG && stack) console.log(readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8'), readFileSync(join(stack.folders.listData, 'logs', 'server.log'), 'utf8'));
  await stack?.stop();
  console.log(`[stack] story-node total ${Date.now() - started} ms`);
});

describe('the story on the real mail stack (no browser)', () => {
  it('Dave subscribes with a gpg key; the confirmation comes over Postfix and Dovecot; gpg decrypts it; he confirms', async () => {
    const dave0 = { address: stack.users.dave!.address };
    const made = await gpg.generateKey('Dave', dave0.address);
    dave = { address: dave0.address, fingerprint: made.fingerprint };
    await gpg.importKey(listArmored);

    const tSub = Date.now();
    const sub = await api(`/v1/lists/${stack.listAddress}/subscriptions`, { address: dave.address, publicKey: made.publicKey });
    expect(sub.status).toBe(202);
    expect(sub.body).toMatchObject({ status: 'confirmation-sent' });

    confirmation = await waitForMail(stack, stack.users.dave!, (m) => m.from.endsWith(`@${stack.listDomain}`), 'confirmation mail');
    console.log(`[stack] confirmation mail in Dave's IMAP inbox ${Date.now() - tSub} ms after subscribing`);
    // Postfix and Dovecot both stamped it: it did travel the real path.
    const raw = confirmation.raw.toString('latin1');
    expect(raw).toMatch(/^Received: from .*\bmx\.example\.test\b/m);
    expect(raw).toMatch(/by mx\.example\.test \(Postfix\)/);
    expect(raw).toMatch(/Delivered-To: dave@example\.test/);

    const out = await gpg.run(['--decrypt'], await armoredMessageOf(confirmation.raw), 'gpg-pass');
    expect(out.code, out.stderr).toBe(0);
    expect(out.status.some((l) => l.startsWith('DECRYPTION_OKAY'))).toBe(true);
    expect(out.status.some((l) => l.startsWith('GOODSIG'))).toBe(true); // signed by the list key
    const inner = await parseInner(out.stdout);
    const token = CONFIRMATION_TOKEN_LINE.exec(inner.text ?? out.stdout.toString('utf8'))?.[1];
    expect(token, 'Letterlock-Confirm line in the decrypted confirmation').toBeTruthy();
    expect(raw).not.toContain(token!); // the token travels only inside the encryption

    const confirmed = await api(`/v1/lists/${stack.listAddress}/subscriptions/confirm`, { token });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ status: 'member', address: dave.address });
  }, 60_000);

  it("Alice's post goes Postfix → list server → Postfix → Dovecot; Dave's gpg shows the plaintext and Alice's good signature", async () => {
    expect(confirmation, 'the subscription step ran').toBeTruthy();
    const { key: listKey } = await readPublicKey(listArmored);
    const post = await composePost({
      message: { subject: SUBJECT, from: { address: alice.address, name: 'Alice Ängström' }, to: [{ address: stack.listAddress }], text: BODY },
      senderKey: alice.privateKey, listKey,
    });
    expect(findMarker(Buffer.from(post.pgpMime), MARKER)).toBeNull(); // only ciphertext leaves Alice
    const reply = await send(stack.ports.smtp, alice.address, stack.listAddress, post.pgpMime);
    expect(reply).toMatch(/^250 /);

    const copy = await waitForMail(stack, stack.users.dave!, (m) => m.uid > confirmation.uid, "Dave's copy of Alice's post", 45_000);
    const raw = copy.raw.toString('latin1');
    // The copy is a new mail made by the list server; Postfix's log shows both hops:
    // Alice's post relayed to the list server, and Dave's copy handed to Dovecot.
    const maillog = readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8');
    expect(maillog).toMatch(new RegExp(`to=<${stack.listAddress}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.ports.listSmtp},.* status=sent`));
    expect(maillog).toMatch(new RegExp(`to=<${dave.address}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.ports.lmtp},.* status=sent`));
    expect(raw).toMatch(/by mx\.example\.test \(Postfix\)/);
    expect(raw).toMatch(/^List-Id: <demo\.lists\.example\.test>/m);
    expect(findMarker(copy.raw, MARKER)).toBeNull();

    await gpg.importKey(alice.publicArmored);
    const out = await gpg.run(['--decrypt'], await armoredMessageOf(copy.raw), 'gpg-pass');
    expect(out.code, out.stderr).toBe(0);
    const goodsig = out.status.find((l) => l.startsWith('GOODSIG '));
    expect(goodsig).toContain(alice.address);
    const validsig = out.status.find((l) => l.startsWith('VALIDSIG '));
    expect(validsig).toBeDefined();
    expect(validsig!.split(' ')).toContain(alice.fingerprint.toUpperCase());
    expect(out.status.some((l) => l.startsWith('BADSIG') || l.startsWith('ERRSIG'))).toBe(false);

    const inner = await parseInner(out.stdout);
    expect(inner.subject).toBe(SUBJECT);
    expect(inner.text).toContain(BODY.trim().split('\n')[2]!);
    expect(inner.from?.address).toBe(alice.address);

    // Bob, a member since the start, got his copy too; Carol, not a member, got nothing.
    await waitForMail(stack, stack.users.bob!, (m) => m.from.endsWith(`@${stack.listDomain}`) || m.raw.includes('List-Id'), "Bob's copy");
    // Nothing is left waiting in Postfix's queue.
    const queue = run('postqueue', ['-c', stack.folders.postfixConfig, '-p']);
    expect(queue).toMatch(/Mail queue is empty/);
  }, 90_000);

  it('the no-plaintext scan over every folder of the stack finds the marker nowhere (and does find a planted one)', async () => {
    // Stop first so every daemon has flushed and closed its files.
    await stack.stop({ remove: false });
    const roots = [...stack.scanRoots(), gpg.home];
    const files = roots.flatMap((r) => listFiles(r));
    const f = stack.folders;
    const daveMail = files.filter((p) => p.startsWith(join(f.mail, 'dave', 'Maildir')) && /\/(cur|new)\//.test(p));
    expect(daveMail.length).toBeGreaterThanOrEqual(2);

    // Controls (raw, base64, quoted-printable, and planted inside the stack folder) first, then the scan.
    scanStack(stack, MARKER, SUBJECT, { extraRoots: [gpg.home], mailboxes: ['dave'] });
    console.log(`[stack] scanned ${files.length} files under ${roots.join(', ')}`);
  }, 60_000);
});
