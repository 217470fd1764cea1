import { describe, expect, it } from 'vitest';
import { Busy, WorkQueue } from '../../../server/pipeline/workqueue.ts';

describe('WorkQueue', () => {
  it('runs at most `concurrency` tasks, queues `maxWaiting`, refuses the rest at once', async () => {
    const q = new WorkQueue(2, 1);
    let running = 0;
    let peak = 0;
    const gates: Array<() => void> = [];
    const task = () => q.run(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => gates.push(r));
      running--;
    });
    const a = task();
    const b = task();
    const c = task();
    await expect(task()).rejects.toBeInstanceOf(Busy);
    await new Promise((r) => setTimeout(r, 10));
    expect(q.load).toEqual({ active: 2, waiting: 1 });
    while (gates.length || running) {
      gates.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all([a, b, c]);
    expect(peak).toBe(2);
    expect(q.load).toEqual({ active: 0, waiting: 0 });
  });
  it('releases the slot when a task throws', async () => {
    const q = new WorkQueue(1, 0);
    await expect(q.run(async () => { throw new Error('x'); })).rejects.toThrow('x');
    await expect(q.run(async () => 7)).resolves.toBe(7);
  });
});
