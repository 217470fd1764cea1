// `letterlock member ...`: add (the key policy applies), remove, list, import.

import type { Command } from 'commander';
import * as openpgp from 'openpgp';
import { registerMember, type RegisteredKey } from '../../lists/members.ts';
import type { Sql } from '../../store/db.ts';
import { getMember, iterateMembers, removeMember, type MemberRecord } from '../../store/members.ts';
import { globals, needList, withStore } from '../context.ts';
import { SECRET_KEY_REFUSAL, readPublicKeyFile } from '../keyfile.ts';
import { IMPORT_REASONS, ImportSourceError, readImportSource, type ImportFormat, type ImportReason } from '../import.ts';
import { CliError, date, emit, EXIT, iso, note, plural, table } from '../output.ts';
import { startProgress } from '../progress.ts';
import { addressArg, oneOf } from './args.ts';
import { ERROR_MESSAGES, isLetterlockError } from '../../../shared/index.ts';

export type AddResult = 'added' | 'already-member' | 'updated' | 'replaced' | 'revocation-recorded';

/**
 * Registers one member and says what happened. A secret key is refused before
 * the key policy runs (parsePublicKey would quietly keep its public half).
 */
export async function addMember(sql: Sql, listId: number, address: string, armored: string): Promise<{ result: AddResult; r: RegisteredKey; before: MemberRecord | null }> {
  const key = await openpgp.readKey({ armoredKey: armored }).catch(() => null);
  if (key?.isPrivate()) throw new CliError(`the key for ${address} ${SECRET_KEY_REFUSAL}`, EXIT.REFUSED, 'SECRET_KEY');
  const before = await getMember(sql, listId, address);
  const r = await registerMember(sql, listId, address, armored);
  let result: AddResult = 'added';
  if (r.revoked) result = 'revocation-recorded';
  else if (before && before.fingerprint !== r.record.fingerprint) result = 'replaced';
  else if (before && before.publicKey === r.record.publicKey && before.keyState === r.record.keyState) result = 'already-member';
  else if (before) result = 'updated';
  return { result, r, before };
}

/** A refusal's sentence: the key policy's own words, or the import's. */
function reasonText(code: string): string {
  return (ERROR_MESSAGES as Record<string, string>)[code] ?? (IMPORT_REASONS as Record<string, string>)[code] ?? code;
}

interface ImportSummary {
  list: string;
  file: string;
  format: ImportFormat;
  entries: number;
  imported: number;
  results: Record<AddResult, number>;
  refused: number;
  /** By reason code: its sentence and the entries it hit. */
  reasons: Record<string, { message: string; count: number; entries: Array<{ where: string; address: string | null }> }>;
}

const RESULT_WORDS: Record<AddResult, string> = {
  'added': 'added', 'already-member': 'already members', 'updated': 'keys updated', 'replaced': 'keys replaced', 'revocation-recorded': 'revocations recorded',
};

