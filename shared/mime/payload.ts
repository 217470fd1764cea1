// Finds the one OpenPGP payload of an incoming mail, in either form a sender may
// use: PGP/MIME (RFC 3156) or an inline armored block in a text body. Also returns
// the outer envelope facts the list needs (From and the threading headers), never
// the outer Subject: a webmail user may have typed a real subject there.

import PostalMime from 'postal-mime';
import { fromUtf8 } from '../bytes.ts';
import { fail, isLetterlockError } from '../errors.ts';
import { headerText } from './encode.ts';
import { armoredBlocks, htmlToText } from './armor-scan.ts';
import { isAutomatic } from './automatic.ts';

export type PayloadForm = 'pgp-mime' | 'inline';

export interface OuterFacts {
  from: string | null; // bare address, lower-cased
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  date: Date | null;
  /** Sent by a program (RFC 3834 Auto-Submitted other than "no", or Precedence bulk/junk/list): never answered with a bounce. */
  autoSubmitted: boolean;
}

/**
 * What the sender put in clear on the outer mail: its Subject and the From
 * display name. Held in memory only (a list may show them on copies of posts
 * whose signed content has no protected headers); never stored in clear.
 */
export interface ClearFacts {
  subject: string | null;
  fromName: string | null;
}

export interface FoundPayload {
  form: PayloadForm;
  clear: ClearFacts;
  /** Armored text or binary OpenPGP, exactly as found. */
  armored: string | null;
  binary: Uint8Array | null;
  outer: OuterFacts;
}

function contentTypeOf(headers: Array<{ key: string; value: string }>): string {
  return (headers.find((h) => h.key === 'content-type')?.value ?? 'text/plain').toLowerCase();
}

// Bounds on the header work an incoming mail may ask of the MIME parser, checked
// before it runs: header bytes across all parts, MIME nesting, and RFC 2047
// encoded words (postal-mime decodes runs of base64 encoded words in time
// quadratic in their number: 100,000 of them took 25 s).
export const MIME_LIMITS = Object.freeze({ maxHeaderBytes: 256 * 1024, maxNestingDepth: 16, maxEncodedWords: 2000 });

/** Counts "=?" (the opening of an encoded word) in one forward pass, stopping past `limit`. */
export function countEncodedWords(raw: Uint8Array | string, limit: number): number {
  let n = 0;
  if (typeof raw === 'string') {
    for (let i = raw.indexOf('=?'); i >= 0 && n <= limit; i = raw.indexOf('=?', i + 2)) n++;
    return n;
  }
  for (let i = raw.indexOf(0x3d); i >= 0 && n <= limit; i = raw.indexOf(0x3d, i + 1)) if (raw[i + 1] === 0x3f) n++;
  return n;
}

// An outer id is kept only when it is one: printable ASCII without angle
// brackets or spaces, of bounded length. Anything else (NUL, CR/LF, 8-bit) is
// dropped here, before it can reach a header writer.
const ID_CHARS = '[\\x21-\\x3b\\x3d\\x3f-\\x7e]'; // printable ASCII without < > or space
/** The longest message id kept, brackets included. */
export const MAX_MESSAGE_ID_CHARS = 250;
const MESSAGE_ID = new RegExp(`<${ID_CHARS}{1,${MAX_MESSAGE_ID_CHARS - 2}}>`, 'g');
const ONE_MESSAGE_ID = new RegExp(`^<${ID_CHARS}{1,${MAX_MESSAGE_ID_CHARS - 2}}>$`);

/** True for a message id fit to write into a header: the rule ingest keeps ids by. */
export function isPlainMessageId(id: unknown): id is string {
  return typeof id === 'string' && id.length <= MAX_MESSAGE_ID_CHARS && ONE_MESSAGE_ID.test(id);
}

function messageIds(value: string | undefined): string[] {
  return value ? (value.slice(0, 64 * 1024).match(MESSAGE_ID) ?? []) : [];
}

/** The outer facts a refusal carries when they were read before it (see findPayload). */
export function outerFactsOf(e: unknown): OuterFacts | null {
  const outer = e && typeof e === 'object' && 'outer' in e ? (e as { outer: unknown }).outer : null;
  return outer && typeof outer === 'object' ? (outer as OuterFacts) : null;
}

