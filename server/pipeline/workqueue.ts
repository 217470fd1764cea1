// A bounded work queue in front of the pipeline: at most `concurrency` posts are
// processed at once and at most `maxWaiting` wait. Beyond that the caller is told
// at once (SMTP answers 451, the sender's MTA retries later), so a flood of mail
// cannot pile up unbounded memory.

export class Busy extends Error {
  override name = 'Busy';
}

export class WorkQueue {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly concurrency: number, private readonly maxWaiting: number) {}

  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) throw new Busy('pipeline is full');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // hand the slot over without releasing it
      else this.active--;
    }
  }
}
