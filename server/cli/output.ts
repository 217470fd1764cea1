// What the command prints: human text by default (aligned tables, dates, sizes,
// plurals), one JSON document with --json, and CliError with an exit code that
// means something: 0 ok, 1 refused, 2 usage, 3 not reachable or not initialized.

export const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, UNREACHABLE: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error meant for the operator: its message is one line they can act on. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(message: string, readonly exitCode: ExitCode = EXIT.REFUSED, readonly code?: string) {
    super(message);
  }
}

/** Aligned columns, two blanks apart; no line ends in blanks. */
export function table(rows: readonly (readonly string[])[], header?: readonly string[]): string {
  const all = header ? [header, ...rows] : rows;
  if (all.length === 0) return '';
  const n = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: n }, (_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** "2026-12-02 22:40 UTC": readable and unambiguous; --json carries ISO 8601. */
export function date(t: number | Date | null | undefined): string {
  if (t === null || t === undefined) return '-';
  const d = typeof t === 'number' ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) return '-';
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function iso(t: number | Date | null | undefined): string | null {
  if (t === null || t === undefined) return null;
  const d = typeof t === 'number' ? new Date(t) : t;
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** "1 member", "2 members". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "1m 05s", "2h 03m": durations for rates and ETAs. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export interface OutputOptions {
  json?: boolean;
}

/** Prints either the JSON shape or the human text; stdout carries data only. */
export function emit(o: OutputOptions, data: unknown, human: () => string): void {
  if (o.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else {
    const text = human();
    if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/**
 * A remark for a person (e.g. "No held posts."): on stderr, as kubectl does, so
 * stdout stays empty for scripts when there is nothing to list. Never with --json.
 */
export function note(o: OutputOptions, text: string): void {
  if (!o.json) process.stderr.write(`${text}\n`);
}
