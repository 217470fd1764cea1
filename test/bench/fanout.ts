// Fan-out benchmark (not a test): one post to 100, 1,000 and 10,000 subscribers,
// with a 10 KB and a 1 MB post, from the start of the SMTP submission to the last
// copy accepted by a loopback SMTP sink. The list server and the sink each run in
// their own process; the server's CPU time and peak RSS are read from /proc.
// Beside it, in the same run, the baseline: per-recipient full encryption
// (openpgp.encrypt per copy, the way other encrypted list servers work), measured
// on a subset of recipients and reported per copy.
// Beside them, the delivery floor: the same relay client sending one pre-built copy
// of the same size to the same sink (fanout-floor.ts), and the sink's own CPU.
// Run: npm run bench:fanout   (options: --quick for a short run; --large adds
// 100,000 subscribers at 10 KB, one run, about two minutes on 2 quiet cores;
// --count N and --size 10KB|1MB pick one row; --runs N: N runs per row, not 3 (1 at the largest); --no-baseline skips the baseline;
// --store postgres runs each row on SQLite and then on a real PostgreSQL 15 started
// for the run through test/support/postgres.ts, one node, figures side by side;
// --nodes 2 with it adds two `letterlock serve` nodes on one PostgreSQL database,
// their own data folders, the same secret, distinct node ids: one row with the post
// sent to node A, one with --posts P posts (default 2) sent at once, alternately to
// A and B; CPU summed over both nodes plus PostgreSQL's, peak RSS per node, and
// ratios to the one-node PostgreSQL and SQLite rows of the same run;
// --cold: time the first post after the server starts, instead of a warmed server)

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { composePost, generateKey, parsePrivateKey, readPublicKey, unlockPrivateKey } from '../../shared/index.ts';
import { init } from '../../server/cli/init.ts';
import { openData } from '../../server/app.ts';
import { createList } from '../../server/lists/lists.ts';
import { keyFingerprints, registerMember } from '../../server/lists/members.ts';
import { getList } from '../../server/store/lists.ts';
import { startPostgres, type RunningPostgres } from '../support/postgres.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SECRET = 'bench-secret-0123456789abcdef';
const LIST = 'bench@lists.test';
const QUICK = process.argv.includes('--quick');
// A list server runs for months: by default each started node first delivers one post to a
// small second list (threads loaded, code compiled, relay connections open), and the clock
// starts after that. --cold times the first post after start instead.
const COLD = process.argv.includes('--cold');
const WARM_LIST = 'warmup@lists.test';
const WARM_MEMBERS = 64; // the sender among them; a page of 64 goes to the wrap pool, as the big list's do
/** A bad option: say which, no stack trace. */
function usage(msg: string): never {
  console.error(`bench:fanout: ${msg}`);
  process.exit(2);
}
const arg = (name: string) => { const i = process.argv.indexOf(name); return i >= 0 ? process.argv[i + 1] : undefined; };
const SIZES = [{ name: '10 KB', bytes: 10 * 1024 }, { name: '1 MB', bytes: 1024 * 1024 }].filter((s) => !arg('--size') || s.name.replace(' ', '') === arg('--size'));
const LARGE = process.argv.includes('--large');
const COUNTS = arg('--count') ? [Number(arg('--count'))] : QUICK ? [100, 1000] : [100, 1000, 10_000, ...(LARGE ? [100_000] : [])];
if (COUNTS.some((n) => !Number.isInteger(n) || n < 2 || n > 1_000_000)) usage('--count 2..1000000 (the list\'s members, the sender among them)');
const SKIP_BASELINE = process.argv.includes('--no-baseline');
const SKIP_FLOOR = process.argv.includes('--no-floor');
const CLK_TCK = 100;
const STORES: Array<'sqlite' | 'postgres'> = arg('--store') === 'postgres' ? ['sqlite', 'postgres'] : ['sqlite'];
if (arg('--store') && !['sqlite', 'postgres'].includes(arg('--store')!)) usage('--store sqlite|postgres');
const RUNS = arg('--runs') ? Number(arg('--runs')) : undefined;
if (RUNS !== undefined && !(Number.isInteger(RUNS) && RUNS >= 1 && RUNS <= 9)) usage('--runs 1..9');
const NODES = arg('--nodes') ? Number(arg('--nodes')) : 1;
if (NODES !== 1 && NODES !== 2) usage('--nodes 1|2');
if (NODES === 2 && arg('--store') !== 'postgres') usage('--nodes 2 needs --store postgres (several nodes share one PostgreSQL database)');
const POSTS = arg('--posts') ? Number(arg('--posts')) : 2;
if (!Number.isInteger(POSTS) || POSTS < 2 || POSTS > 100) usage('--posts 2..100 (the two-node row that sends posts to both nodes)');
if (process.argv.includes('--posts') && NODES !== 2) usage('--posts goes with --nodes 2');
/** A row: its store, how many nodes, and which node each post is sent to (its index). */
interface Setup { label: string; store: 'sqlite' | 'postgres'; nodes: number; postsTo: number[] }
const SETUPS: Setup[] = [
  { label: 'sqlite', store: 'sqlite', nodes: 1, postsTo: [0] },
  ...(STORES.includes('postgres') ? [{ label: 'postgres', store: 'postgres' as const, nodes: 1, postsTo: [0] }] : []),
  ...(NODES === 2 ? [
    { label: 'pg 2 nodes, 1 post to A', store: 'postgres' as const, nodes: 2, postsTo: [0] },
    { label: `pg 2 nodes, ${POSTS} posts A/B`, store: 'postgres' as const, nodes: 2, postsTo: Array.from({ length: POSTS }, (_, i) => i % 2) },
  ] : []),
];
let pgServer: RunningPostgres | null = null;

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
  // The key-ID index rows too, as registration writes them (else the server would backfill them at start, inside the measurement).
  const fprs = keyFingerprints(key);
  return { fpr: g.facts.fingerprint, armored: g.publicKeyArmored, packet: (await key.getEncryptionKey()).keyPacket.write(), fprs };
}));

