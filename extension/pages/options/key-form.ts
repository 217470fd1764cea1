// The key-creation form's checks, field by field, before anything goes to the
// background (which checks the same again): each error is shown at its field,
// tied to it for screen readers (aria-invalid, aria-describedby).

export type KeyField = 'address' | 'passphrase' | 'again';

export interface KeyFormInput {
  address: string;
  passphrase: string;
  again: string;
}

/** The same rule as the background's (keyring.ts): a name, an @ and a domain with a dot. */
const ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Each field's error in words, in the form's order; empty when the form may be sent. */
export function keyFormErrors(q: KeyFormInput): Partial<Record<KeyField, string>> {
  const out: Partial<Record<KeyField, string>> = {};
  const address = q.address.trim();
  if (address === '') out.address = 'Type your email address, like you@example.org.';
  else if (!ADDRESS.test(address)) {
    out.address = /@[^.]+$/.test(address)
      ? 'The domain after the @ needs a dot, like you@example.org.'
      : 'This is not an email address: a name, an @ and a domain with a dot, like you@example.org.';
  }
  if (q.passphrase.length < 8) out.passphrase = 'The passphrase needs at least 8 characters. Four or more random words work well.';
  else if (q.passphrase !== q.again) out.again = 'The two passphrases differ. Type the same passphrase twice.';
  return out;
}
