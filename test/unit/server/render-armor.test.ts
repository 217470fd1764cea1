// The armor of a rendered copy, line by line: PostRender base64-encodes the per-copy
// head (PKESK ‖ first body bytes) and the cached tail separately, and combines the
// CRC-24 line from the body's CRC and the PKESK's. Checked here against a bit-by-bit
// CRC and a plain base64 of PKESK ‖ body, for every PKESK length a key can give.
// (The real tools read the real copies in test/interop/copies.test.ts.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PostRender } from '../../../server/delivery/render.ts';
import type { DeliveryForm } from '../../../shared/index.ts';
import { referenceCrc24 } from '../../support/crc24.ts';

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7 + (i >> 5)) & 0xff);
}

/** The armor RFC 4880 describes for `data`: 64-character lines, padding only at the end, then the CRC line. */
function expectedArmorLines(data: Uint8Array): string[] {
  const b64 = Buffer.from(data).toString('base64');
  const lines = ['-----BEGIN PGP MESSAGE-----', ''];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  const crc = referenceCrc24(data);
  lines.push(`=${Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64')}`, '-----END PGP MESSAGE-----');
  return lines;
}

/** The armored block's lines (CRLF in the mail: every line break must be CRLF). */
function armorLines(mail: Buffer): string[] {
  const text = mail.toString('latin1');
  const start = text.indexOf('-----BEGIN PGP MESSAGE-----');
  const end = text.indexOf('-----END PGP MESSAGE-----\r\n');
  expect(start).toBeGreaterThan(0);
  expect(end).toBeGreaterThan(start);
  const block = text.slice(start, end + 25);
  expect(block.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  return block.split('\r\n');
}

describe('PostRender armor', () => {
  it('is exact for every PKESK length from 1 to 600 bytes and bodies around each line boundary', () => {
    const forms: DeliveryForm[] = ['pgp-mime', 'inline'];
    for (const bodyLength of [0, 1, 2, 3, 46, 47, 48, 49, 95, 96, 97, 1000, 4099]) {
      const body = bytes(bodyLength, bodyLength);
      const render = new PostRender(body, [['Subject', '...']], 'tag');
      for (let pk = 1; pk <= 600; pk++) {
        const pkesk = bytes(pk, pk);
        const form = forms[pk % 2]!;
        const mail = render.mail(pkesk, [['To', '<x@y.test>']], form);
        const got = armorLines(mail);
        const want = expectedArmorLines(Buffer.concat([pkesk, body]));
        if (got.join('\n') !== want.join('\n')) {
          expect({ pk, bodyLength, form, got }).toEqual({ pk, bodyLength, form, got: want });
        }
      }
    }
  });

  it('gives every copy of one post its own CRC, from cached tails, in any order (property)', () => {
    fc.assert(
      fc.property(
        // 0xd2 opens a SEIPD packet, which may be a v2 one (no CRC line: tested below).
        fc.uint8Array({ minLength: 0, maxLength: 3000 }).filter((b) => b[0] !== 0xd2),
        fc.array(fc.record({ pkesk: fc.uint8Array({ minLength: 1, maxLength: 700 }), form: fc.constantFrom<DeliveryForm>('pgp-mime', 'inline') }), { minLength: 1, maxLength: 8 }),
        (body, copies) => {
          const render = new PostRender(body, [['Subject', '...']], 'tag');
          for (const c of copies) {
            const lines = armorLines(render.mail(c.pkesk, [['To', '<x@y.test>']], c.form));
            expect(lines).toEqual(expectedArmorLines(Buffer.concat([c.pkesk, body])));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('leaves the CRC line out when the body is a v2 SEIPD packet (RFC 9580 section 6.1: MUST NOT)', () => {
    const v2 = new Uint8Array([0xd2, 5, 2, 9, 2, 16, 0x42]); // tag 18, version 2, AES-256, OCB, chunk size 16
    const lines = armorLines(new PostRender(v2, [], 'tag').mail(bytes(96, 2), []));
    expect(lines.at(-1)).toBe('-----END PGP MESSAGE-----');
    expect(lines.some((l) => /^=/.test(l))).toBe(false);
    expect(Buffer.from(lines.slice(2, -1).join(''), 'base64').equals(Buffer.concat([bytes(96, 2), v2]))).toBe(true);
    // A v1 SEIPD body keeps it.
    const v1 = new Uint8Array([0xd2, 3, 1, 0x42, 0x43]);
    expect((armorLines(new PostRender(v1, [], 'tag').mail(bytes(96, 2), []))).at(-2)).toMatch(/^=[A-Za-z0-9+/]{4}$/);
  });
});
