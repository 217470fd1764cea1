// Log rotation as logrotate does it: `letterlock serve` runs as a child process,
// its log file is renamed, SIGHUP arrives (postrotate), and the lines after it go
// to a new file at the same path while the server keeps serving.

import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { initData, send, Sink, spawnServer, stopChild, tempDir, until as untilWithin, type Child } from './harness.ts';

let sink: Sink, dataDir: string, child: Child;
const logFile = () => join(dataDir, 'logs', 'server.log');

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('logrotate');
  await initData(dataDir, sink.port);
  child = await spawnServer(dataDir);
});

afterAll(async () => {
  if (child) await stopChild(child);
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const until = (what: string, ok: () => boolean) => untilWithin(what, ok, { detail: () => child.output().slice(-2000) });

const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');

/** A refused recipient: one smtp.rcpt_refused line in the log, nothing else needed. */
async function logSomething(): Promise<void> {
  await send(child.smtpPort, 'someone@example.org', 'nobody@lists.test', 'Subject: x\r\n\r\nx\r\n').catch(() => 'refused');
}

it('SIGHUP reopens the log file: after a rename, new lines go to a new file with mode 0600', async () => {
  await until('server.started in the log', () => read(logFile()).includes('"event":"server.started"'));
  const rotated = `${logFile()}.1`;
  renameSync(logFile(), rotated);
  await logSomething();
  // Until the signal, the server still writes to the file it has open (now .1).
  await until('the refusal in the rotated file', () => read(rotated).includes('"event":"smtp.rcpt_refused"'));
  expect(existsSync(logFile())).toBe(false);

  child.proc.kill('SIGHUP');
  await until('a new log file with log.reopened', () => read(logFile()).includes('"event":"log.reopened"'));
  expect(statSync(logFile()).mode & 0o777).toBe(0o600);
  const rotatedBefore = read(rotated);
  await logSomething();
  await until('the next refusal in the new file', () => read(logFile()).includes('"event":"smtp.rcpt_refused"'));
  expect(read(rotated)).toBe(rotatedBefore); // nothing more goes to the rotated file
  expect(child.proc.exitCode).toBeNull(); // SIGHUP did not stop the server

  // A second rotation works the same way.
  renameSync(logFile(), `${logFile()}.2`);
  child.proc.kill('SIGHUP');
  await until('a third log file', () => read(logFile()).includes('"event":"log.reopened"'));
  expect(child.proc.exitCode).toBeNull();
});
