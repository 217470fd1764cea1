// Starts a TypeScript module in a worker thread: registers tsx in this thread
// (a worker does not inherit the parent's loader), then imports the module
// named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
