/// <reference types="vitest/config" />
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crx } from '@crxjs/vite-plugin';
import preact from '@preact/preset-vite';
import { defineConfig, type Plugin, type UserConfig } from 'vite';
import { FRAME_PAGES, manifest, type Target } from './extension/manifest.ts';

/**
 * crxjs lists every dynamically registered script as web-accessible; the content
 * script needs no such access (the browser injects it), so web pages are left
 * able to load only the reader and composer frames.
 */
function onlyFramesWebAccessible(): Plugin {
  return {
    name: 'letterlock:web-accessible-frames',
    enforce: 'post',
    // After crxjs has written its manifest (it edits it up to the last bundle hook).
    writeBundle(options) {
      const file = join(options.dir ?? '', 'manifest.json');
      const m = JSON.parse(readFileSync(file, 'utf8')) as { web_accessible_resources?: { resources: string[] }[] };
      for (const w of m.web_accessible_resources ?? []) w.resources = w.resources.filter((r) => FRAME_PAGES.includes(r));
      // crxjs's own entry is left empty: dropped, so only ours (with use_dynamic_url in Chromium) remains.
      m.web_accessible_resources = (m.web_accessible_resources ?? []).filter((w) => w.resources.length > 0);
      writeFileSync(file, `${JSON.stringify(m, null, 2)}\n`);
    },
  };
}

// The tests (vitest reads this file; it runs with mode 'test'). Unit and
// integration tests run in Node; browser end-to-end tests drive real browsers
// from inside these tests rather than through a vitest browser mode.
// Three projects, in two rounds; the default on this 2-core machine would be a single
// worker for everything. npm test runs them with test/setup/run-tests.mjs: round 2's
// two projects in two vitest processes at once, since in one vitest run projects of
// one round (sequence.groupOrder) share one worker count. A plain `vitest run` runs
// the same three, round 2 one file at a time.
//  - round 1, 'node': unit, server, CLI and interoperability tests. Each file starts its
//    own servers on ephemeral loopback ports and works in its own temporary folders, so
//    two files run at once (2 workers; the tests wait for conditions, never for fixed times).
//  - round 2, 'browsers-and-stack': real Chromium and Firefox, the system's mail stack,
//    Mailman Core and the demo. These share system services and fixed ports, and a
//    browser wants a core of its own, so they run one file at a time.
//  - round 2 beside it, 'postgres': the server suite again with every data folder on a
//    real PostgreSQL (LETTERLOCK_TEST_STORE=postgres; one server per file, on loopback in
//    a temporary folder), one file at a time. Run alone: npm run test:postgres.
//    Left out of that pass: files whose subject is SQLite itself (the backup of its file,
//    the disk-full of its folder), and those on PostgreSQL in every pass already:
//    test/unit/server/store/ (storeBackends), the PostgreSQL backup and the two-node test.
const SQLITE_ONLY = [
  'test/integration/server/backup.test.ts', 'test/integration/server/cli-backup.test.ts', 'test/integration/server/diskfull.test.ts',
  // On PostgreSQL in every pass already (their own server): the same test again otherwise.
  'test/unit/server/store/**', 'test/integration/server/backup-postgres.test.ts', 'test/integration/server/nodes.test.ts',
];
const SERIAL = ['test/browser/**/*.test.ts', 'test/stack/**/*.test.ts', 'test/integration/mailman/**/*.test.ts', 'test/integration/demo/**/*.test.ts'];
const SERVER_SUITE = ['test/unit/server/**/*.test.ts', 'test/integration/server/**/*.test.ts', 'test/cli/**/*.test.ts'];
// Also left out of the PostgreSQL pass: server unit files that never open a store (no
// store helper, harness, server or CLI in them): on PostgreSQL they would be the same test
// again. Found by reading the files, so a file that starts using a store joins the pass.
const STORE_USE = /test-store|storeBackends|harness|openData|openTestSql|startServer|cli\/run/;
function storeFreeUnitFiles(): string[] {
  const dir = 'test/unit/server';
  return readdirSync(dir).filter((n) => n.endsWith('.test.ts') && !STORE_USE.test(readFileSync(join(dir, n), 'utf8'))).map((n) => `${dir}/${n}`);
}
const exclude = ['**/node_modules/**', '**/.git/**'];
const postgresPass = { LETTERLOCK_TEST_STORE: 'postgres', FUZZ_COUNT: '2000' };
const test: UserConfig['test'] = {
  testTimeout: 120_000,
  hookTimeout: 120_000,
  pool: 'forks',
  projects: [
    { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: [...exclude, ...SERIAL], maxWorkers: 2, sequence: { groupOrder: 0 } } },
    { extends: true, test: { name: 'browsers-and-stack', include: SERIAL, exclude, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    { extends: true, test: { name: 'postgres', include: SERVER_SUITE, exclude: [...exclude, ...SQLITE_ONLY, ...storeFreeUnitFiles()], env: postgresPass, maxWorkers: 1, sequence: { groupOrder: 1 } } },
  ],
};

// The browser extension: one source, two builds.
//   vite build --mode chrome   -> dist/chrome   (MV3 service worker)
//   vite build --mode firefox  -> dist/firefox  (MV3 event page, gecko id)
export default defineConfig(({ mode }) => {
  // The extension's plugins (crxjs writes a manifest) have no business in a test run.
  if (mode === 'test') return { test };
  const target: Target = mode === 'firefox' ? 'firefox' : 'chrome';
  // Set only by the browser tests (see extension/manifest.ts); never in release builds.
  const testHosts = (process.env.LETTERLOCK_TEST_HOSTS ?? '').split(',').filter(Boolean);
  // Test builds only: frames report their state words to the test driver (through the background).
  const testMarks = process.env.LETTERLOCK_TEST_MARKS === '1';
  return {
    define: { __LETTERLOCK_TEST_MARKS__: JSON.stringify(testMarks) },
    plugins: [preact(), crx({ manifest: manifest(target, testHosts), browser: target }), onlyFramesWebAccessible()],
    build: {
      target: 'es2022',
      outDir: `dist/${target}`,
      emptyOutDir: true,
      // Pages that are not in the manifest: the frames placed in webmail, and the archive.
      rollupOptions: { input: Object.fromEntries([...FRAME_PAGES, 'extension/pages/archive/index.html', 'extension/pages/attachment/index.html', 'extension/pages/moderation/index.html'].map((p) => [p.split('/')[2]!, p])) },
      chunkSizeWarningLimit: 2048,
    },
  };
});
