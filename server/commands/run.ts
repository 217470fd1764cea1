// Runs the commands of one authenticated request (its signature by the member's
// registered key already holds) and writes the answer's text and attachment.
// Answers go back only to that member, encrypted to their key.

import * as openpgp from 'openpgp';
import { ERROR_MESSAGES, isLetterlockError } from '../../shared/index.ts';
import { registerMember } from '../lists/members.ts';
import type { Sql } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import { getMember, iterateMembers, memberAddressByFingerprint, type MemberRecord, removeMember } from '../store/members.ts';
import { deletePendingMember, deleteSessions, setDeliveryPreference } from '../store/registry.ts';
import type { RequestContent } from './content.ts';
import type { Command, ParsedCommands } from './parse.ts';
import { MAX_COMMANDS } from './parse.ts';

/** Bounds on what one answer carries, so a large list cannot make an answer huge. */
export const MAX_LISTED_MEMBERS = 5000;
export const MAX_FETCHED_KEYS = 1000;
export const MAX_KEY_BYTES = 1024 * 1024; // signing and encrypting such an answer (with 5,000 member lines) took 65-100 ms on the event loop here

export interface Answer {
  lines: string[];
  /** Armored public keys, one after another (gpg --import reads them all). */
  keys: string[];
  /** Keys the answer is encrypted to: the registered key, and after x-replace-key the old one too. */
  recipients: string[];
  /** Codes of what was done, for the log. */
  done: Array<'UNSUBSCRIBED' | 'KEY_REPLACED' | 'DELIVERY_CHANGED'>;
}

export function requestAddressOf(listAddress: string): string {
  const at = listAddress.lastIndexOf('@');
  return `${listAddress.slice(0, at)}-request${listAddress.slice(at)}`;
}

export function helpLines(listAddress: string): string[] {
  return [
    `Commands for ${listAddress}, sent to ${requestAddressOf(listAddress)}:`,
    '',
    'Write each command on its own line at the top of the message; the first other',
    'line ends the commands. Upper or lower case, at most ' + MAX_COMMANDS + ' commands; if one',
    'is not understood, none runs. Sign the message with your registered key and',
    'encrypt it to the list key.',
    '',
    '  x-list-members          the members: address and key fingerprint',
    '  x-fetch-key ADDRESS     one member\'s public key (an address or fingerprint)',
    '  x-fetch-keys            every member\'s public key',
    '  x-delivery pgp-mime     receive posts as PGP/MIME (mail clients)',
    '  x-delivery inline       receive posts as inline PGP (webmail)',
    '  x-replace-key           register a new key: attach it, or paste its armored',
    '                          block below the commands; sign with your CURRENT key',
    '  x-unsubscribe           leave the list',
    '  x-help                  this text',
    `  x-list-name ADDRESS     optional: run only if ADDRESS is ${listAddress}`,
    '',
    'Keys come back as an attachment (keys.asc) that gpg --import reads.',
  ];
}

function fingerprintOf(target: string): string | null {
  const hex = target.replace(/\s+/g, '').toUpperCase().replace(/^0X/, '');
  return /^[0-9A-F]{40}$|^[0-9A-F]{64}$/.test(hex) ? hex : null;
}

async function findTarget(sql: Sql, list: ListRecord, target: string): Promise<MemberRecord | null> {
  const fpr = fingerprintOf(target);
  if (fpr) {
    const address = await memberAddressByFingerprint(sql, list.id, fpr);
    return address ? await getMember(sql, list.id, address) : null;
  }
  return target.length <= 254 ? await getMember(sql, list.id, target.replace(/^<|>$/g, '')) : null;
}

async function armoredKey(key: string | Uint8Array): Promise<string> {
  if (typeof key === 'string') return key;
  return (await openpgp.readKey({ binaryKey: key })).armor();
}

function codeSentence(e: unknown): string {
  return isLetterlockError(e) ? `${e.code}: ${ERROR_MESSAGES[e.code]}` : 'KEY_UNREADABLE: ' + ERROR_MESSAGES.KEY_UNREADABLE;
}

/**
 * Executes the commands in order. After x-unsubscribe nothing else runs (the
 * requester is no longer a member); the answer still reaches them.
 */
