// No import circle runs through server/store/ (issue 13: sql.ts and registry.ts
// imported each other). Type-only imports count too, as madge counts them: the
// schema lives in migrations.ts, which imports no repository module.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of each file (static ones: the only kind a cycle matters for at load). */
function graph(files: string[]): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    const deps = [...src.matchAll(/(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+\.ts)['"]/g)].map((m) => resolve(dirname(f), m[1]!));
    g.set(f, deps);
  }
  return g;
}

function cycles(g: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 1) found.push(stack.slice(stack.indexOf(d)).concat(d).map((x) => relative(ROOT, x)).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

it('finds a cycle when there is one (the checker itself)', () => {
  const a = resolve(ROOT, 'a.ts');
  const b = resolve(ROOT, 'b.ts');
  expect(cycles(new Map([[a, [b]], [b, [a]]]))).toEqual(['a.ts -> b.ts -> a.ts']);
});

it('no import circle passes through server/store/', () => {
  const g = graph([...tsFiles(join(ROOT, 'server')), ...tsFiles(join(ROOT, 'shared'))]);
  // sql.ts (the Sql interface every store is built on) imports no repository module.
  expect(g.get(join(ROOT, 'server', 'store', 'sql.ts'))).toEqual([]);
  expect(cycles(g).filter((c) => c.includes('server/store/'))).toEqual([]);
});
