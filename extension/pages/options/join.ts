// What a user may paste to join a list: a join link, or the list's address.
// A join link is the list's join page on its server (GET /join/<address>, what
// `letterlock list show` prints and the owner publishes), or the list's URL in
// the server's registry API (/v1/lists/<address>, or the unversioned
// /lists/<address> summary): each names the server and the list. A bare address
// names no server: the options page then offers the address's own domain over
// https (see guessServer) and asks the browser for access to it first.

export interface JoinTarget {
  address: string;
  server: string;
}

const ADDRESS = /^[^\s@/]+@[^\s@/]+\.[^\s@/]+$/;
/** A domain name as URL.hostname gives it (no port, no IP literal brackets). */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** A join link read into its server and list address, or null when it is not one. */
export function parseJoinLink(input: string): JoinTarget | null {
  const text = input.trim();
  if (text.length > 2048 || !/^https?:\/\//i.test(text)) return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  // Credentials in a link are never the list server's business.
  if (url.username || url.password) return null;
  const m = /^(.*?)\/(?:v1\/lists|lists|join)\/([^/]+)\/?$/.exec(url.pathname);
  if (!m) return null;
  let address: string;
  try {
    address = decodeURIComponent(m[2]!).toLowerCase();
  } catch {
    return null;
  }
  if (address.length > 254 || !ADDRESS.test(address)) return null;
  return { address, server: `${url.origin}${m[1]!.replace(/\/+$/, '')}` };
}

/** The list's join page: what the popup opens the join step with, and what owners publish. */
export function joinPageUrl(t: JoinTarget): string {
  return `${t.server}/join/${encodeURIComponent(t.address).replace(/%40/g, '@')}`;
}

/**
 * A bare list address with no server given: the server guessed from the
 * address's domain, https only (a guess that leaves this computer is never
 * plain http). Null when the input is not a plain address.
 */
export function guessServer(input: string): string | null {
  const a = input.trim().toLowerCase();
  if (a.length > 254 || !ADDRESS.test(a)) return null;
  const domain = a.slice(a.lastIndexOf('@') + 1);
  return DOMAIN.test(domain) ? `https://${domain}` : null;
}

/** A join link carried in the options page's own address: #join=<link>. */
export function joinFromHash(hash: string): JoinTarget | null {
  if (hash.length > 8192) return null;
  const m = /^#join=(.+)$/.exec(hash);
  if (!m) return null;
  try {
    return parseJoinLink(decodeURIComponent(m[1]!));
  } catch {
    return null;
  }
}

export interface JoinOffer {
  target: JoinTarget;
  name: string;
}

/**
 * The popup's offer on a tab showing a join page: the list from the tab's URL,
 * its name from the page's title. The join page's title is "Join <name>" (server/http/join-page.ts);
 * anything else names the list by its address.
 */
export function offerFromTab(tab: { url?: string | undefined; title?: string | undefined } | undefined): JoinOffer | null {
  if (!tab?.url) return null;
  const target = parseJoinLink(tab.url);
  // Only the join page itself, not the registry's JSON the same parser reads.
  if (!target || !/\/join\/[^/]+\/?$/.test(new URL(tab.url.trim()).pathname)) return null;
  const title = (tab.title ?? '').trim();
  const name = /^Join \S/.test(title) ? title.slice(5, 125).trim() : target.address;
  return { target, name };
}
