// `letterlock backup` and `letterlock restore` (the logic is server/ops/backup.ts).

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { backup, BackupError, restore } from '../../ops/backup.ts';
import { dataDirOf, globals } from '../context.ts';
import { CliError, emit, EXIT, size } from '../output.ts';

/** The operator's public key when --to is not given. */
export const BACKUP_KEY_ENV = 'LETTERLOCK_BACKUP_KEY';
/** The passphrase of the operator's secret key when --passphrase-file is not given. */
export const PASSPHRASE_ENV = 'LETTERLOCK_KEY_PASSPHRASE';

function cliError(e: unknown): unknown {
  if (!(e instanceof BackupError)) return e;
  return new CliError(e.message, e.code === 'NOT_INITIALIZED' ? EXIT.UNREACHABLE : EXIT.REFUSED, e.code);
}

function passphrase(file: string | undefined): string | undefined {
  if (file !== undefined) {
    try {
      // The first line, as gpg --passphrase-file reads it.
      return readFileSync(file, 'utf8').split(/\r?\n/, 1)[0]!;
    } catch (e) {
      throw new CliError(`cannot read the passphrase file ${file} (${(e as { code?: string }).code ?? 'error'})`);
    }
  }
  return process.env[PASSPHRASE_ENV] || undefined;
}

export function register(program: Command): void {
  program.command('backup').description('write an encrypted backup of the data folder (the server may keep running)')
    .option('--to <keyfile>', `the operator's OpenPGP public key to encrypt to (else $${BACKUP_KEY_ENV})`)
    .option('--out <file>', 'where to write (default ./letterlock-backup-<UTC time>.pgp; never overwritten)')
    .addHelpText('after', `
The backup is one OpenPGP message to your key holding a tar of the database (a
consistent copy made with SQLite's online backup API), letterlock.json and the
secret file. Without Letterlock:  gpg --decrypt FILE | tar -x
Logs, the demo Maildir and the admin token are not included.
--json prints {"file", "bytes", "dbBytes", "schemaVersion", "recipient", "files", "notes"}.

Examples:
  gpg --export --armor ops@example.org > ops.asc
  letterlock backup --data /var/lib/letterlock --to ops.asc --out /srv/backups/letterlock-$(date +%F).pgp`)
    .action(async (o: { to?: string; out?: string }, cmd: Command) => {
      const to = o.to ?? process.env[BACKUP_KEY_ENV];
      if (!to) throw new CliError(`backup needs the operator's public key: --to KEYFILE (or $${BACKUP_KEY_ENV})`, EXIT.USAGE, 'USAGE');
      const r = await backup({ dataDir: dataDirOf(cmd), to, ...(o.out ? { out: o.out } : {}) }).catch((e: unknown) => { throw cliError(e); });
      emit(globals(cmd), r, () => [
        `backup written: ${r.file} (${size(r.bytes)}, encrypted to ${r.recipient})`,
        `contains: ${r.files.join(', ')} (database schema ${r.schemaVersion}, ${size(r.dbBytes)})`,
        ...r.notes.map((n) => `note: ${n}`),
        'Keep it away from this machine. Restore with: letterlock restore FILE --key YOUR-SECRET-KEY --data NEW-FOLDER',
      ].join('\n'));
    });

  program.command('restore').description('restore a backup into a data folder (new or empty, or --force)')
    .argument('<file>', 'the backup file')
    .requiredOption('--key <keyfile>', 'the operator\'s OpenPGP secret key the backup was encrypted to')
    .option('--passphrase-file <file>', `the key's passphrase, first line (else $${PASSPHRASE_ENV})`)
    .option('--force', 'replace the database, config and secret of a folder that is not empty (stop its server first)')
    .addHelpText('after', `
The backup is decrypted and checked before anything is written: the key, the
ciphertext's integrity, each file's checksum, SQLite's integrity check, and the
schema version (a backup from a newer Letterlock is refused; an older one is
migrated forward). The folder given with --data is the target.
--json prints {"dataDir", "createdAt", "schemaFrom", "schemaTo", "files", "notes"}.

Examples:
  gpg --export-secret-keys --armor ops@example.org > ops-secret.asc
  letterlock restore letterlock-2026-12-01.pgp --key ops-secret.asc --passphrase-file pass.txt --data /var/lib/letterlock`)
    .action(async (file: string, o: { key: string; passphraseFile?: string; force?: boolean }, cmd: Command) => {
      const dataDir = dataDirOf(cmd);
      const pass = passphrase(o.passphraseFile);
      const r = await restore({ file, key: o.key, dataDir, force: o.force === true, ...(pass !== undefined ? { passphrase: pass } : {}) })
        .catch((e: unknown) => { throw cliError(e); });
      emit(globals(cmd), r, () => [
        `restored ${r.dataDir} from the backup of ${r.createdAt} (${r.files.join(', ')})`,
        r.schemaFrom === r.schemaTo ? `database schema ${r.schemaTo}` : `database schema ${r.schemaFrom}, migrated to ${r.schemaTo}`,
        ...r.notes.map((n) => `note: ${n}`),
        `Start it with: letterlock serve --data ${r.dataDir}`,
      ].join('\n'));
    });
}
