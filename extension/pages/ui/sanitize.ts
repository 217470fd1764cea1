// HTML mail is shown only after this allow-list pass, and then only inside a
// sandboxed frame without scripts (under the extension's CSP, which allows
// images only from the extension and data: URLs): tags outside the list are
// dropped (their text kept), every attribute except a few harmless ones is
// removed. Links lose their target: the real one is kept in `data-ll-href` and
// shown to the user before anything opens. Remote images stay out unless the
// user asked to load them (then they come in as data: URLs the background fetched).

const TAGS = new Set(['A', 'B', 'BLOCKQUOTE', 'BR', 'CODE', 'DIV', 'EM', 'H1', 'H2', 'H3', 'H4', 'HR', 'I', 'IMG', 'LI', 'OL', 'P', 'PRE', 'SPAN', 'STRONG', 'TABLE', 'TBODY', 'TD', 'TH', 'THEAD', 'TR', 'U', 'UL']);
const DROP_WITH_CONTENT = new Set(['SCRIPT', 'STYLE', 'TITLE', 'HEAD', 'TEMPLATE', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'NOSCRIPT']);
const LINK = /^(https?:|mailto:)/i;
const REMOTE = /^https?:\/\//i;
const INLINE_IMAGE = /^data:image\/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$/i;
/** Most remote images one message may ask for. */
export const MAX_REMOTE_IMAGES = 20;

/** `images`: remote image address -> data: URL, for the images the user chose to load. */
export function sanitizeHtml(html: string, images?: ReadonlyMap<string, string>): string {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const out = document.implementation.createHTMLDocument('');
  const copy = (from: Node, to: Node) => {
    for (let c = from.firstChild; c; c = c.nextSibling) {
      if (c.nodeType === 3) {
        to.appendChild(out.createTextNode((c as Text).data));
        continue;
      }
      if (c.nodeType !== 1) continue;
      const el = c as Element;
      const tag = el.tagName.toUpperCase();
      if (DROP_WITH_CONTENT.has(tag)) continue;
      if (!TAGS.has(tag)) {
        copy(el, to); // unknown wrapper: keep its text
        continue;
      }
      const clean = out.createElement(tag.toLowerCase());
      if (tag === 'A') {
        const href = (el.getAttribute('href') ?? '').trim();
        if (LINK.test(href)) {
          // No href: nothing opens from inside the frame; the reader shows the real target first.
          clean.setAttribute('data-ll-href', href);
          clean.setAttribute('title', href);
          clean.setAttribute('role', 'link');
          clean.setAttribute('tabindex', '0');
        }
      }
      if (tag === 'IMG') {
        const src = (el.getAttribute('src') ?? '').trim();
        const alt = (el.getAttribute('alt') ?? '').slice(0, 200);
        const loaded = REMOTE.test(src) ? images?.get(src) : undefined;
        if (INLINE_IMAGE.test(src)) clean.setAttribute('src', src);
        else if (loaded && INLINE_IMAGE.test(loaded)) clean.setAttribute('src', loaded);
        else {
          // Blocked: its words stand in for it.
          to.appendChild(out.createTextNode(`[image${alt ? `: ${alt}` : ''}]`));
          continue;
        }
        if (alt) clean.setAttribute('alt', alt);
      }
      copy(el, clean);
      to.appendChild(clean);
    }
  };
  copy(doc.body, out.body);
  return out.body.innerHTML; // serialization of our own clean tree
}

/** The remote (http/https) image addresses of an HTML mail, each once, at most MAX_REMOTE_IMAGES. */
export function remoteImages(html: string): string[] {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const out = new Set<string>();
  for (const img of doc.querySelectorAll('img[src]')) {
    const src = img.getAttribute('src')!.trim();
    if (REMOTE.test(src) && src.length <= 2048) out.add(src);
    if (out.size >= MAX_REMOTE_IMAGES) break;
  }
  return [...out];
}