async function initFolder(n: number, database: string | undefined, node: string | undefined): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `letterlock-bench-${n}-`));
  dbOf.set(dir, database);
  // logLevel info: the server's post.accepted event marks the moment every copy is wrapped and queued.
  // node: a name each (the default, <hostname>:<smtp port>, is the same for two nodes on port 0).
  await init({ dataDir: dir, config: { smtp: { port: 0 }, http: { port: 0 }, relay: `smtp://127.0.0.1:${sinkPort}`, logLevel: 'info', ...(database ? { database } : {}),
    ...(node ? { node } : {}),
    ...(process.env.FANOUT_CONNECTIONS ? { relayOptions: { maxConnections: Number(process.env.FANOUT_CONNECTIONS) } } : {}) } });
  return dir;
}

/** The data folders of a row: one, or two on one database (the second joins the first's database). */
async function dataFolders(n: number, setup: Setup): Promise<string[]> {
  const database = setup.store === 'postgres' ? await (pgServer ??= await startPostgres()).createDatabase() : undefined;
  const names = setup.nodes === 1 ? [undefined] : Array.from({ length: setup.nodes }, (_, i) => `bench-${'ab'[i]}`);
  const first = await seedFolder(n, await initFolder(n, database, names[0]));
  const dirs = [first];
  for (const name of names.slice(1)) {
    const dir = await initFolder(n, database, name);
    listKeys.set(dir, listKeys.get(first)!);
    warmKeys.set(dir, warmKeys.get(first)!);
    dirs.push(dir);
  }
  return dirs;
}

/**
 * count members, addresses from addressOf, keys from the key pool, written as registration
 * writes them (upsertMember), 500 per multi-row statement: one statement per member is a
 * round trip each on PostgreSQL (minutes at 100,000).
 */
async function insertMembers(sql: Awaited<ReturnType<typeof openData>>, listId: number, count: number, addressOf: (i: number) => string): Promise<void> {
  await sql.tx(async () => {
    const CHUNK = 500;
    for (let from = 0; from < count; from += CHUNK) {
      const members: unknown[] = [];
      const ids: unknown[] = [];
      let idRows = 0;
      const to = Math.min(count, from + CHUNK);
      for (let i = from; i < to; i++) {
        const k = pool[i % pool.length]!;
        const address = addressOf(i);
        members.push(listId, address, k.fpr, k.armored, Buffer.from(k.packet), null, 'valid', Date.now());
        for (const f of k.fprs) {
          const fpr = f.toUpperCase();
          ids.push(listId, address, fpr, fpr.length === 64 ? fpr.slice(0, 16) : fpr.slice(-16));
          idRows++;
        }
      }
      await sql.run(`INSERT INTO members (list_id, address, fingerprint, public_key, encryption_key, expires_at, key_state, added_at) VALUES ${Array.from({ length: to - from }, () => '(?,?,?,?,?,?,?,?)').join(',')}`, members as never);
      await sql.run(`INSERT INTO member_key_ids (list_id, address, fingerprint, key_id) VALUES ${Array.from({ length: idRows }, () => '(?,?,?,?)').join(',')}`, ids as never);
    }
  });
}

