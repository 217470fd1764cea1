// What people type for a webmail site or a list server, read as a URL (extension/loopback.ts).

import { describe, expect, it } from 'vitest';
import { insecureServer, withScheme } from '../../extension/loopback.ts';

describe('withScheme', () => {
  it('adds https:// to a bare host, http:// to a host on this computer, and leaves a typed scheme alone', () => {
    expect(withScheme('mail.example.org')).toBe('https://mail.example.org');
    expect(withScheme('  lists.example.org/path ')).toBe('https://lists.example.org/path');
    expect(withScheme('127.0.0.1:8025')).toBe('http://127.0.0.1:8025');
    expect(withScheme('localhost:8080/mail')).toBe('http://localhost:8080/mail');
    expect(withScheme('https://mail.example.org')).toBe('https://mail.example.org');
    expect(withScheme('http://lists.example.org')).toBe('http://lists.example.org');
    expect(withScheme('ftp://x.example.org')).toBe('ftp://x.example.org');
    expect(withScheme('   ')).toBe('');
    // Not a host name: left as typed, so the page refuses it (a browser would take it as a host).
    for (const odd of ['lists dot test', 'a b', 'mail.example.org:port', 'user@mail.example.org']) expect(withScheme(odd)).toBe(odd);
  });

  it('never turns a remote host into plain http (that stays refused)', () => {
    for (const typed of ['lists.example.org', 'lists.example.org:8025', '10.0.0.1:8025', 'example.localhost.evil.org']) {
      expect(insecureServer(withScheme(typed)), typed).toBe(false);
      expect(withScheme(typed).startsWith('https://'), typed).toBe(true);
    }
    expect(insecureServer(withScheme('http://lists.example.org'))).toBe(true);
  });
});
