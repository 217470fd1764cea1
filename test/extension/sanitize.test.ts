// @vitest-environment happy-dom
// HTML mail is shown only through this allow-list (and then in a sandboxed frame).

import { describe, expect, it } from 'vitest';
import { sanitizeHtml } from '../../extension/pages/ui/sanitize.ts';

describe('sanitizeHtml', () => {
  it('keeps text and simple formatting, drops scripts, handlers, styles and remote loads', () => {
    const out = sanitizeHtml(`<p onclick="x()">Hi <b>there</b><script>steal()</script><img src="https://t.example/p.gif"><style>*{}</style>
      <custom-el>kept text</custom-el> <a href="javascript:alert(1)">bad</a> <a href="https://ok.example/">good</a>
      <object data="https://x"></object><svg><script>1</script></svg></p><form action="https://x"><input value="v"></form>`);
    expect(out).toContain('<b>there</b>');
    expect(out).toContain('kept text');
    expect(out).toContain('<a href="https://ok.example/" rel="noopener noreferrer" target="_blank">good</a>');
    expect(out).toContain('<a>bad</a>');
    for (const bad of ['script', 'onclick', 'img', 'style', 'javascript:', 'object', 'svg', 'form', 'input', 'steal']) expect(out).not.toContain(bad);
  });
});
