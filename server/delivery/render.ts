// Renders one queued copy into the mail sent to the relay: the post's shared
// headers, the recipient's list headers, and PGP/MIME around the armored
// OpenPGP message PKESK ‖ body. The armored body lines are computed once per
// post (per PKESK length class), so a copy costs a header and a short prefix,
// not a base64 pass over the whole body.

import { encryptedBodyFrame, writeHeaders, type DeliveryForm, type HeaderList } from '../../shared/index.ts';

const LINE_BYTES = 48; // 64 base64 characters per armor line

function base64Lines(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return lines.join('\r\n');
}

/** The pieces of one post that every copy shares. */
export class PostRender {
  /** Per alignment: the body's armor lines and the closing MIME lines, as bytes. */
  private readonly tails = new Map<number, Buffer>();
  readonly headerText: string;
  private readonly frames: Record<DeliveryForm, { head: string; tail: string }>;

  constructor(private readonly body: Uint8Array, headers: HeaderList, boundaryTag: string) {
    this.headerText = writeHeaders(headers);
    const boundary = `=_ll_${boundaryTag}`;
    this.frames = { 'pgp-mime': encryptedBodyFrame('pgp-mime', boundary), inline: encryptedBodyFrame('inline') };
  }

  private tail(skip: number, form: DeliveryForm): Buffer {
    const cacheKey = form === 'inline' ? -1 - skip : skip;
    let t = this.tails.get(cacheKey);
    if (t === undefined) {
      const lines = skip < this.body.byteLength ? `\r\n${base64Lines(this.body.subarray(skip))}` : '';
      t = Buffer.from(`${lines}\r\n-----END PGP MESSAGE-----\r\n${this.frames[form].tail}`, 'latin1');
      this.tails.set(cacheKey, t);
    }
    return t;
  }

  /**
   * The whole copy for one recipient: RFC 4880 armor of pkesk ‖ body (no CRC
   * line: it is optional, and RFC 9580 drops it) inside PGP/MIME, or as the
   * whole text/plain body for subscribers who read list mail in webmail. Only
   * the headers and the first armor lines are made per copy.
   */
  mail(pkesk: Uint8Array, recipientHeaders: HeaderList, form: DeliveryForm = 'pgp-mime'): Buffer {
    const skip = (LINE_BYTES - (pkesk.byteLength % LINE_BYTES)) % LINE_BYTES;
    const head = new Uint8Array(pkesk.byteLength + Math.min(skip, this.body.byteLength));
    head.set(pkesk, 0);
    head.set(this.body.subarray(0, skip), pkesk.byteLength);
    const prefix =
      `${this.headerText}\r\n${writeHeaders(recipientHeaders)}\r\n${this.frames[form].head}` +
      `-----BEGIN PGP MESSAGE-----\r\n\r\n${base64Lines(head)}`;
    return Buffer.concat([Buffer.from(prefix, 'utf8'), this.tail(skip, form)]);
  }
}
