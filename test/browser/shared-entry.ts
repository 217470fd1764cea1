// Bundled by vite for the browser in test/browser/shared-in-chromium.test.ts: the
// whole protocol path run inside a real Chromium page, with nothing but the
// browser's own APIs (no Node polyfills are bundled).

import {
  assembleCopy, buildCopyMail, composePost, generateKey, KeyIdentity, KeyRecipient, openPost, parsePrivateKey,
  readMail, readMessage, readPublicKey, rewrap, seal, unlockPrivateKey, wrapMany,
} from '../../shared/index.ts';

async function unlocked(armored: string, passphrase: string) {
  return unlockPrivateKey(await parsePrivateKey(armored), passphrase);
}

export async function roundTrip(subject: string, text: string) {
  const [listG, archiveG, aliceG, bobG] = await Promise.all([
    generateKey({ kind: 'list', address: 'list@example.org', passphrase: 'l' }),
    generateKey({ kind: 'archive', address: 'list@example.org', passphrase: 'a' }),
    generateKey({ kind: 'subscriber', address: 'alice@example.org', name: 'Alice', passphrase: 'al', protection: 'argon2' }),
    generateKey({ kind: 'subscriber', address: 'bob@example.org', passphrase: 'b' }),
  ]);
  const [list, archive, alice, bob] = await Promise.all([
    unlocked(listG.privateKeyArmored, 'l'), unlocked(archiveG.privateKeyArmored, 'a'),
    unlocked(aliceG.privateKeyArmored, 'al'), unlocked(bobG.privateKeyArmored, 'b'),
  ]);
  const { key: alicePub } = await readPublicKey(aliceG.publicKeyArmored, { expectedAddress: 'alice@example.org' });
  const post = await composePost({ message: { subject, from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: 'list@example.org' }], text }, senderKey: alice, listKey: list.toPublic() });
  const opened = await openPost(post.inline, { listKey: list, memberKeys: [alicePub] });
  const sealed = await seal(opened.innerPackets);
  const [toBob, toArchive] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(bob.toPublic()), await KeyRecipient.fromPublicKey(archive.toPublic())]);
  const mail = buildCopyMail([['From', '<list@example.org>'], ['To', '<bob@example.org>'], ['Subject', '...']], assembleCopy(toBob!, sealed.body));
  const read = await readMail(mail, { privateKey: bob, senderKeys: [alicePub] });
  const rewrapped = await rewrap(toArchive!, new KeyIdentity(archive), await KeyRecipient.fromPublicKey(bob.toPublic()));
  const fromArchive = await readMessage(assembleCopy(rewrapped, sealed.body), { privateKey: bob, senderKeys: [alicePub] });
  return {
    subject: read.message.subject,
    text: read.message.text,
    signatureValid: read.verification.valid,
    signer: read.verification.valid ? read.verification.signerFingerprint : null,
    aliceFingerprint: aliceG.facts.fingerprint,
    archiveSubject: fromArchive.message.subject,
    hasNodeGlobals: typeof (globalThis as { process?: unknown }).process !== 'undefined' || typeof (globalThis as { Buffer?: unknown }).Buffer !== 'undefined',
  };
}
