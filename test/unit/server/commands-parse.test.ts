// The command syntax of -request mails (server/commands/parse.ts): one command
// per line at the top, case-insensitive, bounded in number and length.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_COMMANDS, parseCommands } from '../../../server/commands/parse.ts';

describe('parseCommands', () => {
  it('reads each command, in any case, with an optional colon', () => {
    const p = parseCommands('X-HELP\r\nx-List-Members\nx-fetch-key: Alice@Example.org\nx-fetch-keys\nx-delivery INLINE\nx-replace-key\nx-unsubscribe\n');
    expect(p.errors).toEqual([]);
    expect(p.commands).toEqual([
      { name: 'help' }, { name: 'list-members' }, { name: 'fetch-key', target: 'Alice@Example.org' }, { name: 'fetch-keys' },
      { name: 'delivery', form: 'inline' }, { name: 'replace-key' }, { name: 'unsubscribe' },
    ]);
  });

  it('skips blank lines before and between commands; the first other line ends them', () => {
    const p = parseCommands('\n\n  x-help  \n\nx-list-members\nThanks!\nx-unsubscribe\n');
    expect(p.commands.map((c) => c.name)).toEqual(['help', 'list-members']);
  });

  it('reads a fingerprint written in groups as one argument', () => {
    const p = parseCommands('x-fetch-key 0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567\n');
    expect(p.commands).toEqual([{ name: 'fetch-key', target: '0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567' }]);
  });

  it('reports unknown commands and bad arguments', () => {
    const p = parseCommands('x-delivery html\nx-fetch-key\nx-help me\nx-frobnicate\nx-fetch-key a@b.c d@e.f\n');
    expect(p.commands).toEqual([]);
    expect(p.errors.map((e) => e.problem)).toEqual([
      'x-delivery needs pgp-mime or inline',
      'x-fetch-key needs an address or a fingerprint (x-fetch-keys fetches all)',
      'x-help takes no argument',
      'unknown command x-frobnicate',
      'x-fetch-key takes one address or fingerprint',
    ]);
  });

  it(`refuses more than ${MAX_COMMANDS} commands as a whole`, () => {
    expect(parseCommands('x-help\n'.repeat(MAX_COMMANDS)).commands).toHaveLength(MAX_COMMANDS);
    const p = parseCommands('x-help\n'.repeat(MAX_COMMANDS + 1));
    expect(p).toEqual({ commands: [], errors: [], tooMany: true });
  });

  it('echoes only printable ASCII of a bad line, shortened', () => {
    const p = parseCommands(`x-frob\u0000\u00e9${'a'.repeat(200)}\n`);
    expect(p.errors[0]!.line).toMatch(/^[\x20-\x7e]{1,80}$/);
  });

  it('stays bounded for any input', () => {
    fc.assert(fc.property(fc.string({ maxLength: 5000 }), fc.array(fc.constantFrom('x-help', 'x-fetch-keys', 'x-bogus', '', 'text'), { maxLength: 60 }), (noise, lines) => {
      const p = parseCommands(`${lines.join('\n')}\n${noise}`);
      expect(p.commands.length).toBeLessThanOrEqual(MAX_COMMANDS);
      expect(p.errors.length).toBeLessThanOrEqual(MAX_COMMANDS + 1);
      for (const e of p.errors) expect(e.line.length).toBeLessThanOrEqual(80);
    }), { numRuns: 300 });
  });
});
