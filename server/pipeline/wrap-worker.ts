// Runs inside a worker thread of the wrap pool (wrap-pool.ts): wraps K to a
// slice of a fan-out page, the slice's Curve25519 recipients under one shared
// ephemeral key (recipient.ts says why that is safe). K arrives in memory only
// (moved, not copied, from the main thread) and is zeroed before the task
// returns. A member key that cannot be parsed or wrapped comes back as an empty
// slot, which the caller turns into a KEY_NO_ENCRYPTION notice: one bad key
// never fails the slice.

import { setPriority } from 'node:os';
import { workerData } from 'piscina';
import { wrapSlice } from './recipient.ts';

// Tests ask a thread how it was started (pools' probe()).
export { probe } from './worker-probe.ts';

export interface WrapTask {
  /** K's 32 bytes (AES-256); zeroed here after use. */
  key: Uint8Array;
  /**
   * Stored encryption key packets (bodies), one per member, back to back in one buffer
   * (moved, not cloned: one transfer per slice instead of a clone per member);
   * `ends[i]` is where member i's packet ends.
   */
  packets: Uint8Array;
  ends: Uint32Array;
  /** 'slice' (the default): one ephemeral key pair for the slice; 'recipient': one per PKESK. */
  ephemeral?: 'slice' | 'recipient';
}

export interface WrapResult {
  /** The PKESKs back to back; `ends[i]` is where member i's ends; an empty one (ends[i] === ends[i-1]) failed. */
  bytes: Uint8Array;
  ends: Uint32Array;
}

// As in the open pool: on Linux, pid 0 is this thread alone. The wrap threads
// yield the cores to the main thread (SMTP, HTTP, delivery) when they compete.
// (A benchmark may ask for the normal priority through workerData, to separate the
// wrap's cost from other processes' load on a shared machine.)
try {
  setPriority(0, typeof workerData?.priority === 'number' ? workerData.priority : 10);
} catch {
  // not permitted or not supported: the pool still works, only without the yield
}

function* packetsOf(task: WrapTask): Generator<Uint8Array> {
  let from = 0;
  for (const end of task.ends) {
    yield task.packets.subarray(from, end);
    from = end;
  }
}

export default async function run(task: WrapTask): Promise<WrapResult> {
  let pkesks: Array<Uint8Array | null>;
  try {
    pkesks = await wrapSlice({ data: task.key, algorithm: 'aes256' }, packetsOf(task), { ephemeral: task.ephemeral });
  } finally {
    task.key.fill(0);
  }
  let total = 0;
  for (const p of pkesks) total += p?.byteLength ?? 0;
  const bytes = new Uint8Array(total);
  const ends = new Uint32Array(pkesks.length);
  let at = 0;
  for (let i = 0; i < pkesks.length; i++) {
    const p = pkesks[i];
    if (p) {
      bytes.set(p, at);
      at += p.byteLength;
    }
    ends[i] = at;
  }
  return { bytes, ends };
}
