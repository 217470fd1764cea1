// Build-time module kinds the crxjs plugin provides (e.g. `?iife` for the
// dynamically registered content script).
/// <reference types="@crxjs/vite-plugin/client" />
/// <reference types="vite/client" />

/** True only in the browser tests' builds (vite.config.ts): frames report state words for the driver. */
declare const __LETTERLOCK_TEST_MARKS__: boolean;
