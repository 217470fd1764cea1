// The stack's life cycle: every process it starts is gone after stop(), and also
// when a step fails half way (the parts already started are stopped, the folder
// removed, and the error says which step failed).

import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startMailStack, StackError } from './mailstack.ts';
import { processesUsing } from './procs.ts';

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });
}

describe('mail stack life cycle', () => {
  it('starts Dovecot, Postfix, Roundcube and the list server; stop() leaves no process, port or folder behind', async () => {
    const stack = await startMailStack();
    let stopped = false;
    try {
      const commands = processesUsing(stack.root).map((p) => p.command);
      expect(commands.some((c) => c.includes('dovecot'))).toBe(true);
      expect(commands.some((c) => /postfix\/sbin\/master/.test(c))).toBe(true);
      expect(commands.some((c) => c.startsWith('php ') && c.includes('-S 127.0.0.1:'))).toBe(true);
      const ports = Object.values(stack.ports).filter((p): p is number => typeof p === 'number');
      expect(new Set(ports).size).toBe(ports.length);
      await stack.stop();
      stopped = true;
      expect(processesUsing(stack.root)).toEqual([]);
      expect(existsSync(stack.root)).toBe(false);
      for (const p of ports) expect(await refused(p), `port ${p} closed`).toBe(true);
    } finally {
      if (!stopped) await stack.stop();
    }
  }, 60_000);

  for (const step of ['dovecot', 'roundcube'] as const) {
    it(`a failure right after ${step} starts stops everything already started`, async () => {
      const err = await startMailStack({ failAfter: step }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(StackError);
      const message = (err as Error).message;
      expect(message).toContain(`failing on purpose after ${step}`);
      const root = /mail stack in (\S+):/.exec(message)?.[1];
      expect(root).toMatch(/letterlock-stack-/);
      expect(processesUsing(root!)).toEqual([]);
      expect(existsSync(root!)).toBe(false);
    }, 60_000);
  }

  it('refuses bad options with a clear error before starting anything', async () => {
    await expect(startMailStack({ users: ['Alice Smith'] })).rejects.toThrow(/bad user name/);
    await expect(startMailStack({ userDomain: 'example.test', listDomain: 'example.test' })).rejects.toThrow(/must differ/);
  });
});
