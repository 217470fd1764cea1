// Decrypting and verifying a post with the unlocked key, for the reader frame
// and the archive viewer alike: which list it came through, who signed it (the
// sender's key fetched from the list when it is not known yet), and the view the
// frames draw. Plaintext stays in the background and in our frames.

import type { PublicKey } from 'openpgp';
import { CONFIRMATION_TOKEN_LINE, isLetterlockError, readMessage, readPublicKey, type ReadResult } from '../../shared/index.ts';
import { ExtensionError } from '../errors.ts';
import type { ReadView, SignatureView } from '../messages.ts';
import type { Common } from './rooms/room.ts';
import type { ArchiveSignIn } from './signin.ts';
import type { StoredList } from './store.ts';

export interface Decrypted {
  result: ReadResult;
  list: StoredList | null;
  signature: SignatureView;
}

export class Decryptor {
  constructor(private readonly c: Common, private readonly signIn: ArchiveSignIn) {}

  /** Keys that may have signed what we read: our own, pinned list keys, member keys fetched before. */
  private async localSigners(): Promise<{ key: PublicKey; address: string }[]> {
    const d = this.c.d;
    const out: { key: PublicKey; address: string }[] = [];
    const own = await d.store.allKeys();
    const tryAdd = async (armored: string, address: string) => {
      try {
        out.push({ key: (await readPublicKey(armored, { expectedAddress: address })).key, address });
      } catch {
        // An expired or revoked cached key simply does not verify anything.
      }
    };
    for (const k of own) await tryAdd(k.publicArmored, k.address);
    for (const l of await d.store.allLists()) await tryAdd(l.listKeyArmored, l.address);
    for (const m of await d.store.allMemberKeys()) await tryAdd(m.armored, m.address);
    return out;
  }

  /** Decrypts and verifies; fetches the sender's key from the list when it is not known yet. */
  async read(input: string | Uint8Array, listHint?: StoredList): Promise<Decrypted> {
    const d = this.c.d;
    const keys = d.session.unlockedKeys();
    if (keys.length === 0) d.session.requireKey(); // refuses: locked
    d.rate.take();
    const signers = await this.localSigners();
    let result: ReadResult | null = null;
    let privateKey = keys[0]!;
    // Any of the user's unlocked keys may be the recipient; at most MAX_KEYS tries.
    for (const k of keys) {
      try {
        result = await readMessage(input, { privateKey: k, senderKeys: signers.map((s) => s.key) });
        privateKey = k;
        break;
      } catch (e) {
        if (!isLetterlockError(e, 'WRONG_KEY') || k === keys[keys.length - 1]) throw readFailure(e);
      }
    }
    if (!result) throw readFailure(null);
    const lists = await d.store.allLists();
    const names = [...result.message.to.map((m) => m.address.toLowerCase()), result.message.from?.address.toLowerCase()];
    const list = listHint ?? lists.find((l) => names.includes(l.address)) ?? null;
    const from = result.message.from?.address.toLowerCase() ?? null;
    let v = result.verification;
    if (!v.valid && v.code === 'SIGNER_UNKNOWN' && v.signerKeyId && list) {
      const fetched = await this.fetchMemberKey(list, v.signerKeyId, from);
      if ('unchecked' in fetched) return { result, list, signature: { status: 'unchecked', reason: fetched.unchecked } };
      signers.push(fetched);
      result = await readMessage(input, { privateKey, senderKeys: [fetched.key] });
      v = result.verification;
    }
    if (v.valid) {
      const signer = signers.find((s) => s.key.getFingerprint().toUpperCase() === v.signerFingerprint);
      const address = signer?.address ?? null;
      // A good signature by someone other than the From address is not "verified".
      if (from && address !== from) {
        return { result, list, signature: { status: 'invalid', code: 'SIGNER_MISMATCH', reason: `Signed by ${address ?? 'another key'}, not by the sender ${from}.` } };
      }
      return { result, list, signature: { status: 'verified', fingerprint: v.signerFingerprint, address } };
    }
    if (v.code === 'SIGNER_UNKNOWN') {
      return { result, list, signature: { status: 'unchecked', reason: 'Signature not checked: sender key unavailable.' } };
    }
    return { result, list, signature: { status: 'invalid', code: v.code, reason: v.reason } };
  }

  private async fetchMemberKey(list: StoredList, keyId: string, from: string | null): Promise<{ key: PublicKey; address: string } | { unchecked: string }> {
    const d = this.c.d;
    const unavailable = { unchecked: 'Signature not checked: sender key unavailable.' };
    if (!from) return unavailable;
    try {
      const token = await this.signIn.token(list);
      const mk = await d.server.memberKey(list.server, list.address, token, keyId);
      if (mk.address !== from) return { unchecked: `Signature not checked: the signing key belongs to ${mk.address}, not the sender ${from}.` };
      const { key, facts } = await readPublicKey(mk.publicKey, { expectedAddress: from });
      if (facts.fingerprint !== mk.fingerprint) return unavailable;
      await d.store.putMemberKey({ keyId, fingerprint: facts.fingerprint, address: from, list: list.address, armored: mk.publicKey });
      return { key, address: from };
    } catch (e) {
      if (e instanceof ExtensionError && e.code === 'NOT_FOUND') return { unchecked: 'Not from this list: the signer is not a member of the list.' };
      return unavailable;
    }
  }
}

/** What the frames draw of a decrypted post. */
export function readView(r: Decrypted): ReadView {
  const m = r.result.message;
  return {
    subject: m.subject,
    from: m.from,
    date: m.date ? m.date.toISOString() : null,
    text: m.text,
    html: m.text ? null : m.html,
    attachments: m.attachments.map((a) => ({ filename: a.filename, size: a.size })),
    signature: r.signature,
    list: r.list?.address ?? null,
    confirmable: confirmationToken(r) !== null,
  };
}

/**
 * The subscription token of a confirmation mail: only from a mail the pinned list
 * key signed, so a look-alike mail cannot make the user confirm someone else's request.
 */
export function confirmationToken(r: Decrypted): string | null {
  const text = r.result.message.text;
  if (!r.list || !text || r.signature.status !== 'verified' || r.signature.address !== r.list.address) return null;
  return CONFIRMATION_TOKEN_LINE.exec(text)?.[1] ?? null;
}

/** Decryption failures in the reader's words. */
function readFailure(e: unknown): unknown {
  if (isLetterlockError(e, 'WRONG_KEY')) return new ExtensionError('NO_KEY_FOR_MESSAGE');
  if (isLetterlockError(e) && ['OPENPGP_MALFORMED', 'DECRYPTION_FAILED', 'NOT_ENCRYPTED', 'TOO_MANY_PACKETS'].includes(e.code)) {
    return new ExtensionError('DAMAGED');
  }
  return e;
}
