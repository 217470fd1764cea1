// The public join page of a list, GET /join/<address> (issue 12: "join a list by
// following a join link the list server publishes"). Plain server-rendered HTML
// with no script: the list's name and address, its description, the list key's
// fingerprint to compare, who may join, and the steps with and without the
// extension. Machine-readable pointers (<link rel="letterlock-list"> to the
// registry URL, <meta name="letterlock-list">) let software find the list.
// Every list field is escaped; the stylesheet is allowed by its hash only.
// The per-IP limit of api.ts applies (it is global); nothing else is looked up.

import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Address } from '../../shared/index.ts';
import { getListSettings } from '../store/settings.ts';
import type { Sql } from '../store/db.ts';
import { getList, type ListRecord } from '../store/lists.ts';

/** Longer than any address (254) even fully percent-encoded: refused before parsing. */
const MAX_PATH_ADDRESS = 3 * 254;

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#fff;--card:#f6f8fa;--line:#d0d7de;--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#58a6ff}}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}
main{max-width:42rem;margin:0 auto;padding:2rem 1.25rem}
h1{font-size:1.75rem;line-height:1.2;margin:0 0 .25rem;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem}
.address{color:var(--muted);margin:0 0 1rem;overflow-wrap:anywhere}
.description{white-space:pre-line;overflow-wrap:anywhere}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem}
dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1rem}
dt{font-weight:600}dd{margin:0}
.fingerprint{font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-spacing:.2em;overflow-wrap:anywhere}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}
a{color:var(--accent)}
.muted{color:var(--muted)}
`;
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');
/** No script, no frames, nothing loaded; only this stylesheet. */
export const JOIN_PAGE_CSP = `default-src 'none'; style-src 'sha256-${STYLE_HASH}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const base = (publicUrl: string): string => publicUrl.replace(/\/+$/, '');

/** The join link an owner publishes: readable, since "@" may stand in a URL path (RFC 3986 pchar). */
export function joinUrl(publicUrl: string, address: string): string {
  return `${base(publicUrl)}/join/${encodeURIComponent(address).replace(/%40/g, '@')}`;
}

/** The list in the key registry API (what the extension looks up). */
export function registryUrl(publicUrl: string, address: string): string {
  return `${base(publicUrl)}/v1/lists/${encodeURIComponent(address)}`;
}

export function groupFingerprint(fp: string): string {
  return (fp.match(/.{1,4}/g) ?? []).join(' ');
}

function document(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title>${head}<style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

const POSTING: Record<ListRecord['postPolicy'], string> = {
  members: 'Members may post.',
  moderated: 'Members may post; a moderator approves each post first.',
  announce: 'Announcements only: members receive, only the list\'s announcers post.',
};

export function joinPage(list: ListRecord, settings: { name: string | null; description: string | null; subscription: 'open' | 'moderated' }, publicUrl: string): string {
  const name = settings.name?.trim() || list.address;
  const link = joinUrl(publicUrl, list.address);
  const registry = registryUrl(publicUrl, list.address);
  const subscription = settings.subscription === 'moderated'
    ? 'Moderated: you confirm by mail, then a moderator approves your subscription.'
    : 'Open: anyone may join; you confirm by mail.';
  const head = `<meta name="letterlock-list" content="${esc(list.address)}"><link rel="letterlock-list" href="${esc(registry)}">`;
  const body = `
<h1 data-test="join-name">${esc(name)}</h1>
<p class="address">Encrypted mailing list <code data-test="join-address">${esc(list.address)}</code></p>
${settings.description ? `<p class="description" data-test="join-description">${esc(settings.description)}</p>` : ''}
<div class="card"><dl>
<dt>List key</dt><dd class="fingerprint" data-test="join-fingerprint">${esc(groupFingerprint(list.listFingerprint))}</dd>
<dt>Joining</dt><dd data-test="join-subscription" data-state="${settings.subscription}">${esc(subscription)}</dd>
<dt>Posting</dt><dd>${esc(POSTING[list.postPolicy] ?? '')}</dd>
</dl></div>
<h2>Join with Letterlock</h2>
<ol>
<li>On this page, click the Letterlock button in your browser's toolbar and choose <strong>Join ${esc(name)}</strong>,
or paste this page's address in Letterlock's <em>Join a list</em> step: <code data-test="join-link">${esc(link)}</code></li>
<li>Letterlock shows the list key's fingerprint. Check that it is the one above (and the one the list owner gave you) before you confirm it.</li>
<li>Subscribe, then confirm with the mail the list sends you.</li>
</ol>
<h2>No Letterlock yet?</h2>
<p>Letterlock is a browser extension for Chrome and Firefox that reads and writes this list's encrypted mail in your webmail.
Install it from your browser's add-on store, set up your key, then come back to this page.</p>
<p class="muted">Mail programs with OpenPGP (Thunderbird, GnuPG, Mailvelope) work too: the list key is at
<a href="${esc(`${base(publicUrl)}/lists/${encodeURIComponent(list.address)}/key`)}">this address</a>; ask the list owner how to register yours.</p>`;
  return document(`Join ${name}`, head, body);
}

function notFoundPage(): string {
  return document('No such list', '', `
<h1>No such list here</h1>
<p>This server has no list at this address. Check the join link you were given, or ask the list's owner for it
(they find it with <code>letterlock list show</code>).</p>`);
}

export interface JoinPageDeps {
  sql: Sql;
  publicUrl(): string;
}

export function registerJoinPage(app: FastifyInstance, deps: JoinPageDeps): void {
  const send = (reply: FastifyReply, status: number, html: string) => reply.status(status).type('text/html; charset=utf-8')
    .header('content-security-policy', JOIN_PAGE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .send(html);
  // A wildcard, not a :param: fastify's 100-character parameter cap would send a
  // long (but valid, up to 254) address to the JSON not-found handler.
  app.get<{ Params: { '*': string } }>('/join/*', async (req, reply) => {
    const raw = req.params['*'] ?? '';
    let list: ListRecord | null = null;
    if (raw.length <= MAX_PATH_ADDRESS) {
      const a = Address.safeParse(raw.replace(/\/$/, ''));
      if (a.success) list = await getList(deps.sql, a.data);
    }
    if (!list) return send(reply, 404, notFoundPage());
    return send(reply, 200, joinPage(list, await getListSettings(deps.sql, list.id), deps.publicUrl()));
  });
}