export async function runCommands(sql: Sql, list: ListRecord, member: MemberRecord, parsed: ParsedCommands, content: RequestContent, now: Date): Promise<Answer> {
  const answer: Answer = { lines: [], keys: [], recipients: [member.publicKey], done: [] };
  const out = (...l: string[]) => answer.lines.push(...l);
  let keyBytes = 0;
  const attached = new Set<string>(); // fingerprints
  const addKey = (m: MemberRecord): boolean => {
    if (attached.has(m.fingerprint)) return true;
    if (answer.keys.length >= MAX_FETCHED_KEYS || keyBytes + m.publicKey.length > MAX_KEY_BYTES) return false;
    answer.keys.push(m.publicKey);
    attached.add(m.fingerprint);
    keyBytes += m.publicKey.length;
    return true;
  };

  if (parsed.tooMany) {
    out(`More than ${MAX_COMMANDS} commands in one message: none of them was run. Send them in several messages.`, '');
    return answer;
  }
  const wrongList = parsed.commands.filter((c) => c.name === 'list-name' && c.address !== list.address && c.address !== requestAddressOf(list.address));
  if (parsed.errors.length > 0 || wrongList.length > 0) {
    for (const e of parsed.errors) out(`> ${e.line}`, `Not understood: ${e.problem}.`, '');
    if (wrongList.length > 0) out(`x-list-name names another list than ${list.address}.`, '');
    out('None of the commands in your message was run. Send x-help for the list of commands.', '');
    return answer;
  }
  if (parsed.commands.length === 0 && parsed.errors.length === 0) out('No command was found at the top of your message.', '', ...helpLines(list.address), '');

  let current = member;
  for (const c of parsed.commands as Command[]) {
    switch (c.name) {
      case 'help':
        out('> x-help', ...helpLines(list.address), '');
        break;
      case 'list-members': {
        out('> x-list-members');
        let n = 0;
        let more = false;
        for await (const page of iterateMembers(sql, list.id, 500)) {
          for (const m of page) {
            if (n >= MAX_LISTED_MEMBERS) { more = true; break; }
            out(`${m.address} ${m.fingerprint}${m.keyState === 'valid' ? '' : ` (${m.keyState})`}`);
            n++;
          }
          if (more) break;
        }
        out(more ? `(the first ${n} members; there are more)` : `(${n} member${n === 1 ? '' : 's'})`, '');
        break;
      }
      case 'fetch-key': {
        out(`> x-fetch-key ${c.target.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)}`);
        const m = await findTarget(sql, list, c.target);
        if (!m) out('No member of this list has that address or fingerprint.', '');
        else if (addKey(m)) out(`The key of ${m.address} (${m.fingerprint}) is attached.`, '');
        else out('This answer is full; fetch that key in another request.', '');
        break;
      }
      case 'fetch-keys': {
        out('> x-fetch-keys');
        let n = 0;
        let full = false;
        for await (const page of iterateMembers(sql, list.id, 500)) {
          for (const m of page) {
            if (!addKey(m)) { full = true; break; }
            n++;
          }
          if (full) break;
        }
        out(full ? `${n} keys are attached; the answer is full, fetch the others with x-fetch-key.` : `${n} key${n === 1 ? ' is' : 's are'} attached (keys.asc).`, '');
        break;
      }
      case 'delivery':
        out(`> x-delivery ${c.form}`);
        await setDeliveryPreference(sql, list.id, current.address, c.form);
        answer.done.push('DELIVERY_CHANGED');
        out(`Posts now reach you as ${c.form === 'inline' ? 'inline PGP' : 'PGP/MIME'}.`, '');
        break;
      case 'replace-key': {
        out('> x-replace-key');
        if (content.keys.length !== 1) {
          out(content.keys.length === 0 ? 'No public key was found: attach it, or paste its armored block below the commands.' : 'More than one key was found: send exactly one.', '');
          break;
        }
        try {
          const armored = await armoredKey(content.keys[0]!);
          const before = current;
          const { record, revoked } = await registerMember(sql, list.id, current.address, armored, now);
          if (revoked) {
            out('That is the revocation of your current key: it is recorded, and posts can no longer reach you until you register a new key.', '');
          } else {
            if (before.fingerprint !== record.fingerprint) await deleteSessions(sql, list.id, current.address);
            out(`Your key is now ${record.fingerprint}.`, '');
            answer.done.push('KEY_REPLACED');
          }
          current = record;
          if (revoked) break;
          // Both keys can read this answer: the one that asked and the one now registered.
          if (!answer.recipients.includes(record.publicKey)) answer.recipients.push(record.publicKey);
        } catch (e) {
          out(`The key was not registered. ${codeSentence(e)}`, '');
        }
        break;
      }
      case 'list-name':
        break; // checked above
      case 'unsubscribe':
        out('> x-unsubscribe');
        await removeMember(sql, list.id, current.address);
        await deleteSessions(sql, list.id, current.address);
        await deletePendingMember(sql, list.id, current.address);
        answer.done.push('UNSUBSCRIBED');
        out(`You have left ${list.address}. This is the last mail you receive from it.`, '');
        return answer;
    }
  }
  return answer;
}
