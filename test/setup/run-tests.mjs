#!/usr/bin/env node
// The whole suite as `npm test` runs it (after ensure.mjs and tsc): vitest's
// `node` project first (two files at a time), then the `browsers-and-stack` and
// `postgres` projects side by side, each one file at a time, in two vitest
// processes. One vitest run cannot do that last part: a group of projects shares
// one worker count, and two browser files at once would share the system's mail
// services and fixed ports. Each line of the two side-by-side runs is prefixed with
// its project. The exit code is the first failure's (0 when every run passed).
// Extra arguments go to every vitest run (e.g. a file filter: then a project with no
// matching file passes).

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const extra = process.argv.length > 2 ? [...process.argv.slice(2), '--passWithNoTests'] : [];

/** Runs one vitest project; its output goes through with `prefix` on every line (none: untouched). */
function run(project, prefix) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vitest, 'run', '--project', project, ...extra], {
      cwd: root,
      stdio: prefix ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      env: process.env,
    });
    if (prefix) {
      for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
        let rest = '';
        from.setEncoding('utf8');
        from.on('data', (d) => {
          const lines = (rest + d).split('\n');
          rest = lines.pop();
          if (lines.length) to.write(lines.map((l) => `${prefix} ${l}\n`).join(''));
        });
        from.on('end', () => { if (rest) to.write(`${prefix} ${rest}\n`); });
      }
    }
    child.on('error', (e) => { console.error(`${project}: ${e.message}`); resolve(1); });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const started = Date.now();
const minutes = () => `${((Date.now() - started) / 60_000).toFixed(1)} min`;
const first = await run('node', null);
if (first !== 0) process.exit(first);
console.log(`\nnode project passed (${minutes()}); now browsers-and-stack and postgres side by side\n`);
const [browsers, postgres] = await Promise.all([run('browsers-and-stack', '[browsers]'), run('postgres', '[postgres]')]);
console.log(`\nbrowsers-and-stack: ${browsers === 0 ? 'passed' : `FAILED (exit ${browsers})`}; postgres: ${postgres === 0 ? 'passed' : `FAILED (exit ${postgres})`}; ${minutes()} in all`);
process.exit(browsers || postgres);
