// The demo's webmail stand-in (`npm start` serves it on loopback): a page per address
// showing the mail the demo delivered into its Maildir, and a compose box that sends
// through the demo's SMTP port. Without it a new user of `npm start` who subscribes
// from the browser extension cannot open the confirmation mail (it sits in a file,
// encrypted to a key that lives only in the browser). Everything the Maildir holds is
// already encrypted (copies, confirmations) or content-free service mail, and the
// page shows bodies as escaped text: the extension finds the armored blocks in it,
// as it does in any webmail. Loopback only; every size and count is bounded.

import { createServer, type Server } from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import PostalMime from 'postal-mime';

/** At most this many mails per page, newest first, each at most this large. */
const MAX_SHOWN = 30;
const MAX_MAIL_BYTES = 32 * 1024 * 1024;
/** A sent form (an armored post with attachments inside stays well below this). */
const MAX_FORM_BYTES = 24 * 1024 * 1024;
/** An address as a folder name: no slashes, no leading dot, nothing a path could climb with. */
const ADDRESS = /^[A-Za-z0-9_%+-][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+){0,20}$/;

export interface Inbox {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface InboxOptions {
  maildir: string;
  /** The demo list server's SMTP ingest. */
  smtp: { host: string; port: number };
  list: string;
  host?: string;
  port?: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The address folders that hold mail, sorted. */
function addresses(maildir: string): string[] {
  try {
    return readdirSync(maildir).filter((a) => ADDRESS.test(a)).sort().slice(0, 500);
  } catch {
    return [];
  }
}

/** One delivered mail as the page shows it: headers, and the text with its armored block. */
async function shown(file: string): Promise<string> {
  const size = statSync(file).size;
  if (size > MAX_MAIL_BYTES) return `<article class="msg"><p>(a mail of ${size} bytes, too large to show here)</p></article>`;
  const m = await PostalMime.parse(readFileSync(file));
  let body = m.text ?? '';
  // PGP/MIME: the armored ciphertext is the encrypted.asc part, which webmails list as an attachment.
  if (!body.includes('-----BEGIN PGP MESSAGE-----')) {
    for (const a of m.attachments) {
      const t = typeof a.content === 'string' ? a.content : new TextDecoder().decode(a.content);
      if (t.includes('-----BEGIN PGP MESSAGE-----')) body = t;
    }
  }
  return `<article class="msg"><h3>${esc(m.subject ?? '(no subject)')}</h3>
<p class="meta">From ${esc(m.from?.address ?? '?')} · ${esc(m.date ?? '')}</p>
<div class="body">${esc(body).split('\n').join('<br>\n')}</div></article>`;
}

async function mailbox(maildir: string, address: string): Promise<string> {
  const files: { path: string; name: string }[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = join(maildir, address, sub);
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (!name.startsWith('.')) files.push({ path: join(dir, name), name });
  }
  // Maildir names start with the delivery time in ms: newest first.
  files.sort((a, b) => (a.name < b.name ? 1 : -1));
  const parts: string[] = [];
  for (const f of files.slice(0, MAX_SHOWN)) {
    try {
      parts.push(await shown(f.path));
    } catch {
      parts.push('<article class="msg"><p>(a mail that could not be read)</p></article>');
    }
  }
  return parts.length ? parts.join('\n') : '<p>No mail yet. Mail the list sends to this address shows up here (reload the page).</p>';
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;line-height:1.4}
.msg{border:1px solid #ccc;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}.meta{color:#555;font-size:.9em}
.body{font-family:ui-monospace,monospace;font-size:.85em;overflow-wrap:anywhere}
label{display:block;margin:.5rem 0}input[type=text],textarea{display:block;width:100%;max-width:40rem;font:inherit}
.note{background:#fff3cd;border:1px solid #d39e00;padding:.5rem 1rem;border-radius:6px}</style></head>
<body>${body}</body></html>`;
}

export async function startInbox(o: InboxOptions): Promise<Inbox> {
  const host = o.host ?? '127.0.0.1';
  const transport = nodemailer.createTransport({ host: o.smtp.host, port: o.smtp.port, secure: false, ignoreTLS: true });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://inbox');
    const html = (status: number, body: string) => res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
    void (async () => {
      if (req.method === 'POST' && url.pathname === '/send') {
        let size = 0;
        const chunks: Buffer[] = [];
        for await (const c of req) {
          size += (c as Buffer).length;
          if (size > MAX_FORM_BYTES) return html(413, page('Too large', '<p>That mail is too large for the demo inbox.</p>'));
          chunks.push(c as Buffer);
        }
        const f = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const from = f.get('from') ?? '';
        const to = f.get('to') ?? '';
        if (!ADDRESS.test(from) || !ADDRESS.test(to)) return html(400, page('Not sent', '<p>Sender and recipient must be mail addresses. Go back and check them.</p>'));
        try {
          await transport.sendMail({ from, to, subject: (f.get('subject') ?? '').slice(0, 998), text: f.get('body') ?? '' });
        } catch (e) {
          // The list server's SMTP answer says why (no post content in it, by design).
          const why = e instanceof Error ? e.message.slice(0, 500) : 'unknown error';
          return html(200, page('Not sent', `<p class="note" id="send-result">Not sent: ${esc(why)}</p><p><a href="/?to=${encodeURIComponent(from)}">Back to the inbox</a></p>`));
        }
        return res.writeHead(303, { location: `/?to=${encodeURIComponent(from)}&sent=1` }).end();
      }
      if (req.method !== 'GET' || url.pathname !== '/') return html(404, page('Not found', '<p>Not found. <a href="/">The demo inbox</a></p>'));
      const to = url.searchParams.get('to');
      if (to === null) {
        const known = addresses(o.maildir).map((a) => `<li><a href="/?to=${encodeURIComponent(a)}">${esc(a)}</a></li>`).join('');
        return html(200, page('Letterlock demo inbox', `<h1>Letterlock demo inbox</h1>
<p>The mail the demo list server delivered, by address (a stand-in for your webmail; allow this site in the Letterlock extension).</p>
<form method="get" action="/"><label>Your address <input type="text" name="to" placeholder="you@example.org"></label><button>Open its inbox</button></form>
<ul>${known || '<li>No mail delivered yet.</li>'}</ul>`));
      }
      if (!ADDRESS.test(to)) return html(400, page('Not an address', '<p>That is not a mail address. <a href="/">Back</a></p>'));
      const sent = url.searchParams.get('sent') ? '<p class="note" id="send-result">Sent to the list server.</p>' : '';
      return html(200, page(`Inbox of ${to}`, `<h1>Inbox of ${esc(to)}</h1>${sent}
<p><a href="/">All addresses</a> · newest first, at most ${MAX_SHOWN} · reload for new mail</p>
${await mailbox(o.maildir, to)}
<h2>Write to the list</h2>
<form method="post" action="/send" id="compose">
<input type="hidden" name="from" value="${esc(to)}">
<label>To <input type="text" name="to" value="${esc(o.list)}"></label>
<label>Subject <input type="text" name="subject"></label>
<label>Message <textarea id="composebody" name="body" rows="12"></textarea></label>
<button type="submit" id="send">Send</button></form>`));
    })().catch(() => {
      if (!res.headersSent) html(500, page('Error', '<p>The demo inbox could not show that.</p>'));
      else res.end();
    });
  });
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    port,
    url: `http://${host}:${port}/`,
    close: () => new Promise<void>((r) => {
      transport.close();
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}
