// Round trips over generated inputs: compose (sender) → open + verify (list) →
// seal + wrap + copy mail (list) → read (subscriber). What the subscriber sees
// must be exactly what the sender wrote: subject, text (CRLF or LF, any
// Unicode), HTML, and attachments byte for byte.

import fc from 'fast-check';
import PostalMime from 'postal-mime';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  assembleCopy, buildCopyMail, composePost, equalBytes, KeyRecipient, openPost, readMail, seal, wrapMany, type AttachmentInput,
} from '../../../shared/index.ts';
import { LIST_ADDRESS, makeKey, type TestKey } from '../../support/keys.ts';

let list: TestKey, alice: TestKey, bob: TestKey;

beforeAll(async () => {
  [list, alice, bob] = await Promise.all([makeKey(LIST_ADDRESS, 'list'), makeKey('alice@example.org'), makeKey('bob@example.org')]);
});

interface Input {
  subject: string;
  text: string;
  html?: string;
  attachments: AttachmentInput[];
  form: 'pgpMime' | 'inline';
  delivery: 'pgp-mime' | 'inline';
}

async function roundTrip(input: Input) {
  const post = await composePost({
    message: { subject: input.subject, from: { address: 'alice@example.org', name: 'Alice' }, to: [{ address: LIST_ADDRESS }], text: input.text, ...(input.html !== undefined ? { html: input.html } : {}), attachments: input.attachments },
    senderKey: alice.privateKey, listKey: list.publicKey,
  });
  const opened = await openPost(post[input.form], { listKey: list.privateKey, memberKeys: [alice.publicKey] });
  const sealed = await seal(opened.innerPackets);
  const [wrapped] = await wrapMany(sealed.sessionKey, [await KeyRecipient.fromPublicKey(bob.publicKey)]);
  const mail = buildCopyMail([['From', `<${LIST_ADDRESS}>`], ['To', '<bob@example.org>'], ['Subject', '...']], assembleCopy(wrapped!, sealed.body), input.delivery);
  return readMail(mail, { privateKey: bob.privateKey, senderKeys: [alice.publicKey] });
}

async function expectSame(input: Input): Promise<void> {
  const read = await roundTrip(input);
  expect(read.verification).toMatchObject({ valid: true, signerFingerprint: alice.fingerprint });
  expect(read.message.subject).toBe(input.subject);
  expect(read.message.from).toEqual({ address: 'alice@example.org', name: 'Alice' });
  // postal-mime reports an empty text part as undefined.
  expect(read.message.text ?? '').toBe(input.text);
  if (input.html !== undefined) expect(read.message.html ?? '').toBe(input.html);
  // Attachments: names, sizes, and every byte.
  const parsed = await PostalMime.parse(read.content, { attachmentEncoding: 'arraybuffer' });
  expect(parsed.attachments.map((a) => a.filename)).toEqual(input.attachments.map((a) => a.filename));
  expect(read.message.attachments.map((a) => a.size)).toEqual(input.attachments.map((a) => a.content.length));
  // equalBytes: vitest's deep equality is slow on megabytes.
  parsed.attachments.forEach((a, i) => expect(equalBytes(new Uint8Array(a.content as ArrayBuffer), input.attachments[i]!.content)).toBe(true));
}

const noLineBreaks = (s: string) => !/[\r\n\0]/.test(s);
const unicodeText = fc.string({ unit: 'grapheme', maxLength: 300 });
const lineEndings = fc.array(fc.tuple(unicodeText.filter(noLineBreaks), fc.constantFrom('\n', '\r\n')), { maxLength: 8 })
  .map((lines) => lines.map(([l, eol]) => l + eol).join(''));

describe('round trip over generated inputs', () => {
  it('arbitrary Unicode subjects and bodies, CRLF and LF, attachments, both forms in and out', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          subject: unicodeText.filter(noLineBreaks).map((s) => s.trim()).filter((s) => s.length > 0),
          text: fc.oneof(unicodeText, lineEndings),
          html: fc.option(fc.string({ unit: 'grapheme', maxLength: 100 }).map((s) => `<p>${s}</p>`), { nil: undefined }),
          attachments: fc.array(
            fc.record({
              filename: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter(noLineBreaks).map((s) => s.trim()).filter((s) => s.length > 0),
              contentType: fc.constantFrom('application/octet-stream', 'text/plain', 'image/png'),
              content: fc.uint8Array({ maxLength: 4096 }),
            }),
            { maxLength: 3 },
          ),
          form: fc.constantFrom('pgpMime' as const, 'inline' as const),
          delivery: fc.constantFrom('pgp-mime' as const, 'inline' as const),
        }),
        async (input) => expectSame(input as Input),
      ),
      { numRuns: 40 },
    );
  });

  it.each([
    ['0 bytes', 0],
    ['1 byte', 1],
    ['1 KB', 1024],
    ['1 MB', 1024 * 1024],
    ['10 MB', 10 * 1024 * 1024],
  ])('a %s body arrives exactly', { timeout: 120_000 }, async (_name, size) => {
    // Mixed content: ASCII lines with both line endings plus multi-byte characters.
    const unit = 'Grüße, list — ✓ line\r\nnext line\n';
    const text = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    await expectSame({ subject: `Body of ${size} characters`, text, attachments: [], form: 'pgpMime', delivery: 'pgp-mime' });
  });

  it('a 2 MB binary attachment arrives byte for byte', { timeout: 60_000 }, async () => {
    const content = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < content.length; i += 65536) crypto.getRandomValues(content.subarray(i, i + 65536));
    await expectSame({ subject: 'Attachment', text: 'see attached', attachments: [{ filename: 'données.bin', content }], form: 'inline', delivery: 'pgp-mime' });
  });
});
