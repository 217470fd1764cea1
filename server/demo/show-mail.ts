// `gpg --decrypt COPY | npx tsx server/demo/show-mail.ts`: shows what gpg decrypted
// as a person reads it. A PGP/MIME copy decrypts to a MIME entity whose text is
// base64 (so the author's signature survives any mail path byte for byte); this
// prints its protected headers and decoded text, and names its attachments.
// Bare text (inline PGP) is printed as it is. Runs on the subscriber's side only.

import { parseInner } from '../../shared/mime/parse-inner.ts';

const MAX_INPUT = 64 * 1024 * 1024; // the server's decompression limit: no copy is larger

// Control characters (except newline and tab) from a post must not drive the terminal.
const safe = (s: string) => s.replace(/\r\n/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');

async function readStdin(): Promise<Uint8Array | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_INPUT) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

if (process.argv.length > 2 || process.stdin.isTTY) {
  console.log('usage: gpg --decrypt COPY | npx tsx server/demo/show-mail.ts\n  prints the decrypted mail with its text decoded (headers, text, attachment names)');
  process.exit(process.argv.slice(2).some((a) => a === '--help' || a === '-h') ? 0 : 2);
}
const input = await readStdin();
if (input === null) {
  console.error(`show-mail: more than ${MAX_INPUT / 1024 / 1024} MB on input; not a Letterlock copy`);
  process.exit(1);
}
if (input.length === 0) {
  console.error('show-mail: nothing on input (did gpg fail? see its messages above)');
  process.exit(1);
}
const mail = await parseInner(input);
if (mail.isMime) {
  const fields: Array<[string, string | null]> = [
    ['From', mail.from ? (mail.from.name ? `${mail.from.name} <${mail.from.address}>` : mail.from.address) : null],
    ['To', mail.to.map((m) => m.address).join(', ') || null],
    ['Subject', mail.subject],
    ['Date', mail.date?.toUTCString() ?? null],
  ];
  for (const [name, value] of fields) if (value !== null) console.log(`${name}: ${safe(value)}`);
  console.log('');
}
const text = mail.text ?? (mail.html !== null ? '(an HTML body only; open the copy in a mail client to see it)' : '(no text part)');
console.log(safe(text).replace(/\n$/, ''));
for (const a of mail.attachments) console.log(`[attachment ${safe(a.filename ?? '(no name)')}, ${safe(a.contentType)}, ${a.size} bytes]`);
