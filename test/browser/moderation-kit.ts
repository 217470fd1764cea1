// Shared parts of the moderation browser tests (Chromium and Firefox): the real
// list server with a moderated list whose owner is the browser's user, posts
// held there by a member over real SMTP, and the operator API's view of what is
// still held (to check a decision took effect on the server, not only on screen).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config/config.ts';
import { createEventLog } from '../../server/log/log.ts';
import { addList, compose, initData, listPublicKey, person, SECRET, send, Sink, tempDir, type Person } from '../integration/server/harness.ts';
import { removeDir } from './extension-kit.ts';

export const MOD_LIST = 'board@lists.test';

export class ModeratedList {
  sink = new Sink();
  dataDir = '';
  server: RunningServer | null = null;
  admin = '';
  /** A member whose posts are held. */
  alice!: Person;
  /** The list's owner: the browser's user (key imported into the extension). */
  owner!: Person;

  async start(ownerAddress: string): Promise<void> {
    await this.sink.start();
    this.dataDir = tempDir('ext-moderation');
    await initData(this.dataDir, this.sink.port);
    [this.alice, this.owner] = await Promise.all([person('alice@example.org'), person(ownerAddress)]);
    // The owner is a member too: the server knows their key from that registration.
    await addList(this.dataDir, MOD_LIST, { owner: ownerAddress, postPolicy: 'moderated' }, [this.alice, this.owner]);
    const { config } = loadConfig(this.dataDir);
    this.server = await startServer(this.dataDir, config, SECRET, { log: createEventLog({ file: join(this.dataDir, 'logs', 'server.log'), stdout: false }) });
    this.admin = readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
  }

  get base(): string {
    return `http://127.0.0.1:${this.server!.httpPort}`;
  }

  async fingerprint(): Promise<string> {
    return ((await (await fetch(`${this.base}/v1/lists/${MOD_LIST}`)).json()) as { listKey: { fingerprint: string } }).listKey.fingerprint;
  }

  /** Held post ids on the server right now (operator API). */
  async heldIds(): Promise<number[]> {
    const r = await fetch(`${this.base}/v1/admin/lists/${MOD_LIST}/held`, { headers: { authorization: `Bearer ${this.admin}` } });
    return ((await r.json()) as { held: Array<{ id: number }> }).held.map((h) => h.id);
  }

  /** Alice posts; the list holds it. Resolves to the held id once the server lists it. */
  async holdPost(subject: string, text: string): Promise<number> {
    const before = new Set(await this.heldIds());
    await send(this.server!.smtpPort, this.alice.address, MOD_LIST, await compose(this.alice, MOD_LIST, await listPublicKey(this.dataDir, MOD_LIST), text, subject));
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      const fresh = (await this.heldIds()).find((id) => !before.has(id));
      if (fresh !== undefined) return fresh;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the post was not held');
  }

  /** Waits until the server holds exactly these ids. */
  async waitHeld(ids: number[], timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let now: number[] = [];
    while (Date.now() < end) {
      now = await this.heldIds();
      if (now.length === ids.length && ids.every((i) => now.includes(i))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`held posts are ${JSON.stringify(now)}, not ${JSON.stringify(ids)}`);
  }

  async stop(): Promise<void> {
    await this.server?.close();
    await this.sink.stop();
    removeDir(this.dataDir);
  }
}
