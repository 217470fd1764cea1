// @vitest-environment happy-dom
// The armored-block finder: blocks split over many nodes, quoted replies, several
// blocks on a page, and look-alike text that must be left alone.

import { describe, expect, it } from 'vitest';
import { extractBlocks, findBlocks, textOf } from '../../extension/content/finder.ts';

const BODY = ['hF4DAAAAAAAAAAASAQdAbGlzdCBrZXkgd3JhcHBlZCBoZXJlIGZvciB0ZXN0aW5n', 'MDEyMzQ1Njc4OWFiY2RlZg==', '=AbCd'];
const BLOCK = ['-----BEGIN PGP MESSAGE-----', '', ...BODY, '-----END PGP MESSAGE-----'];
const CLEAN = `${BLOCK.join('\n')}\n`;

function html(inner: string): HTMLElement {
  document.body.innerHTML = inner; // test fixture, written by the test itself
  return document.body;
}

describe('extractBlocks (text)', () => {
  it('finds one block and rebuilds it with clean line ends', () => {
    expect(extractBlocks(`Hello\r\n${BLOCK.join('\r\n')}\r\nBye`)).toEqual([{ armored: CLEAN, quoted: false }]);
  });

  it('keeps armor headers and takes a block whose empty line a webmail dropped', () => {
    const withHeader = ['-----BEGIN PGP MESSAGE-----', 'Version: Test 1', '', ...BODY, '-----END PGP MESSAGE-----'].join('\n');
    expect(extractBlocks(withHeader)[0]!.armored).toContain('Version: Test 1\n\nhF4D');
    const noBlank = [BLOCK[0], ...BODY, BLOCK[BLOCK.length - 1]].join('\n');
    expect(extractBlocks(noBlank)[0]!.armored).toBe(CLEAN);
  });

  it('takes a quoted ("> ", "> > ") block and says it was quoted', () => {
    const quoted = BLOCK.map((l) => `> ${l}`).join('\n');
    expect(extractBlocks(`On Monday Alice wrote:\n${quoted}`)).toEqual([{ armored: CLEAN, quoted: true }]);
    const twice = BLOCK.map((l) => (l ? `> > ${l}` : '> >')).join('\n');
    expect(extractBlocks(twice)).toEqual([{ armored: CLEAN, quoted: true }]);
  });

  it('finds several blocks in one text', () => {
    expect(extractBlocks(`${BLOCK.join('\n')}\nbetween\n${BLOCK.join('\n')}`)).toHaveLength(2);
  });

  it('leaves look-alike text alone', () => {
    const lookAlikes = [
      'Put your text between -----BEGIN PGP MESSAGE----- and -----END PGP MESSAGE----- lines.',
      [BLOCK[0], '', 'this is prose, not base64!', BLOCK[BLOCK.length - 1]].join('\n'),
      [BLOCK[0], '', ...BODY].join('\n'), // no end line
      [BLOCK[0], '', BLOCK[BLOCK.length - 1]].join('\n'), // no body
      BLOCK.join('\n').replace(/PGP MESSAGE/g, 'PGP PUBLIC KEY BLOCK'),
      BLOCK.join('\n').replace(/PGP MESSAGE/g, 'PGP SIGNED MESSAGE'),
      [BLOCK[0], '', ...BODY, 'trailing words after the checksum', BLOCK[BLOCK.length - 1]].join('\n'),
    ];
    for (const t of lookAlikes) expect(extractBlocks(t)).toEqual([]);
  });
});

describe('findBlocks (DOM)', () => {
  it('reads a block rendered with <br> and split over several text nodes and elements', () => {
    const lines = BLOCK.map((l) => l.replace('MESSAGE', '<span>MESS</span>AGE').replace('AAAAAA', 'AAA<b>AAA</b>'));
    const root = html(`<div id="m"><div class="pre">${lines.join('<br>\n')}</div></div>`);
    const found = findBlocks(root);
    expect(found).toHaveLength(1);
    expect(found[0]!.container.className).toBe('pre');
    expect(found[0]!.blocks[0]!.armored).toBe(CLEAN);
  });

  it('reads lines given as block elements (<div> per line) and quoted blocks in <blockquote>', () => {
    const root = html(`<blockquote>${BLOCK.map((l) => `<div>&gt; ${l}</div>`).join('')}</blockquote>`);
    const found = findBlocks(root);
    expect(found).toHaveLength(1);
    expect(found[0]!.blocks[0]).toEqual({ armored: CLEAN, quoted: true });
  });

  it('places several blocks on one page in their own containers', () => {
    const root = html(`<div id="a"><p>first</p><pre>${BLOCK.join('\n')}</pre></div><div id="b"><pre>${BLOCK.join('\n')}</pre></div>`);
    const found = findBlocks(root);
    expect(found.map((f) => f.container.tagName)).toEqual(['PRE', 'PRE']);
  });

  it('skips compose boxes, scripts, and containers already handled', () => {
    const root = html(`<textarea>${BLOCK.join('\n')}</textarea><div contenteditable="true">${BLOCK.join('<br>')}</div><script>/* ${BLOCK.join('\n')} */</script><pre id="done">${BLOCK.join('\n')}</pre>`);
    const seen = new WeakSet<Element>([document.getElementById('done')!]);
    expect(findBlocks(root, seen)).toEqual([]);
    expect(textOf(root, seen)).not.toContain('BEGIN PGP');
  });

  it('finds nothing in look-alike markup', () => {
    const root = html('<p>Our guide: paste text between <code>-----BEGIN PGP MESSAGE-----</code> and <code>-----END PGP MESSAGE-----</code>.</p>');
    expect(findBlocks(root)).toEqual([]);
  });
});
