import { crx } from '@crxjs/vite-plugin';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';
import { FRAME_PAGES, manifest, type Target } from './extension/manifest.ts';

// The browser extension: one source, two builds.
//   vite build --mode chrome   -> dist/chrome   (MV3 service worker)
//   vite build --mode firefox  -> dist/firefox  (MV3 event page, gecko id)
export default defineConfig(({ mode }) => {
  const target: Target = mode === 'firefox' ? 'firefox' : 'chrome';
  // Set only by the browser tests (see extension/manifest.ts); never in release builds.
  const testHosts = (process.env.LETTERLOCK_TEST_HOSTS ?? '').split(',').filter(Boolean);
  return {
    plugins: [preact(), crx({ manifest: manifest(target, testHosts), browser: target })],
    build: {
      target: 'es2022',
      outDir: `dist/${target}`,
      emptyOutDir: true,
      // Pages that are not in the manifest: the frames placed in webmail, and the archive.
      rollupOptions: { input: Object.fromEntries([...FRAME_PAGES, 'extension/pages/archive/index.html'].map((p) => [p.split('/')[2]!, p])) },
      chunkSizeWarningLimit: 2048,
    },
  };
});
