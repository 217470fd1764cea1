// Fan-out benchmark (not a test): one post to 100, 1,000 and 10,000 subscribers,
// with a 10 KB and a 1 MB post, from the start of the SMTP submission to the last
// copy accepted by a loopback SMTP sink. The list server and the sink each run in
// their own process; the server's CPU time and peak RSS are read from /proc.
// Beside it, in the same run, the baseline: per-recipient full encryption
// (openpgp.encrypt per copy, the way other encrypted list servers work), measured
// on a subset of recipients and reported per copy.
// Run: npm run bench:fanout   (options: --quick for a short run)

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { composePost, generateKey, parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';
import { init } from '../../server/cli/init.ts';
import { openData } from '../../server/app.ts';
import { createList } from '../../server/lists/lists.ts';
import { registerMember } from '../../server/lists/members.ts';
import { getList } from '../../server/store/lists.ts';
import { upsertMember } from '../../server/store/members.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SECRET = 'bench-secret-0123456789abcdef';
const LIST = 'bench@lists.test';
const QUICK = process.argv.includes('--quick');
const arg = (name: string) => { const i = process.argv.indexOf(name); return i >= 0 ? process.argv[i + 1] : undefined; };
const SIZES = [{ name: '10 KB', bytes: 10 * 1024 }, { name: '1 MB', bytes: 1024 * 1024 }].filter((s) => !arg('--size') || s.name.replace(' ', '') === arg('--size'));
const COUNTS = arg('--count') ? [Number(arg('--count'))] : QUICK ? [100, 1000] : [100, 1000, 10_000];
const SKIP_BASELINE = process.argv.includes('--no-baseline');
const CLK_TCK = 100;

process.env.LETTERLOCK_SECRET = SECRET;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// --- the sink -------------------------------------------------------------
const sink = fork(join(import.meta.dirname, 'fanout-sink.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
let sinkCount = 0;
const sinkPort = await new Promise<number>((resolve) => {
  sink.on('message', (m: { port?: number; messages?: number }) => {
    if (m.port) resolve(m.port);
    if (m.messages !== undefined) sinkCount = m.messages;
  });
});
async function resetSink(): Promise<void> {
  sink.send({ reset: true });
  await new Promise((r) => setTimeout(r, 60));
  sinkCount = 0;
}

// --- members: a pool of real keys reused across addresses (wrap cost is per PKESK) ---
const sender = await generateKey({ kind: 'subscriber', address: 'sender@example.org', passphrase: 'sender-pass' });
const senderKey = await unlockPrivateKey(await parsePrivateKey(sender.privateKeyArmored), 'sender-pass');
const pool = await Promise.all(Array.from({ length: 16 }, async (_, i) => {
  const g = await generateKey({ kind: 'subscriber', address: `pool${i}@pool.test`, passphrase: 'p' });
  const { key } = await readPublicKey(g.publicKeyArmored);
  return { fpr: g.facts.fingerprint, armored: g.publicKeyArmored, packet: (await key.getEncryptionKey()).keyPacket.write() };
}));

async function dataFolder(n: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `letterlock-bench-${n}-`));
  init({ dataDir: dir, config: { smtp: { port: 0 }, http: { port: 0 }, relay: `smtp://127.0.0.1:${sinkPort}`, logLevel: 'warn',
    ...(process.env.FANOUT_CONNECTIONS ? { relayOptions: { maxConnections: Number(process.env.FANOUT_CONNECTIONS) } } : {}) } });
  const db = openData(dir, SECRET);
  const list = await createList(db, SECRET, LIST, { maxBytes: 25 * 1024 * 1024 });
  await registerMember(db, list.id, 'sender@example.org', sender.publicKeyArmored);
  db.transaction(() => {
    for (let i = 0; i < n - 1; i++) {
      const k = pool[i % pool.length]!;
      upsertMember(db, { listId: list.id, address: `s${String(i).padStart(5, '0')}@sub.test`, fingerprint: k.fpr, publicKey: k.armored, encryptionKey: k.packet, expiresAt: null, keyState: 'valid' });
    }
  })();
  const listPublic = getList(db, LIST)!.listPublic;
  db.close();
  return Object.assign(dir, {}) && (listKeys.set(dir, listPublic), dir);
}
const listKeys = new Map<string, string>();

function procStats(pid: number): { cpuMs: number; hwmMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return { cpuMs: (ticks * 1000) / CLK_TCK, hwmMb: Number(hwm) / 1024 };
}

function startServer(dir: string): Promise<{ proc: ChildProcess; smtpPort: number }> {
  const prof = process.env.FANOUT_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FANOUT_PROFILE}`] : [];
  const flags = process.env.FANOUT_NODE_FLAGS ? process.env.FANOUT_NODE_FLAGS.split(' ') : [];
  const proc = spawn(process.execPath, [...flags, ...prof, '--import', 'tsx', 'server/cli/main.ts', 'serve', '--data', dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /SMTP on [\d.]+:(\d+)/.exec(err);
      if (m) resolve({ proc, smtpPort: Number(m[1]) });
    });
    proc.once('exit', (c) => reject(new Error(`server exited ${c}: ${err}`)));
  });
}

async function stopServer(proc: ChildProcess): Promise<void> {
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await done;
}

function postText(bytes: number): string {
  const b64 = randomBytes(Math.ceil(bytes * 0.75)).toString('base64').slice(0, bytes);
  return b64.replace(/(.{76})/g, '$1\n');
}

interface Run { wallMs: number; acceptMs: number; cpuMs: number; hwmMb: number; mailBytes: number }

async function runOnce(dir: string, n: number, bytes: number): Promise<Run> {
  const { proc, smtpPort } = await startServer(dir);
  await new Promise((r) => setTimeout(r, 300)); // let startup settle before the CPU reading
  const { key: listKey } = await readPublicKey(listKeys.get(dir)!);
  const post = await composePost({ message: { subject: 'bench', from: { address: 'sender@example.org' }, to: [{ address: LIST }], text: postText(bytes) }, senderKey, listKey });
  await resetSink();
  const cpu0 = procStats(proc.pid!).cpuMs;
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true, socketTimeout: 300_000 });
  const t0 = performance.now();
  await t.sendMail({ envelope: { from: 'sender@example.org', to: [LIST] }, raw: post.pgpMime });
  const acceptMs = performance.now() - t0;
  t.close();
  while (sinkCount < n) await new Promise((r) => setTimeout(r, 5));
  const wallMs = performance.now() - t0;
  const s = procStats(proc.pid!);
  await stopServer(proc);
  return { wallMs, acceptMs, cpuMs: s.cpuMs - cpu0, hwmMb: s.hwmMb, mailBytes: post.pgpMime.length };
}

function baseline(copies: number, bytes: number): Promise<{ copies: number; wallMs: number; cpuMs: number; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'test/bench/fanout-baseline.ts', String(sinkPort), String(copies), String(bytes), '32'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.once('exit', (c) => (c === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`baseline exited ${c}`))));
  });
}

console.log(`Fan-out benchmark on ${cpus().length} CPU(s), Node ${process.version}${QUICK ? ' (quick)' : ''}`);
console.log('list server: seal once + one PKESK per subscriber, durable SQLite queue, pooled SMTP (8 connections) to a loopback sink\n');
const rows: string[] = [];
const header = 'post    subscribers  runs  wall (median)  SMTP accept  copies/s   CPU/copy   peak RSS | baseline (per-recipient openpgp.encrypt)         | speed-up';
console.log(header);
for (const size of SIZES) {
  // Baseline on a subset; its per-copy rate is what N copies would cost.
  const subset = size.bytes > 100_000 ? 100 : 1000;
  await resetSink();
  const b = SKIP_BASELINE ? { copies: 1, wallMs: 1, cpuMs: 0, peakRssMb: 0 } : await baseline(subset, size.bytes);
  const bRate = b.copies / (b.wallMs / 1000);
  const bCpu = b.cpuMs / b.copies;
  for (const n of COUNTS) {
    const dir = await dataFolder(n);
    const repeats = n >= 10_000 && size.bytes > 100_000 ? 1 : 3;
    const runs: Run[] = [];
    for (let i = 0; i < repeats; i++) runs.push(await runOnce(dir, n, size.bytes));
    rmSync(dir, { recursive: true, force: true });
    const wall = median(runs.map((r) => r.wallMs));
    const rate = n / (wall / 1000);
    const cpu = median(runs.map((r) => r.cpuMs)) / n;
    const line = `${size.name.padEnd(7)} ${String(n).padStart(11)}  ${String(repeats).padStart(4)}  ${(wall / 1000).toFixed(2).padStart(11)} s  ${(median(runs.map((r) => r.acceptMs))).toFixed(0).padStart(8)} ms  ` +
      `${rate.toFixed(0).padStart(8)}  ${cpu.toFixed(3).padStart(6)} ms  ${median(runs.map((r) => r.hwmMb)).toFixed(0).padStart(5)} MB | ` +
      `${bRate.toFixed(0).padStart(6)} copies/s, ${bCpu.toFixed(3)} ms CPU/copy, ${b.peakRssMb.toFixed(0)} MB (${b.copies} copies) | ${(rate / bRate).toFixed(1).padStart(5)}x`;
    console.log(line);
    rows.push(line);
  }
}
console.log('\nwall: from the start of the SMTP submission to the last copy accepted by the sink (includes receiving,');
console.log('opening, verifying, sealing, wrapping, queueing in SQLite and delivering). CPU/copy and peak RSS are the');
console.log('list server process only (/proc). Baseline: same sink, same pooled SMTP, encryption per recipient, on a subset.');
sink.kill();
process.exit(0);
