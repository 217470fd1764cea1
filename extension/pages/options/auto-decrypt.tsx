// The per-list "decrypt automatically" switch (off by default: mail is decrypted
// when the user clicks "Decrypt" in it, as in Mailvelope).

import { ask } from '../../ask.ts';
import type { ListView } from '../../messages.ts';

export function AutoDecrypt({ list, onLists, run }: { list: ListView; onLists(l: ListView[]): void; run(f: () => Promise<void>): unknown }) {
  if (list.changedFingerprint) return null;
  return (
    <label class="check" data-test="auto-decrypt-label">
      <input type="checkbox" data-test="auto-decrypt" checked={list.autoDecrypt} onChange={(e) => {
        const auto = (e.target as HTMLInputElement).checked;
        void run(async () => onLists(await ask('list.auto', { address: list.address, auto })));
      }} />
      {' '}Decrypt mail from this list automatically (otherwise: when you click "Decrypt")
    </label>
  );
}