function summaryText(s: ImportSummary): string {
  const parts = (Object.keys(RESULT_WORDS) as AddResult[]).filter((k) => s.results[k] > 0).map((k) => `${s.results[k]} ${RESULT_WORDS[k]}`);
  const lines = [`imported ${s.imported} of ${plural(s.entries, 'entry', 'entries')} into ${s.list}${parts.length ? `: ${parts.join(', ')}` : ''}`];
  const codes = Object.keys(s.reasons);
  if (codes.length) {
    lines.push(`refused ${s.refused}${s.reasons.DUPLICATE ? ` (and ${s.reasons.DUPLICATE.count} skipped)` : ''}, by reason:`);
    for (const code of codes.sort((a, b) => s.reasons[b]!.count - s.reasons[a]!.count)) {
      const r = s.reasons[code]!;
      lines.push(`  ${r.count} × ${code}: ${r.message}`);
      const shown = r.entries.slice(0, 10).map((e) => `${e.where}${e.address ? ` (${e.address})` : ''}`);
      lines.push(`      ${shown.join(', ')}${r.entries.length > 10 ? `, and ${r.entries.length - 10} more` : ''}`);
    }
  }
  return lines.join('\n');
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

  member.command('add').description("add a member with their public key (or update the member's key)")
    .argument('<list>', 'the list address').argument('<address>', "the member's address", addressArg).argument('<keyfile>', 'their armored public key')
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
      const armored = readPublicKeyFile(file);
      await withStore(cmd, async ({ sql }) => {
        const l = await needList(sql, listAddr);
        const { result, r, before } = await addMember(sql, l.id, address, armored);
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

  member.command('import <list> <file>').description('add many members from a keyring, a CSV or an mbox of key mails')
    .option('--format <format>', 'keyring, csv or mbox (default: detected from the content)', oneOf(['keyring', 'csv', 'mbox'] as const))
    .addHelpText('after', `
FILE is one of:
  keyring  armored public keys (gpg --export --armor > keys.asc): each key joins
           under the email address of its primary user ID
  csv      one member a line: address,keyfile (relative to the CSV's folder) or
           address,"-----BEGIN PGP PUBLIC KEY BLOCK-----..." (quoted); a header
           row "address,key" is skipped
  mbox     mails carrying keys: application/pgp-keys attachments, armored key blocks
           in the text (joining under the mail's From address) and Autocrypt headers
           (under their addr=); for one address the latest mail wins
The key policy applies to each key; secret keys are refused. At most 64 MB and
50,000 entries. Progress goes to stderr (a bar on a terminal), then a summary of
what was imported and what was refused, by reason.

Exit code: 0 when every entry was imported (or already there), 1 when any was refused.
--json prints {"list", "file", "format", "entries", "imported", "results": {"added",
"already-member", "updated", "replaced", "revocation-recorded"}, "refused",
"reasons": {CODE: {"message", "count", "entries": [{"where", "address"}]}}}.

Examples:
  gpg --export --armor > keys.asc && letterlock member import news@lists.example.org keys.asc
  letterlock member import news@lists.example.org members.csv
  letterlock member import news@lists.example.org --format mbox key-mails.mbox`)
    .action(async (listAddr: string, file: string, o: { format?: ImportFormat }, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const l = await needList(sql, listAddr);
      let source;
      try {
        source = await readImportSource(file, o.format);
      } catch (e) {
        if (e instanceof ImportSourceError) throw new CliError(`${file}: ${e.message}`);
        throw e;
      }
      const s: ImportSummary = {
        list: l.address, file, format: source.format, entries: source.entries.length, imported: 0,
        results: { 'added': 0, 'already-member': 0, 'updated': 0, 'replaced': 0, 'revocation-recorded': 0 }, refused: 0, reasons: {},
      };
      const refuse = (code: string, where: string, address: string | null) => {
        const r = (s.reasons[code] ??= { message: reasonText(code), count: 0, entries: [] });
        r.count++;
        r.entries.push({ where, address });
        if (code !== 'DUPLICATE') s.refused++;
      };
      const bar = startProgress(`importing into ${l.address}`, source.entries.length);
      try {
        for (const e of source.entries) {
          if (e.refused || !e.armored || !e.address) refuse(e.refused ?? 'NO_KEY', e.where, e.address);
          else {
            try {
              const { result } = await addMember(sql, l.id, e.address, e.armored);
              s.results[result]++;
              s.imported++;
            } catch (err) {
              if (isLetterlockError(err)) refuse(err.code, e.where, e.address);
              else if (err instanceof CliError && err.code === 'SECRET_KEY') refuse('SECRET_KEY' satisfies ImportReason, e.where, e.address);
              else throw err;
            }
          }
          bar.tick();
        }
      } finally {
        bar.stop();
      }
      emit(globals(cmd), s, () => summaryText(s));
      if (s.refused > 0) process.exitCode = EXIT.REFUSED;
    }));

  member.command('remove <list> <address>').description('remove a member (they lose archive access too)')
    .addHelpText('after', '\n--json prints {"list", "address", "removed": true}. Removing a non-member is refused (exit 1).')
    .action(async (listAddr: string, address: string, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const l = await needList(sql, listAddr);
      const addr = address.trim().toLowerCase();
      if (!await removeMember(sql, l.id, addr)) throw new CliError(`${addr} is not a member of ${l.address}`);
      emit(globals(cmd), { list: l.address, address: addr, removed: true }, () => `removed ${addr} from ${l.address}`);
    }));

  member.command('list <list>').description('members with their key fingerprint and expiry')
    .addHelpText('after', '\n--json prints [{"address", "fingerprint", "expires", "state"}], state being valid, expired or revoked.')
    .action(async (listAddr: string, _o: unknown, cmd: Command) => withStore(cmd, async ({ sql }) => {
      const l = await needList(sql, listAddr);
      const g = globals(cmd);
      const rows: Array<{ address: string; fingerprint: string; expires: string | null; state: string }> = [];
      const human: string[][] = [];
      for await (const page of iterateMembers(sql, l.id)) {
        for (const m of page) {
          const state = memberState(m);
          rows.push({ address: m.address, fingerprint: m.fingerprint, expires: iso(m.expiresAt), state });
          human.push([m.address, m.fingerprint, m.expiresAt ? date(m.expiresAt) : 'never', state === 'valid' ? '' : state.toUpperCase()]);
        }
      }
      if (rows.length === 0) note(g, `No members in ${l.address} yet.`);
      emit(g, rows, () => (rows.length ? table(human, ['ADDRESS', 'FINGERPRINT', 'EXPIRES', 'STATE']) : ''));
    }));
}
