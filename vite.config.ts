import { defineConfig } from 'vite';

// The extension build (issue: browser extension) will add @crxjs/vite-plugin and
// preact here with one source and two modes, `chrome` and `firefox`. Until then
// this only fixes the shared resolution settings the extension will use.
export default defineConfig({
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
});
