// `letterlock member ...`: add (the key policy applies), remove, list, import.

import type { Command } from 'commander';
import * as openpgp from 'openpgp';
import { registerMember, type RegisteredKey } from '../../lists/members.ts';
import type { Db } from '../../store/db.ts';
import { getMember, iterateMembers, removeMember, type MemberRecord } from '../../store/members.ts';
import { globals, needList, withStore } from '../context.ts';
import { SECRET_KEY_REFUSAL, readPublicKeyFile } from '../keyfile.ts';
import { CliError, date, emit, EXIT, iso, note, table } from '../output.ts';
import { addressArg } from './args.ts';

export type AddResult = 'added' | 'already-member' | 'updated' | 'replaced' | 'revocation-recorded';

/**
 * Registers one member and says what happened. A secret key is refused before
 * the key policy runs (parsePublicKey would quietly keep its public half).
 */
export async function addMember(db: Db, listId: number, address: string, armored: string): Promise<{ result: AddResult; r: RegisteredKey; before: MemberRecord | null }> {
  const key = await openpgp.readKey({ armoredKey: armored }).catch(() => null);
  if (key?.isPrivate()) throw new CliError(`the key for ${address} ${SECRET_KEY_REFUSAL}`, EXIT.REFUSED, 'SECRET_KEY');
  const before = getMember(db, listId, address);
  const r = await registerMember(db, listId, address, armored);
  let result: AddResult = 'added';
  if (r.revoked) result = 'revocation-recorded';
  else if (before && before.fingerprint !== r.record.fingerprint) result = 'replaced';
  else if (before && before.publicKey === r.record.publicKey && before.keyState === r.record.keyState) result = 'already-member';
  else if (before) result = 'updated';
  return { result, r, before };
}

function memberState(m: MemberRecord): 'valid' | 'revoked' | 'expired' {
  if (m.keyState === 'revoked') return 'revoked';
  return m.expiresAt && m.expiresAt < Date.now() ? 'expired' : 'valid';
}

export function register(program: Command): void {
  const member = program.command('member').description("add, remove, list and import a list's members")
    .addHelpText('after', `
A member is an address with a public OpenPGP key. The key policy applies: the key
must hold the member's address in a user ID, be able to encrypt, be current (not
expired or revoked) and strong enough. Secret keys are refused.

Examples:
  letterlock member add news@lists.example.org ann@example.org ann.asc
  letterlock member list news@lists.example.org --json
  letterlock member remove news@lists.example.org ann@example.org
  letterlock member import news@lists.example.org keys.asc`);

  member.command('add <list> <address> <keyfile>').description("add a member with their public key (or update the member's key)")
    .addHelpText('after', `
Adding a member who already has this very key changes nothing and says so (exit 0);
a new key for the same address replaces the old one. A revocation of the member's
current key is recorded (the member then gets missed-message notices).

--json prints {"list", "address", "fingerprint", "expires", "result"} where result is
added, already-member, updated, replaced or revocation-recorded.

Example:
  gpg --export --armor ann@example.org > ann.asc
  letterlock member add news@lists.example.org ann@example.org ann.asc`)
    .action(async (listAddr: string, address: string, file: string, _o: unknown, cmd: Command) => {
      const addr = addressArg(address);
      const armored = readPublicKeyFile(file);
      await withStore(cmd, async ({ db }) => {
        const l = needList(db, listAddr);
        const { result, r, before } = await addMember(db, l.id, addr, armored);
        const expires = r.facts.expires ? ` (expires ${date(r.facts.expires)})` : '';
        emit(globals(cmd), { list: l.address, address: r.record.address, fingerprint: r.record.fingerprint, expires: iso(r.facts.expires), result }, () => {
          switch (result) {
            case 'revocation-recorded': return `recorded the revocation of ${r.record.fingerprint} for ${r.record.address}: it gets missed-message notices until a new key is added`;
            case 'already-member': return `${r.record.address} is already a member of ${l.address} with key ${r.record.fingerprint}: nothing changed`;
            case 'replaced': return `${r.record.address} is a member of ${l.address} with the new key ${r.facts.fingerprint}${expires} (replaced ${before!.fingerprint})`;
            case 'updated': return `${r.record.address} is a member of ${l.address} with key ${r.facts.fingerprint}${expires} (key updated)`;
            default: return `${r.record.address} is a member of ${l.address} with key ${r.facts.fingerprint}${expires}`;
          }
        });
      });
    });

  member.command('remove <list> <address>').description('remove a member (they lose archive access too)')
    .addHelpText('after', '\n--json prints {"list", "address", "removed": true}. Removing a non-member is refused (exit 1).')
    .action(async (listAddr: string, address: string, _o: unknown, cmd: Command) => withStore(cmd, ({ db }) => {
      const l = needList(db, listAddr);
      const addr = address.trim().toLowerCase();
      if (!removeMember(db, l.id, addr)) throw new CliError(`${addr} is not a member of ${l.address}`);
      emit(globals(cmd), { list: l.address, address: addr, removed: true }, () => `removed ${addr} from ${l.address}`);
    }));

  member.command('list <list>').description('members with their key fingerprint and expiry')
    .addHelpText('after', '\n--json prints [{"address", "fingerprint", "expires", "state"}], state being valid, expired or revoked.')
    .action(async (listAddr: string, _o: unknown, cmd: Command) => withStore(cmd, ({ db }) => {
      const l = needList(db, listAddr);
      const g = globals(cmd);
      const rows: Array<{ address: string; fingerprint: string; expires: string | null; state: string }> = [];
      const human: string[][] = [];
      for (const page of iterateMembers(db, l.id)) {
        for (const m of page) {
          const state = memberState(m);
          rows.push({ address: m.address, fingerprint: m.fingerprint, expires: iso(m.expiresAt), state });
          human.push([m.address, m.fingerprint, m.expiresAt ? date(m.expiresAt) : 'never', state === 'valid' ? '' : state.toUpperCase()]);
        }
      }
      if (rows.length === 0) note(g, `No members in ${l.address} yet.`);
      emit(g, rows, () => (rows.length ? table(human, ['ADDRESS', 'FINGERPRINT', 'EXPIRES', 'STATE']).replace(/ +$/gm, '') : ''));
    }));
}
