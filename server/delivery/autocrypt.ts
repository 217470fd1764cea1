// The Autocrypt header (Autocrypt Level 1) for the list key on outgoing list
// mail, so mail clients that speak Autocrypt learn the list key from any copy.

/** The base64 body of an ASCII-armored key block: the binary key, still in base64. */
function armorBody(armored: string): string {
  const lines = armored.split(/\r?\n/);
  const start = lines.findIndex((l) => l.trim() === '');
  if (start < 0) throw new Error('not an ASCII-armored key');
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.startsWith('=') || l.startsWith('-----END')) break;
    out.push(l.trim());
  }
  return out.join('');
}

/**
 * addr, prefer-encrypt=mutual, and keydata: the list key (already minimal: one
 * user ID, one encryption subkey) in base64, split by spaces so the header
 * writer can fold it (Autocrypt readers ignore whitespace in keydata).
 */
export function autocryptHeader(listAddress: string, armoredListKey: string): string {
  const chunks = armorBody(armoredListKey).match(/.{1,72}/g) ?? [];
  return `addr=${listAddress}; prefer-encrypt=mutual; keydata=${chunks.join(' ')}`;
}
