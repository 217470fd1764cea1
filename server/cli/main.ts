// The `letterlock` command line (commander). Each command group lives in
// commands/<group>.ts and registers itself here; output helpers and exit codes are
// in output.ts: 0 ok, 1 refused, 2 usage, 3 not reachable or not initialized.
// No stack trace reaches the operator unless --debug is given.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { z } from 'zod';
import { isLetterlockError } from '../../shared/index.ts';
import { StartError } from '../app.ts';
import { ConfigError } from '../config/config.ts';
import { UsageError } from '../lists/lists.ts';
import * as heldCommands from './commands/held.ts';
import * as initCommands from './commands/init.ts';
import * as listCommands from './commands/list.ts';
import * as mailmanCommands from './commands/mailman.ts';
import * as memberCommands from './commands/member.ts';
import * as queueCommands from './commands/queue.ts';
import * as serveCommands from './commands/serve.ts';
import * as statusCommands from './commands/status.ts';
import { CliError, EXIT } from './output.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function version(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('letterlock');
  program
    .description('Letterlock list server: encrypted mailing lists with working archives')
    .version(version(), '-V, --version', 'print the version')
    .option('--data <dir>', 'the data folder (else $LETTERLOCK_DATA, else ./letterlock-data)')
    .option('--json', 'print data as JSON (shapes are listed in each command\'s help)')
    .option('--debug', 'show stack traces of internal errors')
    .helpCommand('help [command]', 'help for a command, with examples')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      // Commander's own errors (unknown command or option, missing argument) as one line.
      outputError: (text, write) => {
        // One line: commander's "(Did you mean ...?)" goes on the same line, before the pointer to help.
        const [first = '', ...rest] = text.replace(/^error: /, '').trim().split('\n').map((l) => l.trim());
        write(`letterlock: ${[first, ...rest].join(' ')} (see: letterlock help)\n`);
      },
    })
    .addHelpText('after', `
The server secret is $LETTERLOCK_SECRET, else the secret file (mode 0600) named
in letterlock.json (default DATA/secret).

Exit codes: 0 ok, 1 refused, 2 usage error, 3 not reachable or not initialized.

Examples:
  letterlock init --data /var/lib/letterlock
  letterlock list create news@lists.example.org --owner ann@example.org --policy moderated
  letterlock member add news@lists.example.org bob@example.org bob.asc
  letterlock serve
  letterlock help member`);
  // Settings above are inherited by every command registered below.
  initCommands.register(program);
  listCommands.register(program);
  memberCommands.register(program);
  heldCommands.register(program);
  queueCommands.register(program);
  serveCommands.register(program);
  statusCommands.register(program);
  mailmanCommands.register(program);
  return program;
}

/** Maps any error to its one-line message and exit code. */
export function describeError(e: unknown): { message: string; exitCode: number } | null {
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  if (e instanceof StartError) return { message: e.message, exitCode: EXIT.UNREACHABLE };
  if (e instanceof ConfigError) return { message: e.message, exitCode: /not initialized|does not exist/.test(e.message) ? EXIT.UNREACHABLE : EXIT.REFUSED };
  if (e instanceof UsageError) return { message: e.message, exitCode: EXIT.REFUSED };
  if (isLetterlockError(e)) return { message: `${e.code}: ${e.message}`, exitCode: EXIT.REFUSED };
  if (e instanceof z.ZodError) return { message: `invalid argument: ${e.issues.map((i) => i.message).join('; ')}`, exitCode: EXIT.USAGE };
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const program = buildProgram();
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT.USAGE;
    }
    // `help member add`: commander's own help command goes one level deep only.
    const words = argv.filter((a) => !a.startsWith('-'));
    if (argv[0] === 'help' && words.length > 1) {
      let cmd: Command = program;
      for (const w of words.slice(1)) {
        const next = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
        if (!next) {
          process.stderr.write(`letterlock: unknown command '${words.slice(1).join(' ')}' (see: letterlock help)\n`);
          return EXIT.USAGE;
        }
        cmd = next;
      }
      cmd.outputHelp();
      return EXIT.OK;
    }
    await program.parseAsync(argv, { from: 'user' });
    // A command that printed its result may still end as refused (e.g. an import with refusals).
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version end here with 0; commander has already printed its error line.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return EXIT.USAGE;
    }
    const known = describeError(e);
    if (known) {
      process.stderr.write(`letterlock: ${known.message}\n`);
      if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
      return known.exitCode;
    }
    // A bug, not the operator's doing: name and message (CLI errors never carry post text), stack only with --debug.
    process.stderr.write(`letterlock: internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}${debug ? '' : ' (run again with --debug for details)'}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return EXIT.REFUSED;
  }
}

/** Runs the command and ends the process with its exit code (the `letterlock` launcher calls this). */
export function run(argv: string[]): void {
  // Output piped into `head` or a closed pager: stop quietly, as Unix tools do.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw e; });
  }
  main(argv).then((code) => {
    process.exitCode = code;
    // Whatever a failed command may have left open (a half-started server, a worker), the process ends in bounded time.
    if (code !== EXIT.OK) setTimeout(() => process.exit(code), 3000).unref();
  });
}

// Run directly (node --import tsx server/cli/main.ts ...), as the tests and `npm run letterlock` do.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) run(process.argv.slice(2));
