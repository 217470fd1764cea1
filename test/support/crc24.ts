// RFC 4880 section 6.1's CRC-24, bit by bit: the tests' own oracle for the armor
// checksum, written independently of server/delivery/render.ts's table and
// combination.

export function referenceCrc24(bytes: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of bytes) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}
