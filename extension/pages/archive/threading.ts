// Threads as people read them: the root, then each reply under the message it
// answers (In-Reply-To, else the nearest earlier message its References name),
// oldest first among siblings. Pure, so it is unit-tested without a browser.

export interface ThreadMessage {
  id: number;
  messageId: string | null;
  inReplyTo: string | null;
  references?: string[];
}

export interface NestedRow {
  id: number;
  /** 0 for the root; capped at MAX_DEPTH so deep threads stay readable. */
  depth: number;
  parentId: number | null;
}

export const MAX_DEPTH = 8;
/** How many References a message may name that are looked at (the server keeps at most 100). */
const MAX_REFS = 100;

/**
 * Orders one thread's messages for display. A parent must come earlier in the
 * archive (a smaller id) than its reply, so a loop of forged headers cannot form
 * a cycle; a reply whose parent is not in the thread hangs under the root.
 */
export function nestThread(messages: readonly ThreadMessage[]): NestedRow[] {
  const sorted = [...messages].sort((a, b) => a.id - b.id);
  if (sorted.length === 0) return [];
  const byMessageId = new Map<string, number>();
  for (const m of sorted) if (m.messageId && !byMessageId.has(m.messageId)) byMessageId.set(m.messageId, m.id);
  const root = sorted[0]!.id;
  const parent = new Map<number, number | null>();
  const children = new Map<number, number[]>();
  for (const m of sorted) {
    let p: number | null = null;
    if (m.id !== root) {
      const candidates = [m.inReplyTo, ...(m.references ?? []).slice(-MAX_REFS).reverse()];
      for (const c of candidates) {
        const hit = c ? byMessageId.get(c) : undefined;
        if (hit !== undefined && hit < m.id) {
          p = hit;
          break;
        }
      }
      p ??= root;
    }
    parent.set(m.id, p);
    if (p !== null) children.set(p, [...(children.get(p) ?? []), m.id]);
  }
  // Depth-first, with an explicit stack: input decides the depth, not the call stack.
  const out: NestedRow[] = [];
  const stack: { id: number; depth: number }[] = [{ id: root, depth: 0 }];
  while (stack.length > 0) {
    const { id, depth } = stack.pop()!;
    out.push({ id, depth: Math.min(depth, MAX_DEPTH), parentId: parent.get(id) ?? null });
    const kids = children.get(id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ id: kids[i]!, depth: depth + 1 });
  }
  return out;
}

/** Newest thread first: the thread started last comes first (the server pages the same way). */
export function newestFirst<T extends { rootId: number }>(threads: readonly T[]): T[] {
  return [...threads].sort((a, b) => b.rootId - a.rootId);
}
