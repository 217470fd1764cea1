// The real mail stack beside a real Mailman 3 Core (README "Beside Mailman 3"): two
// Mailman lists on one domain, `secret@` bound to Letterlock with `letterlock mailman
// import --fix` and routed to it with `letterlock mailman routes` (Postfix reads that map
// before Mailman's own), and `plain@` left to Mailman. Alice's encrypted post to secret@
// goes Postfix → Letterlock → Postfix → Dovecot and never touches Mailman; Bob's plain
// post to plain@ goes Postfix → Mailman (LMTP) → Postfix → Dovecot and lands in
// Mailman's prototype archiver (a plaintext archive standing in for HyperKitty). The
// no-plaintext scan then covers every folder of the stack, Mailman's var folder included:
// the encrypted post's marker is nowhere, the plain post's marker is in Mailman's
// archive (the scan does reach it).

import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composePost, readMail, readPublicKey } from '../../shared/index.ts';
import { openData } from '../../server/app.ts';
import { registerMember } from '../../server/lists/members.ts';
import { getList } from '../../server/store/lists.ts';
import { send } from '../integration/server/harness.ts';
import { findMarker, scan } from '../integration/server/scan.ts';
import { makeKey, type TestKey } from '../support/keys.ts';
import { fetchAll, waitForMail } from './imap.ts';
import { startMailStack, type MailStack } from './mailstack.ts';
import { run } from './procs.ts';
import { api, scanStack } from './story-kit.ts';

const MARKER = `LLMAILMAN-SECRET-${randomUUID()}`;
const SUBJECT = `Vertraulich ${MARKER}`;
const PLAIN_MARKER = `LLMAILMAN-PLAIN-${randomUUID()}`;
const SECRET_LIST = 'secret@lists.example.test';
const PLAIN_LIST = 'plain@lists.example.test';
const REPO = join(import.meta.dirname, '..', '..');

let stack: MailStack;
let alice: TestKey, bob: TestKey;
let secretId: string;
const started = Date.now();

/** The operator's command line on the stack's list server data folder (its own secret file). */
function cli(...args: string[]) {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.LETTERLOCK_SECRET;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', ...args, '--data', stack.folders.listData], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeKey('alice@example.test'), makeKey('bob@example.test')]);
  const t = Date.now();
  stack = await startMailStack({ mailman: true });
  console.log(`[stack] with Mailman started in ${Date.now() - t} ms: ${JSON.stringify(stack.timings)}`);
  const core = stack.mailman!;
  secretId = await core.createList(SECRET_LIST);
  await core.createList(PLAIN_LIST);
  const rest = core.rest(60_000);
  for (const list of [secretId, PLAIN_LIST.replace('@', '.')]) {
    for (const a of ['alice', 'bob', 'dave']) {
      await rest.subscribe({ listId: list, address: stack.users[a]!.address, preVerified: true, preConfirmed: true, preApproved: true });
    }
  }
}, 400_000);

