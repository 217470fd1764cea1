// Build-time module kinds the crxjs plugin provides (e.g. `?iife` for the
// dynamically registered content script).
/// <reference types="@crxjs/vite-plugin/client" />
/// <reference types="vite/client" />