/** The list, its sender and n - 1 members, in the folder's database; and the warm-up list. */
async function seedFolder(n: number, dir: string): Promise<string> {
  const sql = await openData(dir, SECRET);
  const list = await createList(sql, SECRET, LIST, { maxBytes: 25 * 1024 * 1024 });
  await registerMember(sql, list.id, 'sender@example.org', sender.publicKeyArmored);
  await insertMembers(sql, list.id, n - 1, (i) => `s${String(i).padStart(6, '0')}@sub.test`);
  const listPublic = (await getList(sql, LIST))!.listPublic;
  const warm = await createList(sql, SECRET, WARM_LIST, { maxBytes: 25 * 1024 * 1024 });
  await registerMember(sql, warm.id, 'sender@example.org', sender.publicKeyArmored);
  await insertMembers(sql, warm.id, WARM_MEMBERS - 1, (i) => `w${i}@warm.test`);
  warmKeys.set(dir, (await getList(sql, WARM_LIST))!.listPublic);
  await sql.close();
  listKeys.set(dir, listPublic);
  return dir;
}
const warmKeys = new Map<string, string>();

/** One post to the small list through each node, delivered to the last copy (not timed). */
async function warmUp(servers: Array<{ smtpPort: number }>, warmKey: string): Promise<void> {
  const { key } = await readPublicKey(warmKey);
  for (const server of servers) {
    const before = sinkCount;
    const post = await composePost({ message: { subject: 'warm-up', from: { address: 'sender@example.org' }, to: [{ address: WARM_LIST }], text: postText(1024) }, senderKey, listKey: key });
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: server.smtpPort, secure: false, ignoreTLS: true, socketTimeout: 300_000 });
    try {
      await t.sendMail({ envelope: { from: 'sender@example.org', to: [WARM_LIST] }, raw: post.pgpMime });
    } finally {
      t.close();
    }
    const deadline = Date.now() + 120_000;
    while (sinkCount < before + WARM_MEMBERS) {
      if (Date.now() > deadline) throw new Error(`warm-up: ${sinkCount - before} of ${WARM_MEMBERS} copies in 120 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
const listKeys = new Map<string, string>();
const dbOf = new Map<string, string | undefined>();

/** CPU of the PostgreSQL cluster (postmaster, its live backends, and the backends it reaped: cutime). */
function pgCpuMs(): number {
  if (!pgServer) return 0;
  const pid = Number(readFileSync(join(pgServer.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const ticksOf = (p: number, children: boolean) => {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8');
      const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(x[1]), ticks: Number(x[11]) + Number(x[12]) + (children ? Number(x[13]) + Number(x[14]) : 0) };
    } catch {
      return { ppid: -1, ticks: 0 };
    }
  };
  let ticks = ticksOf(pid, true).ticks;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const t = ticksOf(Number(d), false);
    if (t.ppid === pid) ticks += t.ticks;
  }
  return (ticks * 1000) / CLK_TCK;
}

function procStats(pid: number): { cpuMs: number; hwmMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return { cpuMs: (ticks * 1000) / CLK_TCK, hwmMb: Number(hwm) / 1024 };
}

let acceptedAt = 0; // performance.now() of the last post.accepted event, any node
let acceptedCount = 0; // post.accepted events since the run started, all nodes

function startServer(dir: string): Promise<{ proc: ChildProcess; smtpPort: number }> {
  const prof = process.env.FANOUT_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FANOUT_PROFILE}`] : [];
  const flags = process.env.FANOUT_NODE_FLAGS ? process.env.FANOUT_NODE_FLAGS.split(' ') : [];
  const proc = spawn(process.execPath, [...flags, ...prof, '--import', 'tsx', 'server/cli/main.ts', 'serve', '--data', dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  proc.stdout!.on('data', (d: Buffer) => {
    // Whole lines only, so an event split across two chunks is counted once; the
    // unfinished line kept is bounded (log lines are short).
    tail += d.toString();
    const end = tail.lastIndexOf('\n');
    if (end < 0) {
      tail = tail.slice(-4096);
      return;
    }
    const seen = tail.slice(0, end).split('post.accepted').length - 1;
    tail = tail.slice(end + 1).slice(-4096);
    if (seen) {
      acceptedAt = performance.now();
      acceptedCount += seen;
    }
  });
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

interface Run {
  wallMs: number; acceptMs: number; queuedMs: number; cpuMs: number; sinkCpuMs: number; dbCpuMs: number; hwmMb: number; mailBytes: number;
  /** Per node: CPU and peak RSS (cpuMs is their sum, hwmMb their largest). */
  nodeCpuMs: number[]; nodeHwmMb: number[];
  /** Copies expected at the sink (members × posts) and those beyond it. */
  copies: number; extra: number;
}

async function runOnce(dirs: string[], n: number, bytes: number, postsTo: number[]): Promise<Run> {
  // One after the other: the second node starts on a schema the first has checked.
  const servers: Array<{ proc: ChildProcess; smtpPort: number }> = [];
  for (const dir of dirs) servers.push(await startServer(dir));
  if (COLD) await new Promise((r) => setTimeout(r, 300)); // let startup settle before the CPU reading
  else await warmUp(servers, warmKeys.get(dirs[0]!)!);
  const { key: listKey } = await readPublicKey(listKeys.get(dirs[0]!)!);
  const text = postText(bytes);
  // Each post composed apart (its own Message-ID and session key), before the clock starts.
  const posts = await Promise.all(postsTo.map(() => composePost({ message: { subject: 'bench', from: { address: 'sender@example.org' }, to: [{ address: LIST }], text }, senderKey, listKey })));
  const copies = n * posts.length;
  await resetSink();
  const cpu0 = servers.map((s) => procStats(s.proc.pid!).cpuMs);
  const sink0 = procStats(sink.pid!).cpuMs;
  const db0 = pgCpuMs();
  acceptedCount = 0;
  acceptedAt = 0;
  const t0 = performance.now();
  // Sent at once, each over its own connection to the node it is meant for.
  await Promise.all(posts.map(async (post, i) => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: servers[postsTo[i]!]!.smtpPort, secure: false, ignoreTLS: true, socketTimeout: 300_000 });
    try {
      await t.sendMail({ envelope: { from: 'sender@example.org', to: [LIST] }, raw: post.pgpMime });
    } finally {
      t.close();
    }
  }));
  const acceptMs = performance.now() - t0;
  while (sinkCount < copies) await new Promise((r) => setTimeout(r, 5));
  const wallMs = performance.now() - t0;
  const s = servers.map((x) => procStats(x.proc.pid!));
  const sinkCpuMs = procStats(sink.pid!).cpuMs - sink0;
  const dbCpuMs = dbOf.get(dirs[0]!) ? pgCpuMs() - db0 : 0;
  // post.accepted of the last post, on whichever node took it.
  const queuedMs = acceptedCount >= posts.length ? acceptedAt - t0 : NaN;
  for (const x of servers) await stopServer(x.proc);
  // Copies the sink took beyond one per member and post (none expected: no node died).
  const extra = sinkCount - copies;
  const nodeCpuMs = s.map((x, i) => x.cpuMs - cpu0[i]!);
  return { wallMs, acceptMs, queuedMs, cpuMs: nodeCpuMs.reduce((a, b) => a + b, 0), nodeCpuMs, sinkCpuMs, dbCpuMs, hwmMb: Math.max(...s.map((x) => x.hwmMb)), nodeHwmMb: s.map((x) => x.hwmMb), copies, extra, mailBytes: posts[0]!.pgpMime.length };
}

