// What a pool thread reports about how it was started (tests only, through the
// pools' probe()): its execArgv, the module it runs, and whether it can import
// TypeScript, which it cannot without a loader's hooks.

import { pathToFileURL } from 'node:url';

export interface WorkerFacts {
  execArgv: string[];
  /** The worker module's URL: the plain build (worker-build.ts), not a .ts source. */
  module: string;
  /** True when importing `tsFile` worked, i.e. some loader compiles TypeScript in this thread. */
  typescript: boolean;
}

export async function probe(tsFile: string): Promise<WorkerFacts> {
  let typescript = false;
  try {
    await import(pathToFileURL(tsFile).href);
    typescript = true;
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw e;
  }
  return { execArgv: [...process.execArgv], module: import.meta.url, typescript };
}
