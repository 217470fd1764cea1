// The no-plaintext scan runs over folders that live daemons (PostgreSQL, Postfix)
// still write to: a file or folder they remove between the listing and the read is
// no longer on disk, so the scan skips it rather than failing (a fresh-clone CI run
// failed on PostgreSQL's pg_internal.init, rewritten by rename mid-scan).
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listFiles, readListed, scan } from '../../integration/server/scan.ts';

const root = mkdtempSync(join(tmpdir(), 'letterlock-scan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('scan helpers', () => {
  it('a file removed after the listing reads as null; the others are still scanned', () => {
    const dir = mkdtempSync(join(root, 'files-'));
    writeFileSync(join(dir, 'a'), 'xx MARKER-1 yy');
    writeFileSync(join(dir, 'b'), 'nothing');
    const files = listFiles(dir);
    expect(files.length).toBe(2);
    unlinkSync(join(dir, 'b'));
    expect(readListed(join(dir, 'b'))).toBeNull();
    expect(readListed(join(dir, 'a'))?.toString()).toContain('MARKER-1');
    expect(scan([dir], 'MARKER-1').map((h) => h.file)).toEqual([join(dir, 'a')]);
  });

  it('an error other than a vanished file still fails the read', () => {
    const dir = mkdtempSync(join(root, 'dir-'));
    expect(() => readListed(dir)).toThrow(/EISDIR/);
  });

  it('the walk lists files in sub-folders; a missing root is an error, not an empty scan', () => {
    const dir = mkdtempSync(join(root, 'tree-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'x'), 'x');
    writeFileSync(join(dir, 'y'), 'y');
    expect(listFiles(dir).sort()).toEqual([join(dir, 'sub', 'x'), join(dir, 'y')]);
    expect(() => listFiles(join(dir, 'missing'))).toThrow(/ENOENT/);
  });
});