export async function findPayload(raw: Uint8Array | string, maxBytes: number): Promise<FoundPayload> {
  const size = typeof raw === 'string' ? raw.length : raw.byteLength;
  if (size > maxBytes) fail('TOO_LARGE', `${size} bytes, limit ${maxBytes}`);

  if (countEncodedWords(raw, MIME_LIMITS.maxEncodedWords) > MIME_LIMITS.maxEncodedWords) {
    fail('HEADERS_TOO_LARGE', `more than ${MIME_LIMITS.maxEncodedWords} encoded words`);
  }
  let mail;
  try {
    mail = await PostalMime.parse(raw, {
      attachmentEncoding: 'arraybuffer', maxHeadersSize: MIME_LIMITS.maxHeaderBytes, maxNestingDepth: MIME_LIMITS.maxNestingDepth,
    });
  } catch (e) {
    const text = e instanceof Error ? e.message : '';
    if (/Maximum (header size|MIME nesting depth)/i.test(text)) fail('HEADERS_TOO_LARGE', undefined, e);
    fail('MIME_MALFORMED', undefined, e);
  }

  const clear: ClearFacts = { subject: headerText(mail.subject), fromName: headerText(mail.from?.name) };
  const outer: OuterFacts = {
    from: mail.from?.address ? mail.from.address.toLowerCase() : null,
    messageId: messageIds(mail.messageId)[0] ?? null,
    inReplyTo: messageIds(mail.inReplyTo)[0] ?? null,
    references: messageIds(mail.references).slice(0, 100),
    date: mail.date && !Number.isNaN(Date.parse(mail.date)) ? new Date(mail.date) : null,
    autoSubmitted: isAutomatic(mail.headers),
  };

  try {
    const topType = contentTypeOf(mail.headers);
    if (topType.startsWith('multipart/encrypted')) {
      if (!/protocol\s*=\s*"?application\/pgp-encrypted"?/.test(topType)) fail('NO_PAYLOAD', 'multipart/encrypted with an unknown protocol');
      const parts = mail.attachments.filter((a) => a.mimeType.toLowerCase() === 'application/octet-stream');
      if (parts.length === 0) fail('NO_PAYLOAD', 'PGP/MIME without an encrypted part');
      if (parts.length > 1) fail('MULTIPLE_PAYLOADS');
      return { form: 'pgp-mime', ...encryptedPart(parts[0]!), outer, clear };
    }
    const mangled = topType.startsWith('multipart/mixed') ? exchangeMangled(mail) : null;
    if (mangled) return { form: 'pgp-mime', ...encryptedPart(mangled), outer, clear };

    // Inline: prefer the plain-text body; an HTML alternative usually repeats it.
    let blocks = armoredBlocks(mail.text);
    if (blocks.length === 0 && mail.html) {
      blocks = armoredBlocks(htmlToText(mail.html));
    }
    const encryptedAttachments = mail.attachments.filter((a) => a.mimeType.toLowerCase() === 'application/pgp-encrypted' || /\.(pgp|gpg)$/i.test(a.filename ?? ''));
    if (blocks.length + encryptedAttachments.length > 1) fail('MULTIPLE_PAYLOADS');
    if (blocks.length === 1) return { form: 'inline', armored: blocks[0]!, binary: null, outer, clear };
    if (encryptedAttachments.length === 1) fail('NO_PAYLOAD', 'encrypted attachments are not posts; send PGP/MIME or an inline encrypted body');
    fail('NO_PAYLOAD');
  } catch (e) {
    // A refusal after the outer facts were read carries them, so a notice can name the post's Message-ID.
    if (isLetterlockError(e)) Object.assign(e, { outer });
    throw e;
  }
}

type Attachment = Awaited<ReturnType<typeof PostalMime.parse>>['attachments'][number];

/** The encrypted part of PGP/MIME, armored (the usual) or binary. */
function encryptedPart(part: Attachment): { armored: string | null; binary: Uint8Array | null } {
  const bytes = new Uint8Array(part.content as ArrayBuffer);
  const asText = fromUtf8(bytes.subarray(0, 64)).trimStart();
  if (!asText.startsWith('-----BEGIN PGP')) return { armored: null, binary: bytes };
  const blocks = armoredBlocks(fromUtf8(bytes));
  if (blocks.length > 1) fail('MULTIPLE_PAYLOADS');
  if (blocks.length === 0) fail('NO_PAYLOAD', 'the encrypted part is not an armored message');
  return { armored: blocks[0]!, binary: null };
}

/**
 * PGP/MIME as Exchange and Outlook deliver it: the multipart/encrypted wrapper
 * turned into multipart/mixed, its two parts into attachments (the
 * "application/pgp-encrypted" version part and "encrypted.asc"), sometimes after
 * an empty text part. Recognised the way Thunderbird's and Enigmail's repair
 * code does: exactly one version part saying "Version: 1", exactly one
 * octet-stream (or .asc) part, and no text beyond whitespace.
 */
function exchangeMangled(mail: Awaited<ReturnType<typeof PostalMime.parse>>): Attachment | null {
  const version = mail.attachments.filter((a) => a.mimeType.toLowerCase() === 'application/pgp-encrypted');
  if (version.length !== 1) return null;
  const versionText = fromUtf8(new Uint8Array(version[0]!.content as ArrayBuffer).subarray(0, 256));
  if (!/^\s*Version:\s*1\s*$/im.test(versionText)) return null;
  const encrypted = mail.attachments.filter((a) => a !== version[0] && (a.mimeType.toLowerCase() === 'application/octet-stream' || /\.asc$/i.test(a.filename ?? '')));
  if (encrypted.length !== 1 || mail.attachments.length !== 2) return null;
  if ((mail.text ?? '').trim() !== '' || (mail.html !== undefined && htmlToText(mail.html).trim() !== '')) return null;
  return encrypted[0]!;
}
