// Search over the messages decrypted on this page: subject, author and body
// text, case-insensitive, every word of the query must appear. The index lives
// in this page's memory only (never in storage, never in the background's
// database) and is dropped when the page closes or the list changes. It is
// bounded in messages and in characters, and says when the bound was reached.

export interface Searchable {
  id: number;
  subject: string | null;
  author: string | null;
  text: string | null;
  date: string | null;
}

export interface Hit {
  id: number;
  subject: string | null;
  author: string | null;
  date: string | null;
  /** A little of the text around the first match (or its start). */
  snippet: string;
}

export const MAX_INDEXED_MESSAGES = 2000;
/** Characters of body text kept per message; a longer body is searched in its first part. */
export const MAX_TEXT_PER_MESSAGE = 100_000;
/** Characters in the whole index (about 2 bytes each in memory). */
export const MAX_INDEX_CHARS = 20_000_000;
const MAX_QUERY_WORDS = 16;
const MAX_QUERY_CHARS = 500;

interface Entry extends Searchable {
  hay: string;
}

function fold(s: string): string {
  return s.normalize('NFKC').toLocaleLowerCase();
}

export class SearchIndex {
  private readonly entries = new Map<number, Entry>();
  private chars = 0;
  /** Set once a message was turned away because a bound was reached. */
  full = false;

  constructor(private readonly maxMessages = MAX_INDEXED_MESSAGES, private readonly maxChars = MAX_INDEX_CHARS) {}

  get size(): number {
    return this.entries.size;
  }

  has(id: number): boolean {
    return this.entries.has(id);
  }

  /** Adds a message; false (and `full`) when the index has no room for it. */
  add(m: Searchable): boolean {
    if (this.entries.has(m.id)) return true;
    const text = (m.text ?? '').slice(0, MAX_TEXT_PER_MESSAGE);
    const hay = fold([m.subject ?? '', m.author ?? '', text].join('\n'));
    if (this.entries.size >= this.maxMessages || this.chars + hay.length + text.length > this.maxChars) {
      this.full = true;
      return false;
    }
    this.entries.set(m.id, { ...m, text, hay });
    this.chars += hay.length + text.length;
    return true;
  }

  /** Messages holding every word of the query, newest (highest id) first. */
  search(query: string, limit = 100): Hit[] {
    const words = fold(query.slice(0, MAX_QUERY_CHARS)).split(/\s+/).filter(Boolean).slice(0, MAX_QUERY_WORDS);
    if (words.length === 0) return [];
    const hits: Hit[] = [];
    const ids = [...this.entries.keys()].sort((a, b) => b - a);
    for (const id of ids) {
      const e = this.entries.get(id)!;
      if (!words.every((w) => e.hay.includes(w))) continue;
      hits.push({ id, subject: e.subject, author: e.author, date: e.date, snippet: snippet(e.text ?? '', words[0]!) });
      if (hits.length >= limit) break;
    }
    return hits;
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
    this.full = false;
  }
}

function snippet(text: string, word: string): string {
  const at = fold(text).indexOf(word);
  const start = Math.max(0, at < 0 ? 0 : at - 60);
  const s = text.slice(start, start + 160).replace(/\s+/g, ' ').trim();
  return (start > 0 ? '…' : '') + s + (start + 160 < text.length ? '…' : '');
}
