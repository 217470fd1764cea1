// Every refusal in the protocol core has a stable code (for programs, logs and
// tests) and a sentence a person can act on (for bounces and the extension's UI).
// Messages never quote a post's content: they are safe to log and to mail back.

export const ERROR_MESSAGES = {
  // Keys
  KEY_UNREADABLE: 'The key could not be read. Paste the whole ASCII-armored OpenPGP key block.',
  KEY_VERSION_UNSUPPORTED: 'This key uses an OpenPGP key format that Letterlock does not accept (v5, or RFC 9580 algorithms inside a version 4 key, which GnuPG 2.2 cannot read). Please use a version 4 key, or a version 6 (RFC 9580) key.',
  KEY_EXPIRED: 'This key has expired. Extend its expiry date in your OpenPGP program, or create a new key.',
  KEY_REVOKED: 'This key has been revoked by its owner and can no longer be used.',
  KEY_NO_ENCRYPTION: 'This key has no usable encryption subkey, so nobody can encrypt mail to it.',
  KEY_TOO_WEAK: 'This key uses an algorithm or size that is too weak. Use Curve25519, NIST P-256/384/521, or RSA with at least 2048 bits.',
  KEY_USERID_MISMATCH: 'None of this key\'s user IDs holds the expected email address.',
  KEY_UNPROTECTED: 'This private key is not protected by a passphrase. Protect it with a passphrase before storing it.',
  KEY_NOT_PRIVATE: 'A private key was expected, but this is a public key.',
  KEY_PASSPHRASE_WRONG: 'The passphrase does not unlock this key.',
  // Posts: finding the payload
  MIME_MALFORMED: 'The message could not be read as an email (malformed MIME).',
  NO_PAYLOAD: 'The message holds no OpenPGP-encrypted content. Posts to this list must be encrypted to the list key.',
  MULTIPLE_PAYLOADS: 'The message holds more than one encrypted block. Send one encrypted message per post.',
  // Posts: size and structure limits
  TOO_LARGE: 'The message is larger than this list accepts.',
  DECOMPRESSED_TOO_LARGE: 'The message expands to more than this list accepts when decompressed.',
  TOO_MANY_PACKETS: 'The encrypted message has an unreasonable number of parts.',
  HEADERS_TOO_LARGE: 'The message headers are too large, nested too deeply, or hold too many encoded words.',
  TOO_COMPLEX: 'The message took too long to process and was refused. Send a simpler message.',
  // Posts: decryption
  OPENPGP_MALFORMED: 'The encrypted message is damaged or truncated and cannot be read.',
  LEGACY_UNPROTECTED: 'The message uses an old encryption format without integrity protection, which is refused. Update your OpenPGP program.',
  NOT_ENCRYPTED: 'The OpenPGP block is not an encrypted message.',
  WRONG_KEY: 'The message was not encrypted to this key.',
  DECRYPTION_FAILED: 'The message could not be decrypted: it was damaged or tampered with in transit.',
  // Posts: signatures
  UNSIGNED: 'The message is not signed. Sign your posts with the key registered for your address.',
  SIGNER_UNKNOWN: 'The message is signed by a key that is not registered for any member of this list.',
  BAD_SIGNATURE: 'The signature on the message does not match its content.',
  SIGNER_KEY_INVALID: 'The message is signed with a key that has been revoked, or that had expired when it signed.',
  SIGNATURE_FROM_FUTURE: 'The signature is dated in the future. Check the date and time of the computer that signed the message, then send it again.',
  // Reading
  NOT_MIME: 'The decrypted content is not a MIME message.',
} as const;

export type ErrorCode = keyof typeof ERROR_MESSAGES;

export class LetterlockError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string = ERROR_MESSAGES[code], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LetterlockError';
    this.code = code;
  }
}

export function isLetterlockError(e: unknown, code?: ErrorCode): e is LetterlockError {
  return e instanceof LetterlockError && (code === undefined || e.code === code);
}

/** Throws a coded error; `detail` must never carry post content. */
export function fail(code: ErrorCode, detail?: string, cause?: unknown): never {
  const message = detail ? `${ERROR_MESSAGES[code]} (${detail})` : ERROR_MESSAGES[code];
  throw new LetterlockError(code, message, cause === undefined ? undefined : { cause });
}
