// `letterlock serve`: SMTP ingest, HTTP API and delivery in one process, until a signal.

import { join } from 'node:path';
import type { Command } from 'commander';
import { type RunningServer, StartError, startServer } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { defaultSecretFile, loadSecret } from '../../config/secret.ts';
import { joinUrl } from '../../http/join-page.ts';
import { codeOf, createEventLog } from '../../log/log.ts';
import { allLists } from '../../store/lists.ts';
import { dataDirOf, requireInitialized } from '../context.ts';
import { onStopSignals } from '../stop-signals.ts';
import { CliError, EXIT } from '../output.ts';

export function register(program: Command): void {
  program.command('serve').description('run the list server: SMTP ingest, HTTP API and delivery')
    .addHelpText('after', `
Ports and the relay come from letterlock.json (smtp.port, http.port, relay) or from
LETTERLOCK_SMTP_PORT, LETTERLOCK_HTTP_PORT and LETTERLOCK_RELAY. A busy port is
refused with one line naming it (exit 3). Stop with Ctrl-C or SIGTERM: delivery
resumes where it stopped at the next start.

Example:
  LETTERLOCK_SMTP_PORT=2526 letterlock serve --data /var/lib/letterlock`)
    .action(async (_o: unknown, cmd: Command) => {
      const dataDir = dataDirOf(cmd);
      requireInitialized(dataDir);
      const { config } = loadConfig(dataDir);
      const secret = loadSecret(config.secretFile ?? defaultSecretFile(dataDir));
      const log = createEventLog({ file: join(dataDir, 'logs', 'server.log'), level: config.logLevel });
      let server: RunningServer | null = null;
      // Signals first: a SIGTERM during start stops the start (nothing accepted yet:
      // SMTP opens last), and after it a clean close.
      const stopping = onStopSignals(() => server?.close());
      // An error that escapes every isolation is a bug: log its code only (a message
      // could quote input), exit, and let the supervisor restart us (the queue and
      // any interrupted fan-out resume). Failures of one row or post never get here.
      const crash = (kind: 'UNCAUGHT_EXCEPTION' | 'UNHANDLED_REJECTION') => (e: unknown) => {
        const code = codeOf(e);
        log.error('server.error', { code: code === 'INTERNAL' ? kind : code });
        process.stderr.write(`letterlock: stopped after an internal error (${code === 'INTERNAL' ? kind : code})\n`);
        process.exit(70);
      };
      process.on('uncaughtException', crash('UNCAUGHT_EXCEPTION'));
      process.on('unhandledRejection', crash('UNHANDLED_REJECTION'));
      try {
        server = await startServer(dataDir, config, secret, { log });
      } catch (e) {
        // A busy port, a bad host, an unwritable folder: nothing is reachable (exit 3).
        if (e instanceof StartError) throw new CliError(e.message, EXIT.UNREACHABLE, 'START_FAILED');
        throw e;
      }
      if (stopping()) {
        await server.close();
        process.exit(0);
      }
      console.error(`letterlock: SMTP on ${config.smtp.host}:${server.smtpPort}, HTTP on ${config.http.host}:${server.httpPort}, delivering via ${server.relay}`);
      // Join pages for owners to publish (a few; list show prints any list's).
      const lists = await allLists(server.sql);
      const base = config.publicUrl ?? `http://${config.http.host}:${server.httpPort}`;
      for (const l of lists.slice(0, 10)) console.error(`letterlock: join page of ${l.address}: ${joinUrl(base, l.address)}`);
      if (lists.length > 0 && !config.publicUrl) console.error('letterlock: set "publicUrl" in letterlock.json to the address people reach, for join links that work from elsewhere');
      if (lists.length > 10) console.error(`letterlock: and ${lists.length - 10} more lists (letterlock list show ADDRESS prints a list's join page)`);
      // The action returns; the open servers keep the process running until stop().
    });
}
