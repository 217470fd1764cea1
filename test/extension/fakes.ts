// Fakes for the background's browser-provided parts in Node unit tests.

import type { SessionArea } from '../../extension/background/session.ts';

/** storage.session: memory only, values copied in and out like the browser does. */
export class MemoryArea implements SessionArea {
  data = new Map<string, unknown>();
  async get(k: string) {
    return this.data.has(k) ? { [k]: structuredClone(this.data.get(k)) } : {};
  }
  async set(items: Record<string, unknown>) {
    for (const [k, v] of Object.entries(items)) this.data.set(k, structuredClone(v));
  }
  async remove(k: string) {
    this.data.delete(k);
  }
}

