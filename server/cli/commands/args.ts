// Option value parsers: a bad value is a usage error (exit 2) naming the option.

import { InvalidArgumentError } from 'commander';
import { normalizeAddress } from '../../lists/lists.ts';
import { MAX_REPLAY_WINDOW_DAYS } from '../../store/lists.ts';

function intIn(min: number, max: number, what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${what} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${what} must be between ${min} and ${max}`);
    return n;
  };
}

export const portArg = intIn(0, 65535, 'a port');
export const maxBytesArg = intIn(1024, 200 * 1024 * 1024, 'the size in bytes');
export const windowDaysArg = intIn(1, MAX_REPLAY_WINDOW_DAYS, 'the number of days');
export const idArg = intIn(1, Number.MAX_SAFE_INTEGER, 'an id');

export function oneOf<T extends string>(values: readonly T[]) {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw new InvalidArgumentError(`choose one of ${values.join(', ')}`);
    return v as T;
  };
}

export function relayArg(v: string): string {
  if (!/^smtps?:\/\/[^\s]+$/.test(v)) throw new InvalidArgumentError('expected smtp://host:port or smtps://host:port');
  return v;
}

export function addressArg(v: string): string {
  try {
    return normalizeAddress(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** Repeated options (--poster A --poster B) collect into a list. */
export function collectAddress(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), addressArg(v)];
}
