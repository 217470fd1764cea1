// The public join page (GET /join/<address>) over real HTTP against the whole
// server: hostile list names and descriptions come out escaped, the page runs
// no script and loads nothing (CSP with the stylesheet's own hash), the
// machine-readable pointer leads to the registry entry the extension looks up,
// unknown or oversized addresses get a 404 page in words that does not echo
// them, and the per-IP limit covers the page. `letterlock list show` and the
// server's start-up lines print the join link an owner publishes.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openData, startServer, type RunningServer } from '../../../server/app.ts';
import { loadConfig } from '../../../server/config/config.ts';
import { createEventLog } from '../../../server/log/log.ts';
import { setListSettings } from '../../../server/store/settings.ts';
import { getList } from '../../../server/store/lists.ts';
import { addList, initData, SECRET, Sink, spawnServer, stopChild, tempDir } from './harness.ts';

const LIST = 'club@lists.test';
const MODERATED = 'quiet@lists.test';
// Valid, but longer than fastify's 100-character parameter cap.
const LONG = `${'a'.repeat(60)}@${'d'.repeat(50)}.lists.test`;
const HOSTILE_NAME = `<script>alert(1)</script>"'&amp; Club</title><h1>`;
const HOSTILE_DESCRIPTION = `Line one <img src=x onerror=alert(2)>\n</p><a href="javascript:alert(3)">x</a> & "quotes"`;
const PER_IP = 120;

let sink: Sink, dataDir: string, server: RunningServer, base: string, fingerprint: string;

beforeAll(async () => {
  sink = new Sink();
  await sink.start();
  dataDir = tempDir('join-page');
  await initData(dataDir, sink.port, { http: { port: 0, limits: { perIp: { max: PER_IP, windowSeconds: 600 } } } });
  await addList(dataDir, LIST, {}, []);
  await addList(dataDir, MODERATED, { postPolicy: 'moderated' }, []);
  await addList(dataDir, LONG, {}, []);
  const sql = await openData(dataDir, SECRET);
  try {
    const club = (await getList(sql, LIST))!;
    fingerprint = club.listFingerprint;
    await setListSettings(sql, club.id, { name: HOSTILE_NAME, description: HOSTILE_DESCRIPTION });
    await setListSettings(sql, (await getList(sql, MODERATED))!.id, { subscription: 'moderated' });
  } finally {
    await sql.close();
  }
  const { config } = loadConfig(dataDir);
  server = await startServer(dataDir, config, SECRET, { log: createEventLog({ file: join(dataDir, 'logs', 'server.log'), stdout: false }) });
  base = `http://127.0.0.1:${server.httpPort}`;
}, 60_000);