afterAll(async () => {
  if (process.env.STACK_DEBUG && stack) console.log(readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8'));
  await stack?.stop();
  console.log(`[stack] story-mailman total ${Date.now() - started} ms`);
}, 120_000);

describe('an encrypted list and a plain list on one Mailman site', () => {
  it('secret@ is bound with `mailman import --fix` and routed with `mailman routes`; Postfix resolves it to Letterlock, plain@ to Mailman', async () => {
    const imp = cli('mailman', 'import', SECRET_LIST, '--fix', '--json');
    expect(imp.code, imp.err).toBe(0);
    expect(JSON.parse(imp.out)).toMatchObject({ list: SECRET_LIST, mailmanListId: secretId, created: true, members: 3, invited: 3 });
    expect(await stack.mailman!.rest().archivers(secretId)).toEqual({ prototype: false });

    const hops = ['--letterlock', `127.0.0.1:${stack.ports.listSmtp}`, '--mailman-lmtp', `127.0.0.1:${stack.mailman!.lmtpPort}`];
    // Bound but not routed yet: the check asks this Postfix and finds secret@ going to Mailman.
    const before = cli('mailman', 'routes', ...hops, '--check', '--postfix-config', stack.folders.postfixConfig);
    expect(before.code, before.err).toBe(1);
    expect(before.out).toMatch(new RegExp(`^secret@lists\\.example\\.test\\s+smtp:\\[127\\.0\\.0\\.1\\]:${stack.ports.listSmtp}\\s+lmtp:\\[127\\.0\\.0\\.1\\]:${stack.mailman!.lmtpPort}\\s+WRONG$`, 'm'));
    expect(before.err).toMatch(/addresses are not routed as they should be/);
    const routes = cli('mailman', 'routes', ...hops);
    expect(routes.code, routes.err).toBe(0);
    writeFileSync(stack.folders.letterlockTransport, routes.out);
    run('postmap', [`hash:${stack.folders.letterlockTransport}`]);
    // As the README says: reload, or daemons that already looked a key up may answer from the old table once more.
    run('postfix', ['-c', stack.folders.postfixConfig, 'reload'], { env: { ...process.env, MAIL_CONFIG: stack.folders.postfixConfig } });
    const after = cli('mailman', 'routes', ...hops, '--check', '--postfix-config', stack.folders.postfixConfig, '--json');
    expect(after.code, after.err + after.out).toBe(0);
    expect((JSON.parse(after.out) as Array<{ ok: boolean }>).map((c) => c.ok)).toEqual(Array(9).fill(true));
    const q = (key: string) => run('postmap', ['-q', key, `hash:${stack.folders.letterlockTransport}`, `hash:${join(stack.folders.mailmanVar!, 'data', 'postfix_lmtp')}`]).trim();
    expect(q(SECRET_LIST)).toBe(`smtp:[127.0.0.1]:${stack.ports.listSmtp}`);
    expect(q('secret-request@lists.example.test')).toBe(`smtp:[127.0.0.1]:${stack.ports.listSmtp}`);
    expect(q('secret-owner@lists.example.test')).toBe(`lmtp:[127.0.0.1]:${stack.mailman!.lmtpPort}`);
    expect(q(PLAIN_LIST)).toBe(`lmtp:[127.0.0.1]:${stack.mailman!.lmtpPort}`);

    // Alice and Bob register keys; Dave stays a Mailman member without one.
    const sql = await openData(stack.folders.listData, readFileSync(join(stack.folders.listData, 'secret'), 'utf8').trim());
    try {
      const list = (await getList(sql, SECRET_LIST))!;
      for (const k of [alice, bob]) await registerMember(sql, list.id, k.address, k.publicArmored);
    } finally {
      await sql.close();
    }
  }, 180_000);

  it("Alice's encrypted post to secret@ reaches Bob through Letterlock only; Dave gets the invitation and a notice, never the post", async () => {
    const info = await api(stack, `/v1/lists/${SECRET_LIST}`);
    expect(info.status).toBe(200);
    const { key: listKey } = await readPublicKey((info.body.listKey as { armored: string }).armored);
    const post = await composePost({
      message: { subject: SUBJECT, from: { address: alice.address, name: 'Alice' }, to: [{ address: SECRET_LIST }], text: `Nur für die Liste: ${MARKER}\n` },
      senderKey: alice.privateKey, listKey,
    });
    expect(findMarker(Buffer.from(post.pgpMime), MARKER)).toBeNull();
    expect(await send(stack.ports.smtp, alice.address, SECRET_LIST, post.pgpMime)).toMatch(/^250 /);

    const copy = await waitForMail(stack, stack.users.bob!, (m) => /^List-Id: <secret\.lists\.example\.test>/m.test(m.raw.toString('latin1')) && m.raw.includes('BEGIN PGP MESSAGE'), "Bob's copy", 90_000);
    expect(findMarker(copy.raw, MARKER)).toBeNull();
    const maillog = readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8');
    expect(maillog).toMatch(new RegExp(`to=<${SECRET_LIST}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.ports.listSmtp},.* status=sent`));
    expect(maillog).not.toMatch(new RegExp(`to=<${SECRET_LIST}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.mailman!.lmtpPort}`));
    // The subscriber's reader (copies hide recipients' key IDs, so it tries Bob's key on each).
    const read = await readMail(copy.raw, { privateKey: bob.privateKey, senderKeys: [alice.publicKey] });
    expect(read.verification.valid).toBe(true); // Alice's own signature, end to end
    expect(Buffer.from(read.content).toString('utf8')).toContain(MARKER);

    // Dave: the import's invitation and the key notice, both content-free; no copy of the post.
    const dave = stack.users.dave!;
    await waitForMail(stack, dave, (m) => /is now encrypted: register your OpenPGP key/.test(m.subject), "Dave's invitation", 60_000);
    await waitForMail(stack, dave, (m) => /need your OpenPGP key/.test(m.subject), "Dave's key notice", 60_000);
    const daveMail = await fetchAll(stack, dave);
    expect(daveMail.some((m) => m.raw.includes('BEGIN PGP MESSAGE'))).toBe(false);
    for (const m of daveMail) expect(findMarker(m.raw, MARKER)).toBeNull();
  }, 180_000);

  it("Bob's plain post to plain@ goes through Mailman (LMTP in, SMTP out) and reaches Alice", async () => {
    const raw = `From: Bob <${bob.address}>\r\nTo: ${PLAIN_LIST}\r\nSubject: Plain talk\r\nMessage-ID: <${randomUUID()}@example.test>\r\nDate: ${new Date().toUTCString()}\r\n\r\nNot secret at all: ${PLAIN_MARKER}\r\n`;
    expect(await send(stack.ports.smtp, bob.address, PLAIN_LIST, raw)).toMatch(/^250 /);
    const got = await waitForMail(stack, stack.users.alice!, (m) => m.raw.includes(PLAIN_MARKER), "Alice's copy from Mailman", 120_000);
    expect(got.raw.toString('latin1')).toMatch(/^List-Id: .*<plain\.lists\.example\.test>/m);
    expect(got.subject).toMatch(/^\[Plain\] Plain talk/);
    const maillog = readFileSync(join(stack.folders.logs, 'postfix.log'), 'utf8');
    expect(maillog).toMatch(new RegExp(`to=<${PLAIN_LIST}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${stack.mailman!.lmtpPort},.* status=sent`));
    // Mailman's archive runner works its own queue, after delivery: wait for it before the
    // stack stops (on a loaded machine Alice's copy arrives well before the archive has it).
    const archives = join(stack.folders.mailmanVar!, 'archives', 'prototype');
    await expect.poll(() => existsSync(archives) && scan([archives], PLAIN_MARKER).length > 0, { timeout: 120_000, interval: 500 }).toBe(true);
  }, 240_000);

  it("the no-plaintext scan over the stack, Mailman's var folder included: the encrypted post's marker nowhere; the plain post's in Mailman's archive", async () => {
    await stack.stop({ remove: false });
    const mmVar = stack.folders.mailmanVar!;
    // The archiver (HyperKitty's stand-in) has the plain list and nothing of the bound one.
    const archives = join(mmVar, 'archives', 'prototype');
    expect(existsSync(archives)).toBe(true);
    expect(readdirSync(archives)).toContain(PLAIN_LIST);
    expect(readdirSync(archives)).not.toContain(SECRET_LIST);
    // The scan reaches Mailman's storage: it finds the plain post there.
    const plainHits = scan([mmVar], PLAIN_MARKER).map((h) => h.file);
    expect(plainHits.some((f) => f.startsWith(archives)), plainHits.join(', ')).toBe(true);
    // And the encrypted post's marker is nowhere in the stack (Mailman's folder is under its root).
    expect(stack.scanRoots().some((r) => mmVar.startsWith(r))).toBe(true);
    scanStack(stack, MARKER, SUBJECT, { mailboxes: ['bob', 'dave'] });
  }, 120_000);
});
