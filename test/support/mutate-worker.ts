// The fuzz input generator, run in a worker thread so that building large
// mutants never delays the test's own event loop (which measures the server's
// latency). Each 'next' message gets one batch back; its buffers are transferred.

import { parentPort, workerData } from 'node:worker_threads';
import { sampleMutants } from './mutate.ts';

export interface MutateWorkerData {
  entry: string;
  seeds: string[]; // binary strings
  fcSeed: number;
  batch: number;
  avoidKnown: boolean;
}

export interface MutateBatch {
  index: number;
  ms: number;
  mutants: Array<{ bytes: Uint8Array; labels: string[] }>;
}

const d = workerData as MutateWorkerData;
let index = 0;
parentPort!.on('message', (msg: 'next') => {
  if (msg !== 'next') return;
  const t0 = performance.now();
  // One fast-check seed per batch: a batch can be regenerated on its own.
  const mutants = sampleMutants(d.seeds, d.batch, (d.fcSeed + index * 7919) | 0, { avoidKnown: d.avoidKnown });
  const out: MutateBatch = { index, ms: performance.now() - t0, mutants };
  index++;
  parentPort!.postMessage(out, mutants.map((m) => m.bytes.buffer as ArrayBuffer));
});
