// Finds ASCII-armored OpenPGP messages in a page: the visible text of elements
// (line breaks from <br> and block elements), reply quotes ("> ") removed, each
// block checked for the armor's shape so look-alike prose is left alone. Pure DOM
// and string work: no crypto, nothing sent anywhere.

export const BEGIN = '-----BEGIN PGP MESSAGE-----';
export const END = '-----END PGP MESSAGE-----';
const MARK = 'BEGIN PGP MESSAGE';

/** Most lines one block may have (about 5 MB of armor); longer text is not a block. */
const MAX_LINES = 80_000;

export interface ArmoredBlock {
  armored: string;
  quoted: boolean;
}

export interface FoundBlocks {
  /** The smallest element that holds the blocks. */
  container: Element;
  blocks: ArmoredBlock[];
}

const BLOCK_ELEMENTS = new Set([
  'ADDRESS', 'ARTICLE', 'ASIDE', 'BLOCKQUOTE', 'DD', 'DIV', 'DL', 'DT', 'FIELDSET', 'FIGURE', 'FOOTER', 'FORM', 'H1', 'H2', 'H3',
  'H4', 'H5', 'H6', 'HEADER', 'HR', 'LI', 'MAIN', 'NAV', 'OL', 'P', 'PRE', 'SECTION', 'TABLE', 'TBODY', 'TD', 'TH', 'TR', 'UL',
]);
const SKIPPED = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEXTAREA', 'INPUT', 'SELECT', 'TEMPLATE', 'IFRAME', 'OBJECT', 'SVG']);

function skipped(el: Element): boolean {
  return SKIPPED.has(el.tagName.toUpperCase()) || (el as HTMLElement).isContentEditable === true || el.getAttribute('contenteditable') === 'true';
}

/** The text of an element as a reader sees its lines (elements in `skip` left out). */
export function textOf(root: Element, skip?: WeakSet<Element>): string {
  const out: string[] = [];
  const walk = (node: Node) => {
    if (node.nodeType === 3) {
      out.push((node as Text).data);
      return;
    }
    if (node.nodeType !== 1) return;
    const el = node as Element;
    if (skipped(el) || skip?.has(el)) return;
    const tag = el.tagName.toUpperCase();
    if (tag === 'BR') {
      out.push('\n');
      return;
    }
    const block = BLOCK_ELEMENTS.has(tag);
    if (block) out.push('\n');
    for (let c = el.firstChild; c; c = c.nextSibling) walk(c);
    if (block) out.push('\n');
  };
  for (let c = root.firstChild; c; c = c.nextSibling) walk(c);
  return out.join('');
}

const QUOTE_PREFIX = /^[ \t]*(?:>[ \t]?)*/;
const HEADER_LINE = /^[A-Za-z][A-Za-z0-9-]*: .*$/;
const BASE64_LINE = /^[A-Za-z0-9+/]+={0,2}$/;
const CHECKSUM_LINE = /^=[A-Za-z0-9+/]{4}$/;

/** Armored message blocks in a text, rebuilt with clean line ends and no quote marks. */
export function extractBlocks(text: string): ArmoredBlock[] {
  const lines = text.split(/\r\n|\r|\n/);
  const blocks: ArmoredBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const prefix = QUOTE_PREFIX.exec(lines[i]!)![0];
    if (lines[i]!.slice(prefix.length).trim() !== BEGIN) continue;
    const strip = (l: string) => (l.startsWith(prefix) ? l.slice(prefix.length) : l.replace(QUOTE_PREFIX, '')).trim();
    const headers: string[] = [];
    const body: string[] = [];
    let checksum: string | null = null;
    let state: 'headers' | 'body' | 'checksum' = 'headers';
    let endAt = -1;
    for (let j = i + 1; j < lines.length && j - i < MAX_LINES; j++) {
      const line = strip(lines[j]!);
      if (line === END) {
        endAt = j;
        break;
      }
      if (state === 'headers') {
        if (HEADER_LINE.test(line)) headers.push(line);
        else if (line === '') state = 'body';
        else if (headers.length === 0 && BASE64_LINE.test(line)) {
          // Some webmails drop the empty line after the armor header.
          state = 'body';
          body.push(line);
        } else break;
      } else if (line === '') {
        continue; // blank lines some renderings add inside the body carry nothing
      } else if (state === 'body' && CHECKSUM_LINE.test(line)) {
        checksum = line;
        state = 'checksum';
      } else if (state === 'body' && BASE64_LINE.test(line)) body.push(line);
      else break;
    }
    if (endAt < 0 || body.length === 0) continue;
    const armored = [BEGIN, ...headers, '', ...body, ...(checksum ? [checksum] : []), END, ''].join('\n');
    blocks.push({ armored, quoted: prefix.includes('>') });
    i = endAt;
  }
  return blocks;
}

/**
 * The smallest elements under `root` that hold whole armored blocks. `seen`
 * holds containers already handled (and their descendants are skipped).
 */
export function findBlocks(root: Element, seen: WeakSet<Element> = new WeakSet()): FoundBlocks[] {
  const visit = (el: Element): FoundBlocks[] => {
    if (seen.has(el) || skipped(el)) return [];
    // A cheap native check first: most elements hold no marker at all.
    if (!(el.textContent ?? '').includes(MARK)) return [];
    const blocks = extractBlocks(textOf(el, seen));
    if (blocks.length === 0) return [];
    const inChildren: FoundBlocks[] = [];
    for (let c = el.firstElementChild; c; c = c.nextElementSibling) inChildren.push(...visit(c));
    const count = inChildren.reduce((n, f) => n + f.blocks.length, 0);
    // Children hold every block: place them there. Otherwise a block runs across
    // children (text split over several nodes), so this element is the container.
    return count === blocks.length ? inChildren : [{ container: el, blocks }];
  };
  return visit(root);
}
