// The protocol demo: the whole message path of DESIGN.md, in one process, with
// every step printed. It creates a list key, an archive key and three subscribers
// in a temporary folder, composes a signed post as Alice, then does on the list's
// side open -> verify -> seal -> wrap, writes each subscriber's copy as a .eml
// file, reads one back as Bob, and re-wraps the archive record for Carol.
// Run: npm start   (until the list server lands, `npm start` runs this demo)

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assembleCopy, buildCopyMail, composePost, formatDate, generateKey, KeyIdentity, KeyRecipient,
  openPost, parsePrivateKey, readMail, readMessage, readPublicKey, rewrap, seal, unlockPrivateKey, wrapMany,
} from '../../shared/index.ts';

const LIST = 'crypto-club@lists.example.org';
const dir = mkdtempSync(join(tmpdir(), 'letterlock-demo-'));
const step = (n: number, text: string) => console.log(`\n${n}. ${text}`);
const ms = (t0: number) => `${(performance.now() - t0).toFixed(1)} ms`;

step(1, `Keys (v4 Curve25519, passphrase-protected), in ${dir}`);
let t0 = performance.now();
const listKey = await generateKey({ kind: 'list', address: LIST, passphrase: 'server-secret' });
const archiveKey = await generateKey({ kind: 'archive', address: LIST, passphrase: 'server-secret' });
const people = ['alice', 'bob', 'carol'] as const;
const subscribers = Object.fromEntries(
  await Promise.all(people.map(async (p) => [p, await generateKey({ kind: 'subscriber', address: `${p}@example.org`, name: p[0]!.toUpperCase() + p.slice(1), passphrase: `${p}-pass` })] as const)),
);
for (const [name, k] of [['list', listKey], ['archive', archiveKey], ...Object.entries(subscribers)] as const) {
  writeFileSync(join(dir, `${name}.pub.asc`), k.publicKeyArmored);
  console.log(`   ${name.padEnd(8)} ${k.facts.fingerprint}`);
  if (name === 'bob') writeFileSync(join(dir, 'bob.sec.asc'), k.privateKeyArmored); // protected: passphrase bob-pass
}
console.log(`   (${ms(t0)})`);

const unlock = async (armored: string, pass: string) => unlockPrivateKey(await parsePrivateKey(armored), pass);
const alice = await unlock(subscribers.alice!.privateKeyArmored, 'alice-pass');
const bob = await unlock(subscribers.bob!.privateKeyArmored, 'bob-pass');
const carol = await unlock(subscribers.carol!.privateKeyArmored, 'carol-pass');
const list = await unlock(listKey.privateKeyArmored, 'server-secret');
const archive = await unlock(archiveKey.privateKeyArmored, 'server-secret');
const memberKeys = await Promise.all(people.map(async (p) => (await readPublicKey(subscribers[p]!.publicKeyArmored, { expectedAddress: `${p}@example.org` })).key));

step(2, 'Alice composes a post: signed by her, encrypted to the list key and to herself (PGP/MIME)');
t0 = performance.now();
const post = await composePost({
  message: { subject: 'Grüße from the demo ✉', from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: LIST }], text: 'Hello list! This body is end-to-end encrypted.\n' },
  senderKey: alice,
  listKey: list.toPublic(),
});
writeFileSync(join(dir, 'post-from-alice.eml'), post.pgpMime);
console.log(`   post-from-alice.eml: ${post.pgpMime.length} bytes, outer Subject "...", real subject only inside (${ms(t0)})`);

step(3, 'List: open (find payload, decrypt in memory with the list key) and verify Alice against the member keys');
t0 = performance.now();
const opened = await openPost(post.pgpMime, { listKey: list, memberKeys });
if (!opened.verification.valid) throw new Error(opened.verification.reason);
console.log(`   form ${opened.form}, ${opened.innerPackets.length} bytes of signed inner packets, signer ${opened.verification.signerFingerprint} (${ms(t0)})`);

step(4, 'List: seal once under a fresh session key K');
t0 = performance.now();
const sealed = await seal(opened.innerPackets);
console.log(`   encrypted body: ${sealed.body.length} bytes, shared by every copy (${ms(t0)})`);

step(5, 'List: wrap K to each subscriber and to the archive key (one PKESK each)');
t0 = performance.now();
const recipients = await Promise.all(memberKeys.map((k) => KeyRecipient.fromPublicKey(k)));
const wrapped = await wrapMany(sealed.sessionKey, recipients);
const archiveRecipient = await KeyRecipient.fromPublicKey(archive.toPublic());
const [archiveWrapped] = await wrapMany(sealed.sessionKey, [archiveRecipient]);
console.log(`   wrapped keys: ${wrapped.map((w) => `${w.length} B`).join(', ')}; archive: ${archiveWrapped!.length} B (${ms(t0)})`);

step(6, 'List: assemble each copy (PKESK || body) as a PGP/MIME mail and write it as .eml');
for (const [i, p] of people.entries()) {
  const mail = buildCopyMail([
    ['From', `<${LIST}>`], ['To', `<${p}@example.org>`], ['Subject', '...'], ['Date', formatDate(new Date())],
    ['List-Id', `<${LIST.replace('@', '.')}>`],
  ], assembleCopy(wrapped[i]!, sealed.body));
  writeFileSync(join(dir, `copy-for-${p}.eml`), mail);
  console.log(`   copy-for-${p}.eml (${mail.length} bytes)`);
}
writeFileSync(join(dir, 'archive-record.bin'), assembleCopy(archiveWrapped!, sealed.body));

step(7, 'Bob reads his copy: decrypts with his key and verifies Alice\'s original signature');
t0 = performance.now();
const bobRead = await readMail(readFileSync(join(dir, 'copy-for-bob.eml')), { privateKey: bob, senderKeys: memberKeys });
console.log(`   subject: ${bobRead.message.subject}`);
console.log(`   from:    ${bobRead.message.from?.name} <${bobRead.message.from?.address}>`);
console.log(`   body:    ${bobRead.message.text?.trim()}`);
console.log(`   signature: ${bobRead.verification.valid ? `good, by ${bobRead.verification.signerFingerprint}` : `NOT valid: ${bobRead.verification.reason}`} (${ms(t0)})`);

step(8, 'Archive: unwrap K with the archive key, re-wrap it to Carol; Carol decrypts the stored body');
t0 = performance.now();
const carolWrapped = await rewrap(archiveWrapped!, new KeyIdentity(archive), await KeyRecipient.fromPublicKey(carol.toPublic()));
const carolRead = await readMessage(assembleCopy(carolWrapped, sealed.body), { privateKey: carol, senderKeys: memberKeys });
console.log(`   Carol reads "${carolRead.message.subject}", signature ${carolRead.verification.valid ? 'good' : 'bad'} (${ms(t0)})`);

console.log(`\nDone. Files are in ${dir}`);
console.log('Read Bob\'s copy with GnuPG itself:');
console.log(`  G=$(mktemp -d); gpg --homedir $G --batch --pinentry-mode loopback --passphrase bob-pass --import ${dir}/bob.sec.asc ${dir}/alice.pub.asc`);
console.log(`  gpg --homedir $G --batch --pinentry-mode loopback --passphrase bob-pass --decrypt ${dir}/copy-for-bob.eml`);
