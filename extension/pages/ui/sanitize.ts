// HTML mail is shown only after this allow-list pass, and then only inside a
// sandboxed frame without scripts: tags outside the list are dropped (their text
// kept), every attribute except a few harmless ones is removed, links keep only
// http(s) and mailto targets, and nothing can load from the network.

const TAGS = new Set(['A', 'B', 'BLOCKQUOTE', 'BR', 'CODE', 'DIV', 'EM', 'H1', 'H2', 'H3', 'H4', 'HR', 'I', 'LI', 'OL', 'P', 'PRE', 'SPAN', 'STRONG', 'TABLE', 'TBODY', 'TD', 'TH', 'THEAD', 'TR', 'U', 'UL']);
const DROP_WITH_CONTENT = new Set(['SCRIPT', 'STYLE', 'TITLE', 'HEAD', 'TEMPLATE', 'IFRAME', 'OBJECT', 'EMBED', 'SVG', 'MATH', 'NOSCRIPT']);

export function sanitizeHtml(html: string): string {
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
        const href = el.getAttribute('href') ?? '';
        if (/^(https?:|mailto:)/i.test(href.trim())) {
          clean.setAttribute('href', href.trim());
          clean.setAttribute('rel', 'noopener noreferrer');
          clean.setAttribute('target', '_blank');
        }
      }
      copy(el, clean);
      to.appendChild(clean);
    }
  };
  copy(doc.body, out.body);
  return out.body.innerHTML; // serialization of our own clean tree
}
