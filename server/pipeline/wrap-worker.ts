// Runs inside a worker thread of the wrap pool (wrap-pool.ts): wraps K to a
// slice of a fan-out page. K arrives in memory only (moved, not copied, from
// the main thread) and is zeroed before the task returns. A member key that
// cannot be parsed or wrapped comes back as an empty slot, which the caller
// turns into a KEY_NO_ENCRYPTION notice: one bad key never fails the slice.

import { setPriority } from 'node:os';
import { workerData } from 'piscina';
import { PacketRecipient } from './recipient.ts';

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

export default async function run(task: WrapTask): Promise<WrapResult> {
  const sessionKey = { data: task.key, algorithm: 'aes256' as const };
  const pkesks: Array<Uint8Array | null> = [];
  let total = 0;
  try {
    let from = 0;
    for (const end of task.ends) {
      const packet = task.packets.subarray(from, end);
      from = end;
      let pkesk: Uint8Array | null = null;
      try {
        // The fingerprint is not used by the wrap: the packet carries its own.
        pkesk = await (await PacketRecipient.fromPacket('', packet)).wrap(sessionKey);
      } catch {
        pkesk = null;
      }
      pkesks.push(pkesk);
      total += pkesk?.byteLength ?? 0;
    }
  } finally {
    task.key.fill(0);
  }
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
