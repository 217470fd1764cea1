// @vitest-environment happy-dom
// HTML mail is shown only through this allow-list (and then in a sandboxed frame).

import { describe, expect, it } from 'vitest';
import { remoteImages, sanitizeHtml } from '../../extension/pages/ui/sanitize.ts';

const PNG = 'data:image/png;base64,iVBORw0KGgo=';

describe('sanitizeHtml', () => {
  it('keeps text and simple formatting, drops scripts, handlers, styles and remote loads', () => {
    const out = sanitizeHtml(`<p onclick="x()">Hi <b>there</b><script>steal()</script><img src="https://t.example/p.gif"><style>*{}</style>
      <custom-el>kept text</custom-el> <a href="javascript:alert(1)">bad</a> <a href="https://ok.example/">good</a>
      <object data="https://x"></object><svg><script>1</script></svg></p><form action="https://x"><input value="v"></form>`);
    expect(out).toContain('<b>there</b>');
    expect(out).toContain('kept text');
    // A link keeps its real target only as data, shown before anything opens; no href at all.
    expect(out).toContain('<a data-ll-href="https://ok.example/" title="https://ok.example/" role="link" tabindex="0">good</a>');
    expect(out).toContain('<a>bad</a>');
    expect(out).not.toMatch(/\shref=/);
    expect(out).toContain('[image]');
    for (const bad of ['script', 'onclick', '<img', 't.example', 'style', 'javascript:', 'object', 'svg', 'form', 'input', 'steal']) expect(out).not.toContain(bad);
  });

  it('shows inline images, and remote ones only as the data: URLs the user chose to load', () => {
    const html = `<img src="https://img.example/a.png" alt="logo"><img src="${PNG}"><img src="https://img.example/b.png" onerror="x()">`;
    expect(remoteImages(html)).toEqual(['https://img.example/a.png', 'https://img.example/b.png']);
    const blocked = sanitizeHtml(html);
    expect(blocked).toContain('[image: logo]');
    expect(blocked).toContain(`<img src="${PNG}">`);
    expect(blocked).not.toContain('img.example');
    const loaded = sanitizeHtml(html, new Map([['https://img.example/a.png', PNG], ['https://img.example/b.png', 'https://evil.example/x.png']]));
    expect(loaded).toContain(`<img src="${PNG}" alt="logo">`);
    expect(loaded).not.toContain('evil.example'); // only data: images are ever put in
    expect(loaded).not.toContain('onerror');
    expect(remoteImages('<img src="https://a.example/1">'.repeat(1).concat(Array.from({ length: 30 }, (_, i) => `<img src="https://a.example/${i + 2}">`).join('')))).toHaveLength(20);
  });
});
