// A stand-in for a Mailman 3.3.8 Core's REST API, for the roster-sync benchmark: it
// replays answers recorded from the real Core (test/support/mailman.ts, Debian's
// mailman3 3.3.8: the list config and the member entries below are its output,
// verbatim but for the ids), scaled to N members. Run as a child process so its
// memory is not counted as the sync's:
//
//   tsx test/bench/mailman-standin.ts N LIST_ID   → prints "PORT <port>" when listening
//
// Pages are built once at start: what is measured is the client's transport, parsing
// and applying, not this server.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

const n = Number(process.argv[2] ?? '10000');
const listId = process.argv[3] ?? 'bench.lists.example.test';
const fqdn = listId.replace('.', '@');
const [local, host] = fqdn.split('@') as [string, string];
let origin = 'http://127.0.0.1:0';

/** Recorded: GET /3.1/lists/{id}/config of a new list (values as Mailman 3.3.8 creates them). */
function config(): Record<string, unknown> {
  return {
    acceptable_aliases: [], accept_these_nonmembers: [], admin_immed_notify: true, admin_notify_mchanges: false, administrivia: true,
    advertised: true, allow_list_posts: true, anonymous_list: false, archive_policy: 'never', archive_rendering_mode: 'text',
    autorespond_owner: 'none', autorespond_postings: 'none', autorespond_requests: 'none', autoresponse_grace_period: '90d',
    autoresponse_owner_text: '', autoresponse_postings_text: '', autoresponse_request_text: '', bounces_address: `${local}-bounces@${host}`,
    bounce_info_stale_after: '7d', bounce_notify_owner_on_bounce_increment: false, bounce_notify_owner_on_disable: true,
    bounce_notify_owner_on_removal: true, bounce_score_threshold: 5, bounce_you_are_disabled_warnings: 3,
    bounce_you_are_disabled_warnings_interval: '7d', collapse_alternatives: true, convert_html_to_plaintext: false,
    created_at: '2026-12-02T23:00:15.243248', default_member_action: 'defer', default_nonmember_action: 'hold', description: '',
    digest_last_sent_at: null, digest_send_periodic: true, digest_size_threshold: 30.0, digest_volume_frequency: 'monthly',
    digests_enabled: false, display_name: 'Bench', discard_these_nonmembers: [], dmarc_mitigate_action: 'no_mitigation',
    dmarc_mitigate_unconditionally: false, dmarc_moderation_notice: '', dmarc_wrapped_message_text: '', emergency: false,
    filter_action: 'discard', filter_content: false, filter_extensions: [], filter_types: [], first_strip_reply_to: false,
    forward_unrecognized_bounces_to: 'administrators', fqdn_listname: fqdn, gateway_to_mail: false, gateway_to_news: false,
    hold_these_nonmembers: [], include_rfc2369_headers: true, info: '', join_address: `${local}-join@${host}`, last_post_at: null,
    leave_address: `${local}-leave@${host}`, linked_newsgroup: '', list_name: local, mail_host: host, max_message_size: 40,
    max_num_recipients: 10, max_days_to_hold: 0, member_roster_visibility: 'moderators', moderator_password: null,
    newsgroup_moderation: 'none', next_digest_number: 1, nntp_prefix_subject_too: true, no_reply_address: `noreply@${host}`,
    owner_address: `${local}-owner@${host}`, pass_types: [], pass_extensions: [], personalize: 'none', post_id: 1,
    posting_address: fqdn, posting_pipeline: 'default-posting-pipeline', preferred_language: 'en', process_bounces: true,
    reject_these_nonmembers: [], reply_goes_to_list: 'no_munging', reply_to_address: '', request_address: `${local}-request@${host}`,
    require_explicit_destination: true, respond_to_post_requests: true, send_goodbye_message: true, send_welcome_message: true,
    subject_prefix: '[Bench] ', subscription_policy: 'confirm', unsubscription_policy: 'confirm', usenet_watermark: null, volume: 1,
    http_etag: '"29a347c38849a072b24b8037b1c697393c9fba26"',
  };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** Recorded: one entry of POST /3.1/members/find (and of /roster/{role}), as Mailman 3.3.8 writes it. */
function entry(email: string, role: string, displayName: string): Record<string, unknown> {
  const memberId = hex(16);
  return {
    address: `${origin}/3.1/addresses/${email}`, bounce_score: 0, last_warning_sent: '0001-01-01T00:00:00', total_warnings_sent: 0,
    delivery_mode: 'regular', email, list_id: listId, subscription_mode: 'as_address', role, user: `${origin}/3.1/users/${hex(16)}`,
    display_name: displayName, self_link: `${origin}/3.1/members/${memberId}`, member_id: memberId, http_etag: `"${hex(20)}"`,
  };
}

type Entries = Array<Record<string, unknown>>;
let byRole: Record<string, Entries> = {};
let enabled: Entries = [];

function build(): void {
  const members: Entries = [];
  for (let i = 0; i < n; i++) members.push(entry(`member${String(i).padStart(6, '0')}@sub.example.test`, 'member', `Member ${i}`));
  byRole = {
    member: members,
    owner: [entry(`owner@${host}`, 'owner', 'Owner')],
    moderator: [entry(`moderator@${host}`, 'moderator', 'Moderator')],
    nonmember: Array.from({ length: Math.min(50, Math.floor(n / 100)) }, (_, i) => entry(`outsider${i}@elsewhere.test`, 'nonmember', '')),
  };
  // 2 % with delivery disabled (by bounces or by themselves), as on a real list.
  enabled = members.filter((_, i) => i % 50 !== 7);
}

/** One page as Mailman slices it: count/page (1-based), total_size, entries only when the page has any. */
function page(all: Entries, count: number, pageNo: number): string {
  const slice = all.slice((pageNo - 1) * count, pageNo * count);
  return JSON.stringify({ start: (pageNo - 1) * count, total_size: all.length, ...(slice.length ? { entries: slice } : {}), http_etag: `"${hex(20)}"` });
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', origin);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const p = url.pathname;
    if (req.method === 'GET' && p === '/3.1/system/versions') return send(200, JSON.stringify({ mailman_version: 'GNU Mailman 3.3.8 (Tom Sawyer)', python_version: '3.11.2', api_version: '3.1', http_etag: '"x"' }));
    if (req.method === 'GET' && p === `/3.1/lists/${listId}/config`) return send(200, JSON.stringify(config()));
    if (req.method === 'GET' && p === `/3.1/lists/${listId}/archivers`) return send(200, JSON.stringify({ prototype: false, http_etag: '"x"' }));
    if (req.method === 'GET' && (p === `/3.1/lists/${listId}` || p === `/3.1/lists/${encodeURIComponent(fqdn)}`)) {
      return send(200, JSON.stringify({
        advertised: true, display_name: 'Bench', fqdn_listname: fqdn, list_id: listId, list_name: local, mail_host: host, member_count: n,
        volume: 1, description: '', self_link: `${origin}/3.1/lists/${listId}`, http_etag: '"x"',
      }));
    }
    const roster = /^\/3\.1\/lists\/([^/]+)\/roster\/(member|owner|moderator|nonmember)$/.exec(p);
    if (req.method === 'GET' && roster && roster[1] === listId) {
      return send(200, page(byRole[roster[2]!] ?? [], Number(url.searchParams.get('count') ?? '50'), Number(url.searchParams.get('page') ?? '1')));
    }
    if (req.method === 'POST' && p === '/3.1/members/find') {
      const q = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { list_id?: string; role?: string; delivery_status?: string; count?: number; page?: number };
      const all = q.list_id !== undefined && q.list_id !== listId ? [] : q.delivery_status === 'enabled' && q.role === 'member' ? enabled : byRole[q.role ?? 'member'] ?? [];
      return send(200, page(all, q.count ?? 50, q.page ?? 1));
    }
    send(404, JSON.stringify({ title: '404 Not Found' }));
  });
});

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
  build();
  process.stdout.write(`PORT ${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
