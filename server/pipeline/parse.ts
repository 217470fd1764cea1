// Step 1, parse: find the one OpenPGP payload in the incoming mail and the outer
// envelope facts (From, threading). The list's size limit applies here, before
// any decryption work is spent on an oversized post.

import { findPayload } from '../../shared/index.ts';
import type { Incoming, Parsed } from './types.ts';

export async function parse(incoming: Incoming): Promise<Parsed> {
  const found = await findPayload(incoming.raw, incoming.list.maxBytes);
  return {
    list: incoming.list,
    envelopeFrom: incoming.envelopeFrom,
    size: incoming.raw.byteLength,
    form: found.form,
    payload: found.armored ?? found.binary!,
    outer: found.outer,
  };
}
