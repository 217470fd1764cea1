// Permalinks into the archive viewer: the extension's archive page with the list
// and the message in the fragment, e.g. …/archive/index.html#list=club%40lists.test&msg=42
// (an archive number) or &mid=<Message-ID>. The fragment never reaches a server.

export type MessageKey = { id: number } | { messageId: string };

export interface Permalink {
  list: string;
  message: MessageKey | null;
}

const MAX_FRAGMENT = 2000;

/** Reads a fragment (with or without '#'); null when it names no list or is malformed. */
export function parsePermalink(hash: string): Permalink | null {
  if (hash.length > MAX_FRAGMENT) return null;
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const list = p.get('list')?.trim().toLowerCase() ?? '';
  if (!/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(list)) return null;
  const msg = p.get('msg');
  const mid = p.get('mid');
  if (msg !== null) {
    if (!/^[1-9][0-9]{0,15}$/.test(msg) || !Number.isSafeInteger(Number(msg))) return null;
    return { list, message: { id: Number(msg) } };
  }
  if (mid !== null) {
    if (mid.length < 1 || mid.length > 998) return null;
    return { list, message: { messageId: mid } };
  }
  return { list, message: null };
}

export function permalinkFragment(list: string, message: MessageKey | null): string {
  const p = new URLSearchParams({ list });
  if (message) {
    if ('id' in message) p.set('msg', String(message.id));
    else p.set('mid', message.messageId);
  }
  return `#${p}`;
}

/** The full URL of this page for a message, for copying. */
export function permalinkUrl(pageUrl: string, list: string, message: MessageKey | null): string {
  return pageUrl.replace(/[?#].*$/, '') + permalinkFragment(list, message);
}