afterAll(async () => {
  await server?.close();
  await sink?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const get = (path: string) => fetch(`${base}${path}`, { redirect: 'manual' });

describe('the join page', () => {
  it('shows the list escaped, with the fingerprint in groups of four, the steps, and a CSP that allows only its own stylesheet', async () => {
    const r = await get(`/join/${LIST}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await r.text();
    // The one stylesheet is the one the hash allows.
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    // Nothing from the list's fields became markup: no script, no img, no link to javascript:.
    expect(html).not.toMatch(/<script|<img|<a href="javascript/i);
    expect(html.match(/<h1/g)).toHaveLength(1);
    expect(html.match(/<\/title>/g)).toHaveLength(1);
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#38;amp; Club&#60;/title&#62;&#60;h1&#62;');
    expect(html).toContain('Line one &#60;img src=x onerror=alert(2)&#62;\n&#60;/p&#62;&#60;a href=&#34;javascript:alert(3)&#34;&#62;x&#60;/a&#62; &#38; &#34;quotes&#34;');
    expect(html).toContain(`<code data-test="join-address">${LIST}</code>`);
    const grouped = fingerprint.match(/.{4}/g)!.join(' ');
    expect(grouped.split(' ')).toHaveLength(fingerprint.length / 4);
    expect(html).toContain(`data-test="join-fingerprint">${grouped}</dd>`);
    expect(html).toContain('data-state="open"');
    expect(html).toContain('click the Letterlock button in your browser\'s toolbar');
    expect(html).toContain(`<code data-test="join-link">${base}/join/${LIST}</code>`);
    expect(html).toContain('No Letterlock yet?');
  });

  it('points software at the registry entry, which is the list the extension looks up', async () => {
    const html = await (await get(`/join/${LIST}`)).text();
    expect(html).toContain(`<meta name="letterlock-list" content="${LIST}">`);
    const href = /<link rel="letterlock-list" href="([^"]+)">/.exec(html)![1]!;
    expect(href).toBe(`${base}/v1/lists/${encodeURIComponent(LIST)}`);
    const info = await (await fetch(href)).json() as { address: string; listKey: { fingerprint: string }; name: string };
    expect(info.address).toBe(LIST);
    expect(info.listKey.fingerprint).toBe(fingerprint);
    expect(info.name).toBe(HOSTILE_NAME);
    // The summary of all lists carries each list's join link.
    const lists = await (await get('/lists')).json() as { address: string; join: string }[];
    expect(lists.find((l) => l.address === LIST)?.join).toBe(`${base}/join/${LIST}`);
  });

  it('reads the address percent-encoded, in capitals, with a trailing slash, and longer than the router\'s parameter cap', async () => {
    for (const path of [`/join/${encodeURIComponent(LIST)}`, `/join/${LIST.toUpperCase()}`, `/join/${LIST}/`]) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(await r.text(), path).toContain(`<meta name="letterlock-list" content="${LIST}">`);
    }
    const long = await get(`/join/${LONG}`);
    expect(long.status).toBe(200);
    expect(await long.text()).toContain(`<h1 data-test="join-name">${LONG}</h1>`);
  });

  it('says who may join a moderated list, with the list address as its name when it has none', async () => {
    const html = await (await get(`/join/${MODERATED}`)).text();
    expect(html).toContain('data-state="moderated"');
    expect(html).toContain('a moderator approves your subscription');
    expect(html).toContain('Members may post; a moderator approves each post first.');
    expect(html).toContain(`<title>Join ${MODERATED}</title>`);
  });

  it('answers an unknown, malformed or oversized address with a 404 page in words that does not echo it', async () => {
    const probes = [
      '/join/nobody@lists.test',
      `/join/${encodeURIComponent('<b>x</b>@lists.test')}`,
      '/join/not-an-address',
      '/join/',
      `/join/${'b'.repeat(250)}@lists.test`,
      `/join/${'%41'.repeat(3000)}@lists.test`,
      `/join/${LIST}/extra`,
    ];
    for (const path of probes) {
      const t0 = Date.now();
      const r = await get(path);
      expect(r.status, path.slice(0, 40)).toBe(404);
      expect(r.headers.get('content-type'), path.slice(0, 40)).toMatch(/^text\/html/);
      expect(r.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
      const html = await r.text();
      expect(html).toContain('No such list here');
      expect(html).toContain('letterlock list show');
      expect(html).not.toMatch(/nobody|&#60;b|<b>|bbbb|AAAA|extra/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    }
  });

  it('counts against the per-IP limit like every other route', async () => {
    let status = 0;
    for (let i = 0; i < PER_IP + 5 && status !== 429; i++) status = (await get(`/join/${LIST}`)).status;
    expect(status).toBe(429);
  });
});

describe('the join link for owners', () => {
  it('letterlock list show prints it (and says publicUrl is unset), and --json carries it', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/main.ts', ...args, '--data', dataDir], {
      cwd: join(import.meta.dirname, '..', '..', '..'), env: { ...process.env, LETTERLOCK_SECRET: SECRET }, encoding: 'utf8', timeout: 60_000,
    });
    const shown = run('list', 'show', LIST);
    expect(shown.status, shown.stderr).toBe(0);
    // Config http.port is 0 here (any free port), so the link names it as configured.
    expect(shown.stdout).toContain(`join page: http://127.0.0.1:0/join/${LIST} (set "publicUrl" in letterlock.json`);
    const json = run('list', 'show', LIST, '--json');
    expect(JSON.parse(json.stdout).joinUrl).toBe(`http://127.0.0.1:0/join/${LIST}`);
  }, 90_000);

  it('letterlock serve prints each list\'s join page on start, at the configured public URL', async () => {
    const dir = tempDir('join-serve');
    await initData(dir, sink.port, { publicUrl: 'https://lists.example.org/' });
    await addList(dir, LIST, {}, []);
    const child = await spawnServer(dir);
    try {
      await expect.poll(() => child.output(), { timeout: 30_000 }).toContain(`letterlock: join page of ${LIST}: https://lists.example.org/join/${LIST}`);
    } finally {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
