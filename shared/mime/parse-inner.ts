// Parses the decrypted inner entity for display: protected headers, text and
// HTML bodies, attachment names and sizes. Plain text (inline PGP from other
// clients) is returned as text. HTML is returned as received: rendering it is the
// reader's job, sanitized and sandboxed.

import PostalMime from 'postal-mime';
import { fromUtf8 } from '../bytes.ts';

export interface ParsedMailbox {
  address: string;
  name: string;
}

export interface ParsedAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  /** The decoded bytes (the extension offers them for download from its own page). */
  content: Uint8Array;
}

export interface ParsedInner {
  isMime: boolean;
  subject: string | null;
  from: ParsedMailbox | null;
  to: ParsedMailbox[];
  date: Date | null;
  messageId: string | null;
  inReplyTo: string | null;
  text: string | null;
  html: string | null;
  attachments: ParsedAttachment[];
}

// A header block: one or more "Name: value" lines (with folded continuations)
// ending in an empty line, one of them a Content-Type.
const HEADER_BLOCK = /^(?:[!-9;-~]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+\r?\n/;

export function looksLikeMime(bytes: Uint8Array): boolean {
  const head = fromUtf8(bytes.subarray(0, 16384));
  const block = HEADER_BLOCK.exec(head);
  return block !== null && /^content-type:/im.test(block[0]);
}

function mailbox(m: { address?: string; name?: string } | undefined): ParsedMailbox | null {
  return m?.address ? { address: m.address, name: m.name ?? '' } : null;
}

export async function parseInner(bytes: Uint8Array): Promise<ParsedInner> {
  if (!looksLikeMime(bytes)) {
    return { isMime: false, subject: null, from: null, to: [], date: null, messageId: null, inReplyTo: null, text: fromUtf8(bytes), html: null, attachments: [] };
  }
  const mail = await PostalMime.parse(bytes, { attachmentEncoding: 'arraybuffer' });
  const to = (mail.to ?? []).map((m) => mailbox(m as { address?: string; name?: string })).filter((m): m is ParsedMailbox => m !== null);
  return {
    isMime: true,
    subject: mail.subject ?? null,
    from: mailbox(mail.from as { address?: string; name?: string } | undefined),
    to,
    date: mail.date && !Number.isNaN(Date.parse(mail.date)) ? new Date(mail.date) : null,
    messageId: mail.messageId ?? null,
    inReplyTo: mail.inReplyTo ?? null,
    text: mail.text ?? null,
    html: mail.html ?? null,
    attachments: mail.attachments.map((a) => ({
      filename: a.filename ?? null,
      contentType: a.mimeType,
      size: (a.content as ArrayBuffer).byteLength,
      content: new Uint8Array(a.content as ArrayBuffer),
    })),
  };
}
