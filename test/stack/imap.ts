// Reading a stack user's mailbox over real IMAP (imapflow against Dovecot), and
// pulling the OpenPGP message out of a delivered mail for gpg.

import { ImapFlow } from 'imapflow';
import PostalMime from 'postal-mime';
import type { MailStack, StackUser } from './mailstack.ts';

export interface FetchedMail {
  uid: number;
  subject: string;
  from: string;
  /** The whole RFC 5322 source as Dovecot stored it. */
  raw: Buffer;
}

function client(stack: MailStack, user: StackUser): ImapFlow {
  return new ImapFlow({
    host: '127.0.0.1', port: stack.ports.imap, secure: false, doSTARTTLS: false,
    auth: { user: user.address, pass: user.password }, logger: false,
  });
}

/** Every message in a mailbox (default INBOX), oldest first. */
export async function fetchAll(stack: MailStack, user: StackUser, mailbox = 'INBOX'): Promise<FetchedMail[]> {
  const c = client(stack, user);
  await c.connect();
  try {
    const box = await c.mailboxOpen(mailbox, { readOnly: true });
    if (box.exists === 0) return [];
    const out: FetchedMail[] = [];
    for await (const m of c.fetch('1:*', { uid: true, envelope: true, source: true })) {
      out.push({
        uid: m.uid,
        subject: m.envelope?.subject ?? '',
        from: m.envelope?.from?.map((a) => a.address ?? '').join(', ') ?? '',
        raw: m.source ?? Buffer.alloc(0),
      });
    }
    return out;
  } finally {
    await c.logout().catch(() => c.close());
  }
}

/** Polls the mailbox until a message matches; fails with what the mailbox held instead. */
export async function waitForMail(stack: MailStack, user: StackUser, match: (m: FetchedMail) => boolean, what: string, timeoutMs = 30_000, mailbox = 'INBOX'): Promise<FetchedMail> {
  const end = Date.now() + timeoutMs;
  let seen: FetchedMail[] = [];
  for (;;) {
    seen = await fetchAll(stack, user, mailbox);
    const hit = seen.find(match);
    if (hit) return hit;
    if (Date.now() > end) {
      const held = seen.map((m) => `  uid ${m.uid} from ${m.from}: ${m.subject}`).join('\n') || '  (nothing)';
      throw new Error(`no ${what} in ${user.address}'s ${mailbox} after ${timeoutMs} ms; it holds:\n${held}\n${stack.logTail(15)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

const ARMOR = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/;

/**
 * The ASCII-armored OpenPGP message of a delivered mail: the encrypted part of
 * PGP/MIME (RFC 3156), or the armored block of an inline text body.
 */
export async function armoredMessageOf(raw: Buffer): Promise<string> {
  const mail = await PostalMime.parse(raw);
  for (const a of mail.attachments) {
    const text = typeof a.content === 'string' ? a.content : new TextDecoder().decode(a.content);
    const m = ARMOR.exec(text);
    if (m) return m[0];
  }
  const m = ARMOR.exec(mail.text ?? '');
  if (m) return m[0];
  throw new Error(`no OpenPGP message in this mail (Content-Type: ${mail.headers.find((h) => h.key === 'content-type')?.value ?? 'none'})`);
}
