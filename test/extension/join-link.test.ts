// What the join step and the popup read as a list to join: join page URLs (what
// the list server publishes), registry URLs, bare addresses (a server guessed on
// their own domain, https only), the options page's #join= hash, and the popup's
// offer from a tab's URL and title; junk of every shape is refused.

import { describe, expect, it } from 'vitest';
import { guessServer, joinFromHash, joinPageUrl, offerFromTab, parseJoinLink } from '../../extension/pages/options/join.ts';
import { joinUrl } from '../../server/http/join-page.ts';

describe('parseJoinLink', () => {
  it('reads a join page URL, with or without a path prefix, encoded or not, into server and address', () => {
    expect(parseJoinLink('https://lists.example.org/join/club@lists.example.org')).toEqual({ server: 'https://lists.example.org', address: 'club@lists.example.org' });
    expect(parseJoinLink('  https://example.org/letterlock/join/Club%40Lists.Example.org/  ')).toEqual({ server: 'https://example.org/letterlock', address: 'club@lists.example.org' });
    expect(parseJoinLink('http://127.0.0.1:8025/join/a@b.test')).toEqual({ server: 'http://127.0.0.1:8025', address: 'a@b.test' });
    // A query or fragment (a tracking tag, say) does not change the list.
    expect(parseJoinLink('https://l.test/join/a@b.test?utm=x#top')).toEqual({ server: 'https://l.test', address: 'a@b.test' });
  });

  it('keeps reading the registry URLs', () => {
    expect(parseJoinLink('https://lists.example.org/v1/lists/club%40lists.example.org')).toEqual({ server: 'https://lists.example.org', address: 'club@lists.example.org' });
    expect(parseJoinLink('https://example.org/letterlock/lists/Club@Lists.Example.org/')).toEqual({ server: 'https://example.org/letterlock', address: 'club@lists.example.org' });
  });

  it('reads back the link the server prints (server/http/join-page.ts joinUrl), and joinPageUrl makes the same link', () => {
    for (const [base, address] of [['https://lists.example.org', 'club@lists.example.org'], ['https://example.org/ll/', 'a.b-c_d@x.example'], ['http://127.0.0.1:8025', 'news@lists.test']] as const) {
      const t = parseJoinLink(joinUrl(base, address))!;
      expect(t).toEqual({ server: base.replace(/\/$/, ''), address });
      expect(joinPageUrl(t)).toBe(joinUrl(base, address));
    }
  });

  it('refuses junk: not http(s), no address, credentials, other paths, broken encoding, oversized input', () => {
    for (const bad of [
      '', 'club@lists.example.org', 'lists.example.org/join/a@b.test', 'ftp://x/join/a@b.test', 'javascript:alert(1)//join/a@b.test',
      'https://x/join/notanaddress', 'https://x/join/', 'https://x/join', 'https://x/join/a@b', 'https://x/join/a@b.test/extra',
      'https://x/joined/a@b.test', 'https://x/other/a@b.test', 'https://x/join/%E0%A4%A', 'https://user:pw@x/join/a@b.test',
      `https://x/join/${'a'.repeat(3000)}@b.test`, `https://x/join/${'a'.repeat(250)}@b.test`, 'https://x/join/a%2Fb@c.test', 'https://x/join/a b@c.test',
      'https://[::1/join/a@b.test',
    ]) {
      expect(parseJoinLink(bad), bad.slice(0, 60)).toBeNull();
    }
  });
});

describe('guessServer (a bare address, no server)', () => {
  it('offers the address\'s own domain over https only', () => {
    expect(guessServer(' News@Lists.Example.org ')).toBe('https://lists.example.org');
    expect(guessServer('a@localhost.test')).toBe('https://localhost.test');
  });
  it('guesses nothing from anything but a plain address with a domain name', () => {
    for (const bad of ['', 'news', 'news@', '@lists.example.org', 'https://l.test/join/a@b.test', 'a@127.0.0.1', 'a@[::1]', 'a@exa_mple.org', 'a@-x.org', 'a@x.org:8080', `a@${'b'.repeat(300)}.org`, 'a@b.c/d.org']) {
      expect(guessServer(bad), bad.slice(0, 60)).toBeNull();
    }
  });
});

describe('joinFromHash', () => {
  it('reads #join=<link> for both link kinds and nothing else', () => {
    expect(joinFromHash(`#join=${encodeURIComponent('https://l.test/v1/lists/a%40b.test')}`)).toEqual({ server: 'https://l.test', address: 'a@b.test' });
    expect(joinFromHash(`#join=${encodeURIComponent('https://l.test/join/a@b.test')}`)).toEqual({ server: 'https://l.test', address: 'a@b.test' });
    expect(joinFromHash('#first-run')).toBeNull();
    expect(joinFromHash('#join=%E0%A4%A')).toBeNull();
    expect(joinFromHash(`#join=${'x'.repeat(10_000)}`)).toBeNull();
  });
});

describe('offerFromTab (the popup on a join page)', () => {
  it('offers the list of a join page, named by the page title "Join <name>"', () => {
    expect(offerFromTab({ url: 'https://l.test/join/club@l.test', title: 'Join The Club' })).toEqual({ target: { server: 'https://l.test', address: 'club@l.test' }, name: 'The Club' });
    // Another title (still loading, or not ours): the address names the list.
    expect(offerFromTab({ url: 'https://l.test/join/club@l.test', title: 'l.test/join/club@l.test' })?.name).toBe('club@l.test');
    expect(offerFromTab({ url: 'https://l.test/join/club@l.test' })?.name).toBe('club@l.test');
    // A long title is cut (the popup is narrow; the address and server are shown beside it).
    expect(offerFromTab({ url: 'https://l.test/join/club@l.test', title: `Join ${'x'.repeat(1000)}` })!.name).toHaveLength(120);
  });
  it('offers nothing on other pages, the registry\'s JSON, or without a URL (no activeTab grant)', () => {
    for (const tab of [undefined, {}, { title: 'Join X' }, { url: 'https://l.test/v1/lists/club%40l.test', title: 'Join X' }, { url: 'https://mail.example.org/inbox', title: 'Join X' },
      { url: 'chrome-extension://abc/extension/pages/popup/index.html', title: 'Letterlock' }, { url: 'about:blank' }]) {
      expect(offerFromTab(tab)).toBeNull();
    }
  });
});
