// States and errors in words a person can act on. Pages show these, never raw codes
// (the codes stay in data-test-state for tests and in the background's answers).

import { BusError } from '../../ask.ts';
import type { ListState } from '../../messages.ts';

export interface StateWords {
  /** A short label for the state. */
  label: string;
  /** What happens next, or what the user should do. */
  next: string;
  tone: 'good' | 'wait' | 'neutral';
}

const LIST_STATES: Record<ListState, StateWords> = {
  pinned: { label: 'List key confirmed', next: 'Choose how mail reaches you, then subscribe.', tone: 'neutral' },
  'confirmation-sent': { label: 'Waiting for your confirmation', next: 'Open the confirmation mail from the list in your webmail and click "Confirm subscription".', tone: 'wait' },
  'pending-approval': { label: 'Waiting for the list owner', next: 'The list owner approves new members; you get mail from the list once they do.', tone: 'wait' },
  member: { label: 'Subscribed', next: 'You can read and write to this list.', tone: 'good' },
};

export function listStateWords(state: ListState | string): StateWords {
  return (LIST_STATES as Record<string, StateWords>)[state] ?? { label: 'Unknown state', next: 'Remove the list and add it again.', tone: 'neutral' };
}

/**
 * The next step for each code the background or the list server can answer with,
 * added to the sentence it already carries when that sentence does not say what to do.
 */
const NEXT_STEP: Record<string, string> = {
  LOCKED: '',
  NO_KEY: '',
  FORBIDDEN: 'Open Letterlock from its toolbar button or its options page and try again there.',
  BAD_INPUT: '',
  INTERNAL: 'If it happens again, reload this page.',
  SERVER_UNREACHABLE: '',
  SERVER_ERROR: 'Try again in a few minutes; if it keeps happening, tell the list owner.',
  SERVER_BAD_ANSWER: 'Check the server address; if it is right, tell the list owner.',
  NOT_FOUND: 'Check the list address and the server address, or ask the list owner for a join link.',
  RATE_LIMITED: '',
  KEY_PASSPHRASE_WRONG: 'Check the passphrase (it is case-sensitive) and try again.',
  KEY_UNREADABLE: '',
  KEY_NOT_PRIVATE: 'Export the private key (secret key) from your OpenPGP program, protected by its passphrase.',
  KEY_USERID_MISMATCH: 'Use a key whose user ID holds this address.',
  SIGNATURE_INVALID: 'Your key may have changed or expired; check your keys in the options.',
  CONFLICT: 'Reload the page and try again.',
  UNAUTHORIZED: 'Sign in again.',
  TOKEN_INVALID: 'Ask the list for a new confirmation mail by subscribing again.',
};

/** A caught error as one sentence that says what happened and what to do. */
export function explain(e: unknown): string {
  if (e instanceof BusError) {
    const next = NEXT_STEP[e.code];
    return next && !e.message.includes(next) ? `${e.message} ${next}` : e.message;
  }
  // Plain errors are thrown only by our own pages, with sentences written for people.
  if (e instanceof Error && e.name === 'Error') return e.message;
  return 'Something went wrong inside Letterlock. Try again; if it happens again, reload this page.';
}

/** A key's expiry in words, with a warning level. */
export function expiryWords(expires: string | null, now = Date.now()): { text: string; level: 'none' | 'soon' | 'expired' | 'ok' } {
  if (!expires) return { text: 'Never expires', level: 'none' };
  const t = Date.parse(expires);
  const days = Math.floor((t - now) / 86_400_000);
  const date = new Date(t).toLocaleDateString();
  if (t <= now) return { text: `Expired on ${date}. Renew it to keep using it.`, level: 'expired' };
  if (days < 60) return { text: `Expires on ${date} (in ${days} day${days === 1 ? '' : 's'}). Renew it soon.`, level: 'soon' };
  return { text: `Expires on ${date}`, level: 'ok' };
}

/** Why a post was held, in words (server/pipeline/decide.ts reason codes); unknown codes are named as they are. */
export function heldReasonWords(reason: string): string {
  const words: Record<string, string> = {
    moderated: 'the list is moderated: every post waits for a moderator',
  };
  return words[reason] ?? `of the list's rules (${reason.replace(/[^\w.-]/g, '').slice(0, 40)})`;
}

/** Joining a list from its join page or a bare address (options join step, popup). */
export const joinWords = {
  notFoundAtGuess: (address: string, server: string) =>
    `No Letterlock list ${address} answered at ${server}, the list address's own domain. Paste the list's join link instead: its join page shows it, and the list owner finds it with "letterlock list show".`,
  offer: (name: string) => `Join ${name}`,
  offerAt: (address: string, host: string) => `${address}, on the list server ${host}. Letterlock shows the list key's fingerprint to compare before you join.`,
};

/**
 * A refused moderator sign-in. The server does not say whether the key or the role was
 * wrong (it does not tell who moderates); most people who meet this are simply not
 * moderators, so the words say that first instead of blaming their key.
 */
export function moderatorSignInWords(e: unknown, list: string): string {
  if (e instanceof BusError && e.code === 'SIGNATURE_INVALID') {
    return `Letterlock could not sign you in as a moderator of ${list}. Only the list owner and its moderators see held posts. If you are one, ask the list owner to check that your address and this key are registered as moderator.`;
  }
  return explain(e);
}
