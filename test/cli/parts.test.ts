// The command line's pure parts, without a process: tables, plurals, durations,
// CSV rows (quoted keys with line breaks), mbox splitting, format detection and
// the plain progress lines.

import { afterEach, expect, it, vi } from 'vitest';
import { csvRows, detectFormat, mboxMails } from '../../server/cli/import.ts';
import { date, duration, plural, size, table } from '../../server/cli/output.ts';
import { startProgress } from '../../server/cli/progress.ts';

afterEach(() => vi.restoreAllMocks());

it('tables align every column but the last, with no trailing blanks', () => {
  expect(table([['a', 'bb', 'c'], ['ccc', 'd', '']], ['X', 'Y', 'Z'])).toBe('X    Y   Z\na    bb  c\nccc  d');
  expect(table([])).toBe('');
});

it('plurals, sizes, dates and durations read as a person writes them', () => {
  expect(plural(1, 'member')).toBe('1 member');
  expect(plural(2, 'member')).toBe('2 members');
  expect(plural(0, 'entry', 'entries')).toBe('0 entries');
  expect(size(512)).toBe('512 B');
  expect(size(1536)).toBe('1.5 KB');
  expect(size(3 * 1024 * 1024)).toBe('3.0 MB');
  expect(date(Date.UTC(2026, 11, 2, 22, 40, 59))).toBe('2026-12-02 22:40 UTC');
  expect(date(null)).toBe('-');
  expect(duration(4_400)).toBe('4s');
  expect(duration(65_000)).toBe('1m 05s');
  expect(duration(2 * 3_600_000 + 3 * 60_000)).toBe('2h 03m');
  expect(duration(-1)).toBe('-');
});

it('CSV rows: quoted fields keep commas, doubled quotes and line breaks; line numbers are where rows start', () => {
  const rows = csvRows('address,key\r\na@x.org,"-----BEGIN\nline ""two"", yes\n-----END"\n\nb@x.org,b.asc');
  expect(rows).toEqual([
    { line: 1, fields: ['address', 'key'] },
    { line: 2, fields: ['a@x.org', '-----BEGIN\nline "two", yes\n-----END'] },
    { line: 6, fields: ['b@x.org', 'b.asc'] },
  ]);
  // An unterminated quote ends with the file, not in a loop.
  expect(csvRows('a@x.org,"never closed\nmore')).toEqual([{ line: 1, fields: ['a@x.org', 'never closed\nmore'] }]);
});

it('mbox: split at "From " lines, with mboxrd quoting undone; formats detected from the content', () => {
  const mails = mboxMails('From a@x Thu Jan  1 00:00:00 2026\nFrom: a@x\n\nbody\n>From here\nFrom b@x Thu Jan  1 00:00:00 2026\nFrom: b@x\n\nsecond\n');
  expect(mails).toEqual(['From: a@x\n\nbody\nFrom here\n', 'From: b@x\n\nsecond\n']);
  expect(mboxMails('no separator at all')).toEqual([]);
  expect(detectFormat('From a@x Thu Jan  1 00:00:00 2026\n')).toBe('mbox');
  expect(detectFormat('\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n')).toBe('keyring');
  expect(detectFormat('a@x.org,a.asc\n')).toBe('csv');
});

it('plain progress: the first line, at most one line per interval, and the last', () => {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { lines.push(String(s)); return true; });
  let now = 0;
  vi.spyOn(Date, 'now').mockImplementation(() => now);
  const p = startProgress('importing', 100, { tty: false, everyMs: 1000 });
  for (let i = 0; i < 100; i++) {
    now += 25; // 2.5 s of work in all
    p.tick();
  }
  p.stop();
  expect(lines).toEqual(['importing: 0/100 (0%)\n', 'importing: 40/100 (40%)\n', 'importing: 80/100 (80%)\n', 'importing: 100/100 (100%)\n']);
});