function baseline(copies: number, bytes: number): Promise<{ copies: number; wallMs: number; cpuMs: number; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'test/bench/fanout-baseline.ts', String(sinkPort), String(copies), String(bytes), '32'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.once('exit', (c) => (c === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`baseline exited ${c}`))));
  });
}

function floor(copies: number, copyBytes: number): Promise<{ copies: number; failed: number; wallMs: number; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'test/bench/fanout-floor.ts', String(sinkPort), String(copies), String(copyBytes), process.env.FANOUT_CONNECTIONS ?? '8', '32'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.once('exit', (c) => (c === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`floor exited ${c}`))));
  });
}

const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`Fan-out benchmark on ${cpus().length} CPU(s), Node ${process.version}${QUICK ? ' (quick)' : ''}; load average at start ${loadAvg()}`);
console.log(COLD ? 'cold: each run times the first post after the server starts' : `warm: each node first delivers one post to a ${WARM_MEMBERS}-member list, then the clock starts (--cold: the first post after start)`);
console.log('list server: seal once + one PKESK per subscriber (wrap pool, one thread per core), durable queue (SQLite; with --store postgres each row again on PostgreSQL), persistent pipelined SMTP (8 connections) to a loopback sink\n');
const rows: string[] = [];
const W = NODES === 2 ? 24 : 9; // the setup column
const header = `${'setup'.padEnd(W)} post    subscribers  runs  wall (median)  accepted  queued   copies/s   CPU/copy  sink CPU/copy  peak RSS | baseline (per-recipient openpgp.encrypt)         | speed-up`;
console.log(header);
for (const size of SIZES) {
  // Baseline on a subset; its per-copy rate is what N copies would cost.
  const subset = size.bytes > 100_000 ? 100 : 1000;
  await resetSink();
  const b = SKIP_BASELINE ? { copies: 1, wallMs: 1, cpuMs: 0, peakRssMb: 0 } : await baseline(subset, size.bytes);
  const bRate = b.copies / (b.wallMs / 1000);
  const bCpu = b.cpuMs / b.copies;
  for (const n of COUNTS) {
    // This count's one-node rows, for the two-node rows' ratios: copies/s, CPU per copy (servers + PostgreSQL).
    const refs = new Map<string, { rate: number; cpuAll: number }>();
    for (const setup of SETUPS) {
      const dirs = await dataFolders(n, setup);
      const repeats = RUNS ?? (n >= 100_000 || (n >= 10_000 && size.bytes > 100_000) ? 1 : 3);
      const runs: Run[] = [];
      for (let i = 0; i < repeats; i++) runs.push(await runOnce(dirs, n, size.bytes, setup.postsTo));
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
      const copies = runs[0]!.copies;
      const wall = median(runs.map((r) => r.wallMs));
      const rate = copies / (wall / 1000);
      const cpu = median(runs.map((r) => r.cpuMs)) / copies;
      const sinkCpu = median(runs.map((r) => r.sinkCpuMs)) / copies;
      const dbCpu = median(runs.map((r) => r.dbCpuMs)) / copies;
      const line = `${setup.label.padEnd(W)} ${size.name.padEnd(7)} ${String(n).padStart(11)}  ${String(repeats).padStart(4)}  ${(wall / 1000).toFixed(2).padStart(11)} s  ${(median(runs.map((r) => r.acceptMs)) / 1000).toFixed(2).padStart(6)} s  ` +
        `${(median(runs.map((r) => r.queuedMs)) / 1000).toFixed(2).padStart(5)} s  ${rate.toFixed(0).padStart(8)}  ${cpu.toFixed(3).padStart(6)} ms  ${sinkCpu.toFixed(3).padStart(9)} ms  ${median(runs.map((r) => r.hwmMb)).toFixed(0).padStart(5)} MB | ` +
        (SKIP_BASELINE ? 'baseline skipped (--no-baseline)' : `${bRate.toFixed(0).padStart(6)} copies/s, ${bCpu.toFixed(3)} ms CPU/copy, ${b.peakRssMb.toFixed(0)} MB (${b.copies} copies) | ${(rate / bRate).toFixed(1).padStart(5)}x`);
      console.log(line);
      rows.push(line);
      // Each step's share of the wall time: until SMTP accepted the post (receive, open, verify,
      // seal, archive), until every copy was wrapped and queued (delivery already running), and the
      // rest (delivery alone). CPU: the list server's against the sink's.
      const acc = median(runs.map((r) => r.acceptMs));
      const q = median(runs.map((r) => r.queuedMs));
      const pct = (x: number) => `${((100 * x) / wall).toFixed(0)}%`;
      const posts = setup.postsTo.length;
      console.log(`${' '.repeat(W + 1)}steps: accept ${pct(acc)}, wrap + queue ${pct(q - acc)} (delivering meanwhile), delivery after the last page ${pct(wall - q)}; ` +
        `CPU: server${setup.nodes > 1 ? 's' : ''} ${(cpu * copies / 1000).toFixed(2)} s, sink ${(sinkCpu * copies / 1000).toFixed(2)} s` +
        (setup.store === 'postgres' ? `, PostgreSQL ${(dbCpu * copies / 1000).toFixed(2)} s (${dbCpu.toFixed(3)} ms/copy)` : '') +
        (posts > 1 ? `; ${posts} posts, ${copies} copies` : ''));
      const cpuAll = cpu + dbCpu;
      if (setup.nodes === 1) {
        refs.set(setup.store, { rate, cpuAll });
        continue;
      }
      // Per node (medians over the runs): its CPU and peak RSS; copies the sink took twice.
      const perNode = runs[0]!.nodeCpuMs.map((_, i) =>
        `${'AB'[i]} ${(median(runs.map((r) => r.nodeCpuMs[i]!)) / 1000).toFixed(2)} s CPU, peak RSS ${median(runs.map((r) => r.nodeHwmMb[i]!)).toFixed(0)} MB`).join('; ');
      const ratio = (ref: { rate: number; cpuAll: number } | undefined, name: string) => ref
        ? `vs ${name}: copies/s ${(rate / ref.rate).toFixed(2)}x, CPU/copy (servers + PostgreSQL) ${cpuAll.toFixed(3)} ms = ${(cpuAll / ref.cpuAll).toFixed(2)}x`
        : '';
      const extra = Math.max(...runs.map((r) => r.extra));
      console.log(`${' '.repeat(W + 1)}nodes: ${perNode}; ${extra ? `${extra} EXTRA copies at the sink` : 'no copy beyond one per member and post at the sink'}`);
      console.log(`${' '.repeat(W + 1)}${[ratio(refs.get('postgres'), 'one node on PostgreSQL'), ratio(refs.get('sqlite'), 'SQLite')].filter(Boolean).join('; ')}`);
    }
  }
  if (!SKIP_FLOOR) {
    // The floor, at the largest count: the same relay client and sink, a pre-built copy of the run's copy size.
    const n = Math.min(Math.max(...COUNTS), 20_000);
    const copyBytes = Math.round(size.bytes * 1.37) + 1500; // armor and headers around the body
    await resetSink();
    const sink0 = procStats(sink.pid!).cpuMs;
    const f = await floor(n, copyBytes);
    const sinkMs = procStats(sink.pid!).cpuMs - sink0;
    const line = `${size.name.padEnd(7)} floor: ${n} pre-built ${(copyBytes / 1024).toFixed(0)} KB copies, same client and sink: ${(f.wallMs / 1000).toFixed(2)} s, ` +
      `${(n / (f.wallMs / 1000)).toFixed(0)} copies/s, client CPU ${(f.cpuMs / n).toFixed(3)} ms/copy, sink CPU ${(sinkMs / n).toFixed(3)} ms/copy${f.failed ? `, ${f.failed} FAILED` : ''}`;
    console.log(line);
    rows.push(line);
  }
}
console.log(`\nload average at the end ${loadAvg()}`);
console.log('\nwall: from the start of the SMTP submission to the last copy accepted by the sink (includes receiving,');
console.log('opening, verifying, sealing, wrapping, queueing in the database and delivering). CPU/copy and peak RSS are the');
console.log('list server process only (/proc); sink CPU/copy is the sink process. Baseline: same sink, same pooled SMTP,');
console.log('encryption per recipient, on a subset. Floor: no list server at all, only its relay client and the sink.');
if (STORES.includes('postgres')) console.log('PostgreSQL: a local cluster (fsync off, as in the tests); its CPU (postmaster and backends) is counted apart from the server\'s.');
if (NODES === 2) {
  console.log('pg 2 nodes: two `letterlock serve` processes, own data folders, one database, the same secret; CPU/copy sums both');
  console.log(`nodes, peak RSS is the larger node's (each node's on the "nodes" line); "${POSTS} posts A/B": ${POSTS} posts sent at once, alternately`);
  console.log('to node A and node B, each to every member, timed to the last of all their copies at the sink.');
}
sink.kill();
await (pgServer as RunningPostgres | null)?.stop();
process.exit(0);
