import * as openpgp from 'openpgp';
import { describe, expect, it } from 'vitest';
import { PostRender } from '../../../server/delivery/render.ts';
import { concatBytes, findPayload } from '../../../shared/index.ts';

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

describe('PostRender (a copy = armor of PKESK ‖ shared body inside PGP/MIME)', () => {
  it('armors exactly pkesk ‖ body for every PKESK length and body size', async () => {
    for (const bodyLen of [0, 1, 47, 48, 49, 1000, 4099]) {
      const body = bytes(bodyLen, 7);
      const r = new PostRender(body, [['Subject', '...']], 'tag');
      for (let pk = 1; pk <= 100; pk += 7) {
        const pkesk = bytes(pk, pk);
        const mail = r.mail(pkesk, [['To', '<x@y.test>']]).toString('utf8');
        const found = await findPayload(mail, 1e7);
        expect(found.form).toBe('pgp-mime');
        const { data } = await openpgp.unarmor(found.armored!);
        expect(Buffer.from(data as Uint8Array).equals(Buffer.from(concatBytes([pkesk, body])))).toBe(true);
        expect(found.armored!.split(/\r?\n/).every((l) => l.length <= 64)).toBe(true);
      }
    }
  });

  it('writes the shared and per-recipient headers, and refuses header injection', () => {
    const r = new PostRender(bytes(10, 1), [['Subject', '...'], ['List-Id', '<l.x.test>']], 'tag');
    const mail = r.mail(bytes(96, 2), [['List-Unsubscribe', '<https://x.test/u?t=1>']]).toString();
    expect(mail).toMatch(/^Subject: \.\.\.\r\nList-Id: <l\.x\.test>\r\nList-Unsubscribe: <https:\/\/x\.test\/u\?t=1>\r\nMIME-Version: 1\.0\r\n/);
    expect(() => r.mail(bytes(96, 2), [['X-Evil', 'a\r\nBcc: y@z.test']])).toThrow(/line break/);
  });
});
