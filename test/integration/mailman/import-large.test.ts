// `letterlock mailman import` on a large roster, against the stand-in Core of the
// benchmark (test/bench/mailman-standin.ts: answers recorded from Mailman 3.3.8,
// replayed for 30,000 members; a real Core takes minutes to hold that many). The import
// is killed (SIGKILL) half way through its invitations and run again: every member is
// invited exactly once, none lost, none twice; progress lines are printed on the way.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openData } from '../../../server/app.ts';
import { initData, SECRET, tempDir } from '../server/harness.ts';
import { rawDb } from '../../support/raw-db.ts';

const N = 30_000;
const REPO = join(import.meta.dirname, '..', '..', '..');
let standin: ChildProcess;
let root: string;
let data: string;

beforeAll(async () => {
  standin = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'bench', 'mailman-standin.ts'), String(N), 'big.lists.example.test'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    standin.stdout!.on('data', (d: Buffer) => { out += d.toString(); const m = /PORT (\d+)/.exec(out); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
    standin.once('exit', (c) => reject(new Error(`stand-in exited ${c}`)));
  });
  root = tempDir('mailman-import-large');
  data = join(root, 'data');
  await initData(data, 9, { mailman: { url, user: 'u', pass: 'p' } });
}, 120_000);

afterAll(() => {
  standin?.kill('SIGTERM');
  if (root) rmSync(root, { recursive: true, force: true });
});

async function counts(): Promise<{ invited: number; distinct: number; queued: number }> {
  const sql = await openData(data, SECRET);
  try {
    const has = rawDb(sql).prepare(`SELECT 1 FROM sqlite_master WHERE name = 'mailman_invitations'`).get();
    if (!has) return { invited: 0, distinct: 0, queued: 0 };
    const i = rawDb(sql).prepare('SELECT count(*) AS n, count(DISTINCT address) AS d FROM mailman_invitations').get() as { n: number; d: number };
    const q = rawDb(sql).prepare(`SELECT count(*) AS n FROM deliveries WHERE kind = 'notice'`).get() as { n: number };
    return { invited: i.n, distinct: i.d, queued: q.n };
  } finally {
    await sql.close();
  }
}

it('an import killed half way through the invitations, run again, invites every member exactly once', async () => {
  const args = ['--import', 'tsx', 'server/cli/main.ts', 'mailman', 'import', 'big@lists.example.test', '--data', data];
  const env = { ...process.env, LETTERLOCK_SECRET: SECRET };
  const first = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  first.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => first.once('exit', () => r()));
  // Kill as soon as some invitations are committed and not all.
  const end = Date.now() + 240_000;
  let atKill = await counts();
  while (Date.now() < end && first.exitCode === null) {
    atKill = await counts();
    if (atKill.invited > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  first.kill('SIGKILL');
  await exited;
  expect(atKill.invited, `killed half way (stderr: ${err.slice(-500)})`).toBeGreaterThan(0);
  const afterKill = await counts();
  expect(afterKill.invited, 'the first run was stopped before the end').toBeLessThan(N);
  // Each committed invitation has its queue row, and no row lacks its invitation record.
  expect(afterKill.queued).toBe(afterKill.invited);
  expect(err).toMatch(/inviting: 0\/30000 \(0%\)/); // progress on stderr (plain lines off a terminal)

  const second = spawnSync(process.execPath, [...args, '--json'], { cwd: REPO, env, encoding: 'utf8', timeout: 240_000 });
  expect(second.status, second.stderr).toBe(0);
  const r = JSON.parse(second.stdout) as { created: boolean; members: number; invited: number; invitedBefore: number };
  expect(r).toMatchObject({ created: false, members: N, invitedBefore: afterKill.invited });
  expect(r.invited).toBe(N - afterKill.invited);
  expect(second.stderr).not.toMatch(/inviting/); // --json: no progress lines
  const final = await counts();
  expect(final).toEqual({ invited: N, distinct: N, queued: N });
}, 600_000);
