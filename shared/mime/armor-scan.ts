// Linear-time scanning of untrusted text for ASCII-armored OpenPGP messages, and
// a linear HTML-to-text pass for armor that webmail wrapped in HTML. Both run on
// input of up to the SMTP size limit, so neither may backtrack: every loop moves
// a cursor forward and every search starts where the last one ended.

const BEGIN = '-----BEGIN PGP MESSAGE-----';
const END = '-----END PGP MESSAGE-----';

/** Trims spaces, tabs, NBSP and a trailing CR; leaves a quoting '>' in place. */
function trimLine(line: string): string {
  let a = 0;
  let b = line.length;
  while (a < b && isBlank(line.charCodeAt(a))) a++;
  while (b > a && isBlank(line.charCodeAt(b - 1))) b--;
  return line.slice(a, b);
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0xa0;
}

/**
 * The armored messages in `text`, at most `max` of them, each rebuilt in
 * canonical form: BEGIN, the armor headers, one empty line, the base64 lines
 * (and the CRC line, if any), END, joined with LF. Clients and webmail mangle
 * the layout (CRLF or LF, blank lines from <div><br></div>, indentation, NBSP);
 * the armor carries ciphertext only, so normalising its layout changes nothing
 * that is signed. A block starts only where a line is the BEGIN line itself: a
 * quoted one ("> -----BEGIN") in a reply is history, not a payload.
 */
export function armoredBlocks(text: string | undefined, max = 2): string[] {
  if (!text) return [];
  const blocks: string[] = [];
  let current: { headers: string[]; body: string[] } | null = null;
  let pos = 0;
  while (pos <= text.length && blocks.length < max) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const line = trimLine(text.slice(pos, nl));
    pos = nl + 1;
    if (line === BEGIN) {
      current = { headers: [], body: [] };
      continue;
    }
    if (!current) continue;
    if (line === END) {
      // No body: the armor reader refuses it.
      blocks.push([BEGIN, ...current.headers, '', ...current.body, END].join('\n'));
      current = null;
      continue;
    }
    if (line === '') continue;
    // "Name: value" can never be a base64 line (no ':' or space in base64), so before the
    // first base64 line it is an armor header, whether the blank line after BEGIN is
    // missing (some webmail drops it) or blank lines come between the headers (Gmail's
    // <div> per line puts one after every line).
    if (current.body.length === 0 && ARMOR_HEADER.test(line)) current.headers.push(line);
    else current.body.push(line);
    if (current.headers.length + current.body.length > 1_000_000) current = null; // not an armor block any reader would take
  }
  return blocks;
}

const ARMOR_HEADER = /^[A-Za-z][A-Za-z0-9-]{0,40}: /;

const BREAKING_TAGS = new Set(['br', 'div', 'p', 'tr', 'li', 'pre', 'blockquote', 'table', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6']);

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntity(_m: string, body: string): string {
  if (body.startsWith('#x') || body.startsWith('#X')) return safeCodePoint(Number.parseInt(body.slice(2), 16), _m);
  if (body.startsWith('#')) return safeCodePoint(Number.parseInt(body.slice(1), 10), _m);
  return ENTITIES[body.toLowerCase()] ?? _m;
}

function safeCodePoint(n: number, fallback: string): string {
  return Number.isInteger(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : fallback;
}

/**
 * Text of an HTML body, with a line break for each block-level tag, in one
 * forward pass. If a '<' has no '>' after it, no later '<' can have one either,
 * so the rest is dropped at once instead of being searched again and again.
 * Entities are decoded afterwards with a bounded pattern (no backtracking).
 */
export function htmlToText(html: string): string {
  const out: string[] = [];
  let pos = 0;
  while (pos < html.length) {
    const lt = html.indexOf('<', pos);
    if (lt < 0) {
      out.push(html.slice(pos));
      break;
    }
    out.push(html.slice(pos, lt));
    const gt = html.indexOf('>', lt + 1);
    if (gt < 0) break;
    const name = /^\/?([A-Za-z][A-Za-z0-9]{0,15})/.exec(html.slice(lt + 1, Math.min(gt, lt + 18)));
    if (name && BREAKING_TAGS.has(name[1]!.toLowerCase())) out.push('\n');
    pos = gt + 1;
  }
  return out.join('').replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});/g, decodeEntity);
}
