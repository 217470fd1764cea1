// Rate limits that add up: a request is checked against every limit that applies
// to it (per IP, per route, per named address, per list) and counted under each
// only when all of them pass, so a refused request spends nobody's quota. Kept in
// the database (a sliding window, one row per counted request), so the bounds hold
// across restarts and across processes sharing the database. Keys are stored as
// keyed hashes: the table holds no IP address and no mail address.

import { createHmac } from 'node:crypto';
import { ApiFailure } from '../http/errors.ts';
import type { Sql } from '../store/db.ts';
import { addRateEvent, lockKeys, rateWindow } from '../store/registry.ts';

export interface Rate {
  max: number;
  windowSeconds: number;
}

/** One limit to pass: at most rate.max events per window for (bucket, key). */
export interface Rule {
  bucket: string;
  key: string;
  rate: Rate;
}

export class RateLimited extends ApiFailure {
  constructor(readonly retryAfterSeconds: number, message = `Too many requests; try again in ${retryAfterSeconds} s.`) {
    super(429, 'RATE_LIMITED', message);
    this.retryAfter = retryAfterSeconds;
  }
}

export class Limiter {
  private readonly salt: Buffer;

  constructor(private readonly sql: Sql, secret: string, private readonly now: () => number = Date.now) {
    this.salt = createHmac('sha256', secret).update('letterlock rate-limit keys').digest();
  }

  private hash(bucket: string, key: string): string {
    return createHmac('sha256', this.salt).update(`${bucket}\0${key}`).digest('base64url').slice(0, 27);
  }

  /**
   * Counts the event under every rule when all of them pass and returns 0;
   * otherwise counts nothing and returns the seconds until every failing rule
   * has room again. One transaction, so check and count cannot interleave (not
   * even between processes sharing the database).
   */
  async tryTake(rules: Rule[]): Promise<number> {
    const now = this.now();
    const keys = rules.map((r) => this.hash(r.bucket, r.key));
    return this.sql.tx(async () => {
      await lockKeys(this.sql, rules.map((r, i) => [r.bucket, keys[i]!] as const));
      let wait = 0;
      for (const [i, r] of rules.entries()) {
        const windowMs = r.rate.windowSeconds * 1000;
        const since = now - windowMs;
        const { n, at } = await rateWindow(this.sql, r.bucket, keys[i]!, since, 0);
        if (n < r.rate.max) continue;
        // Room returns when enough of the oldest events leave the window.
        const nth = n - r.rate.max;
        const freeing = nth === 0 ? at : (await rateWindow(this.sql, r.bucket, keys[i]!, since, nth)).at;
        wait = Math.max(wait, Math.max(1, Math.ceil(((freeing ?? now) + windowMs - now) / 1000)));
      }
      if (wait > 0) return wait;
      for (const [i, r] of rules.entries()) await addRateEvent(this.sql, r.bucket, keys[i]!, now, now + r.rate.windowSeconds * 1000);
      return 0;
    });
  }

  /** tryTake, refusing with 429 and Retry-After when a limit is reached. */
  async take(rules: Rule[], message?: (seconds: number) => string): Promise<void> {
    const wait = await this.tryTake(rules);
    if (wait > 0) throw new RateLimited(wait, message?.(wait));
  }
}
