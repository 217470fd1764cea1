// `letterlock init`: creates the data folder, or checks a re-run against what is stored.
// A re-run with options that differ from letterlock.json is refused (exit 1) rather
// than applied: the file may have been edited by hand since, and silently rewriting
// ports or the relay of a running deployment is worse than one clear refusal.

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE, type Config, parseConfig } from '../../config/config.ts';
import { defaultSecretFile, SECRET_ENV } from '../../config/secret.ts';
import { dataDirOf, globals } from '../context.ts';
import { init } from '../init.ts';
import { CliError, emit, EXIT } from '../output.ts';
import { portArg, relayArg } from './args.ts';

interface InitOpts { smtpPort?: number; httpPort?: number; relay?: string; secretFile?: string; database?: string }

/** Each given option that differs from the stored config, with how to change it. */
function differences(stored: Config, o: InitOpts): string[] {
  const out: string[] = [];
  if (o.smtpPort !== undefined && stored.smtp.port !== o.smtpPort) out.push(`smtp.port is ${stored.smtp.port}, not ${o.smtpPort}`);
  if (o.httpPort !== undefined && stored.http.port !== o.httpPort) out.push(`http.port is ${stored.http.port}, not ${o.httpPort}`);
  if (o.relay !== undefined && stored.relay !== o.relay) out.push(`relay is ${stored.relay ?? '(none: local Maildir)'}, not ${o.relay}`);
  if (o.secretFile !== undefined && resolve(stored.secretFile ?? '') !== resolve(o.secretFile)) {
    out.push(`secretFile is ${stored.secretFile ?? '(default)'}, not ${o.secretFile}`);
  }
  // Never print the URL: it may carry a password.
  if (o.database !== undefined && stored.database !== o.database) out.push('database differs from the one in letterlock.json');
  return out;
}

export function register(program: Command): void {
  program.command('init')
    .description('create the data folder: database, letterlock.json and the server secret')
    .option('--smtp-port <n>', 'SMTP ingest port (default 2525)', portArg)
    .option('--http-port <n>', 'HTTP API port (default 8025)', portArg)
    .option('--relay <url>', 'outbound SMTP relay, smtp://host:port (default: a local Maildir)', relayArg)
    .option('--secret-file <path>', 'where the server secret lives (default DATA/secret, mode 0600)')
    .option('--database <url>', 'postgres://user@host/db to share one PostgreSQL between nodes (default: DATA/letterlock.db, SQLite)')
    .addHelpText('after', `
Running init again on an initialized folder checks it; options that differ from
letterlock.json are refused (exit 1): edit letterlock.json, or use the
LETTERLOCK_SMTP_PORT / LETTERLOCK_HTTP_PORT / LETTERLOCK_RELAY overrides.

--json prints {"dataDir", "created", "secretSource", "secretFile", "smtpPort", "httpPort", "relay"}.

Examples:
  letterlock init --data /var/lib/letterlock
  letterlock init --smtp-port 2525 --http-port 8025 --relay smtp://127.0.0.1:25
  letterlock init --database postgres://letterlock@db.example.org/letterlock   (each node; same secret)`)
    .action(async (o: InitOpts, cmd: Command) => {
      const dataDir = dataDirOf(cmd);
      const configPath = join(dataDir, CONFIG_FILE);
      if (existsSync(configPath)) {
        let raw: unknown;
        try {
          raw = JSON.parse(readFileSync(configPath, 'utf8'));
        } catch {
          throw new CliError(`${configPath} is not valid JSON: fix or remove it`);
        }
        const diff = differences(parseConfig(raw, configPath), o);
        if (diff.length) {
          throw new CliError(`${dataDir} is already initialized and ${diff.join('; ')}: edit ${configPath} to change it (or use LETTERLOCK_SMTP_PORT, LETTERLOCK_HTTP_PORT, LETTERLOCK_RELAY), then restart the server`, EXIT.REFUSED);
        }
      }
      const config: Record<string, unknown> = {};
      if (o.smtpPort !== undefined) config.smtp = { port: o.smtpPort };
      if (o.httpPort !== undefined) config.http = { port: o.httpPort };
      if (o.relay !== undefined) config.relay = o.relay;
      if (o.secretFile !== undefined) config.secretFile = o.secretFile;
      if (o.database !== undefined) config.database = o.database;
      const r = await init({ dataDir, config });
      const stored = parseConfig(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
      const secretFile = resolve(stored.secretFile ?? defaultSecretFile(dataDir));
      const fromEnv = Boolean(process.env[SECRET_ENV]);
      const d = `--data ${dataDir}`;
      emit(globals(cmd), {
        dataDir, created: r.created, secretSource: fromEnv ? 'env' : 'file', secretFile: fromEnv ? null : secretFile,
        smtpPort: stored.smtp.port, httpPort: stored.http.port, relay: stored.relay ?? null,
      }, () => [
        r.created ? `initialized ${dataDir}` : r.joined ? `initialized ${dataDir} on the existing database (another node's; the secret matches)` : `${dataDir} was already initialized (nothing changed)`,
        `server secret: ${r.secretSource}`,
        ...(r.created ? [
          '',
          fromEnv
            ? `WARNING: back up the server secret (${SECRET_ENV}) somewhere safe, apart from this folder: without it the list and archive keys cannot be unlocked, and nothing can recover them.`
            : `WARNING: back up the server secret ${secretFile} somewhere safe, apart from this folder: without it the list and archive keys cannot be unlocked, and nothing can recover them.`,
          '',
          'Next steps:',
          `  letterlock list create news@lists.example.org --owner you@example.org ${d}`,
          `  letterlock member add news@lists.example.org ann@example.org ann.asc ${d}`,
          `  letterlock serve ${d}`,
          `Then route mail for the list domain to SMTP ${stored.smtp.host}:${stored.smtp.port} (see the README's deployment notes).`,
        ] : []),
      ].join('\n'));
    });
}
