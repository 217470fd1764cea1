// Errors the extension shows, each a stable code and a sentence a person can act
// on. Protocol refusals (shared/errors.ts) keep their own sentences; these add the
// extension's own situations (locked, not allowed, server trouble).

import { ERROR_MESSAGES, isLetterlockError } from '../shared/errors.ts';

export const EXTENSION_ERRORS = {
  LOCKED: 'Letterlock is locked. Unlock it to read or write encrypted mail: click the Letterlock button in the browser\'s toolbar, type your passphrase there, then try again.',
  NO_KEY: 'You have no key yet. Create or import one in the Letterlock options.',
  KEY_EXISTS: 'You already have this key in Letterlock. Nothing was changed.',
  TOO_MANY_KEYS: 'Letterlock keeps at most 20 keys. Remove one you no longer use first.',
  NO_KEY_FOR_MESSAGE: 'This message was not encrypted to your key, so it cannot be opened here.',
  DAMAGED: 'This encrypted message is damaged or incomplete and cannot be read.',
  RATE_LIMITED: 'Too many operations in the last minute. Wait a minute, then try again.',
  FORBIDDEN: 'Letterlock refused this request because it came from the wrong place. Open Letterlock from its toolbar button or its options page and try again there.',
  UNKNOWN_BLOCK: 'This message is no longer available here. Reload the page to open it again.',
  CLICK_TO_DECRYPT: 'Click “Decrypt” to read this message.',
  COVERED: 'Letterlock ignored that click: something on the page covers or hides this frame. If you did not expect that, leave this page.',
  TOO_MANY_BLOCKS: 'This page holds too many encrypted messages to open at once. Open the message on its own.',
  ATTACHMENT_GONE: 'This attachment is no longer available. Open it again from the message.',
  TOO_LARGE: 'This is too large for Letterlock to handle in the browser. Make it shorter, or open the message in a mail program.',
  BAD_INPUT: 'Check what you entered and try again.',
  LIST_UNKNOWN: 'This list has not been added yet. Add it in the Letterlock options.',
  LIST_NOT_PINNED: 'Confirm the list key\'s fingerprint before using this list.',
  LIST_KEY_CHANGED: 'The list key has changed since you confirmed it. Check the new fingerprint with the list owner before accepting it.',
  FINGERPRINT_MISMATCH: 'The fingerprint you confirmed is not the one the server sent. Look the list up again.',
  INSECURE_SERVER: 'The list server must use https:// (plain http:// only for a server on this computer).',
  SERVER_UNREACHABLE: 'The list server could not be reached. Check its address and your connection.',
  SERVER_ERROR: 'The list server answered with an error. Try again in a few minutes; if it keeps happening, tell the list owner.',
  SERVER_BAD_ANSWER: 'The list server sent an answer Letterlock does not understand. Check the server address; if it is right, tell the list owner.',
  NO_CONFIRMATION: 'This message holds no subscription confirmation from a list you added. Open the confirmation mail the list sent you.',
  INTERNAL: 'Something went wrong inside Letterlock. Try again; if it happens again, reload the page.',
  TOO_MANY_ATTACHMENTS: 'Attach at most 10 files to one encrypted post.',
  ATTACHMENTS_TOO_LARGE: 'The attachments are too large for one encrypted post. Leave some out, or share large files another way.',
  NO_AUTHOR_KEY: 'The author\'s key is not verified, so a private reply cannot be encrypted to it. Reply to the list instead.',
} as const;

export type ExtensionErrorCode = keyof typeof EXTENSION_ERRORS;

export interface ErrorView {
  code: string;
  message: string;
}

export class ExtensionError extends Error {
  constructor(readonly code: ExtensionErrorCode | string, message?: string) {
    super(message ?? (EXTENSION_ERRORS as Record<string, string>)[code] ?? code);
    this.name = 'ExtensionError';
  }
}

export function refuse(code: ExtensionErrorCode, detail?: string): never {
  // Bad input: the detail says what to fix, so it leads the sentence.
  if (detail && code === 'BAD_INPUT') throw new ExtensionError(code, `Check what you entered: ${detail}.`);
  throw new ExtensionError(code, detail ? `${EXTENSION_ERRORS[code]} (${detail})` : EXTENSION_ERRORS[code]);
}

/** Turns anything thrown into a code and a sentence safe to show and to log (never content). */
export function toErrorView(e: unknown): ErrorView {
  if (e instanceof ExtensionError) return { code: e.code, message: e.message };
  if (isLetterlockError(e)) return { code: e.code, message: ERROR_MESSAGES[e.code] };
  return { code: 'INTERNAL', message: EXTENSION_ERRORS.INTERNAL };
}
