// The inner MIME entity of a post: what the sender signs and encrypts. It carries
// the real Subject, From, To, Date and Message-ID as protected headers
// (draft-autocrypt-lamps-protected-headers, "v1"), so the outer mail can show a
// placeholder subject while every reader still sees the real one.

import { toBase64Lines, utf8 } from '../bytes.ts';
import { domainOf, encodeUnstructured, formatAddress, formatDate, mimeParameter, newBoundary, newMessageId, writeHeaders, type HeaderList } from './encode.ts';

export interface Mailbox {
  address: string;
  name?: string;
}

export interface AttachmentInput {
  filename: string;
  contentType?: string;
  content: Uint8Array;
}

export interface InnerMessageInput {
  subject: string;
  from: Mailbox;
  to: Mailbox[];
  text: string;
  html?: string;
  attachments?: AttachmentInput[];
  date?: Date;
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
}

export interface BuiltInner {
  bytes: Uint8Array;
  messageId: string;
  date: Date;
}

// Text goes base64 so every byte (CRLF or bare LF, trailing spaces, any Unicode)
// survives signing and every mail hop exactly.
function textPart(contentType: string, text: string): string {
  return `${writeHeaders([
    ['Content-Type', `${contentType}; charset=utf-8`],
    ['Content-Transfer-Encoding', 'base64'],
  ])}\r\n\r\n${toBase64Lines(utf8(text))}`;
}

function attachmentPart(a: AttachmentInput): string {
  const type = a.contentType && /^[\w.+-]+\/[\w.+-]+$/.test(a.contentType) ? a.contentType : 'application/octet-stream';
  return `${writeHeaders([
    ['Content-Type', `${type}; ${mimeParameter('name', a.filename)}`],
    ['Content-Disposition', `attachment; ${mimeParameter('filename', a.filename)}`],
    ['Content-Transfer-Encoding', 'base64'],
  ])}\r\n\r\n${toBase64Lines(a.content)}`;
}

function multipart(parts: string[], boundary: string): string {
  return `${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`;
}

function bodyPart(input: InnerMessageInput): string {
  if (input.html === undefined) return textPart('text/plain', input.text);
  const boundary = newBoundary();
  return `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n${multipart(
    [textPart('text/plain', input.text), textPart('text/html', input.html)],
    boundary,
  )}`;
}

export function buildInnerMessage(input: InnerMessageInput): BuiltInner {
  const date = input.date ?? new Date();
  const messageId = input.messageId ?? newMessageId(domainOf(input.from.address));
  const boundary = newBoundary();
  const headers: HeaderList = [
    ['Content-Type', `multipart/mixed; boundary="${boundary}"; protected-headers="v1"`],
    ['Subject', encodeUnstructured(input.subject)],
    ['From', formatAddress(input.from.address, input.from.name)],
    ['To', input.to.map((m) => formatAddress(m.address, m.name)).join(', ')],
    ['Date', formatDate(date)],
    ['Message-ID', messageId],
  ];
  if (input.inReplyTo) headers.push(['In-Reply-To', input.inReplyTo]);
  if (input.references?.length) headers.push(['References', input.references.join(' ')]);
  headers.push(['MIME-Version', '1.0']);
  const parts = [bodyPart(input), ...(input.attachments ?? []).map(attachmentPart)];
  const text = `${writeHeaders(headers)}\r\n\r\n${multipart(parts, boundary)}`;
  return { bytes: utf8(text), messageId, date };
}
