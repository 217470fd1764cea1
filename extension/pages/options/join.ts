// What a user may paste to join a list: the list's address (with the server's
// address beside it), or a join link. The list server publishes no join page of
// its own today, so a join link is the URL of the list in the server's registry
// API: https://lists.example.org/v1/lists/club%40lists.example.org (or the
// unversioned /lists/<address> summary URL); both name the server and the list.

export interface JoinTarget {
  address: string;
  server: string;
}

const ADDRESS = /^[^\s@/]+@[^\s@/]+\.[^\s@/]+$/;

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
  const m = /^(.*?)\/(?:v1\/)?lists\/([^/]+)\/?$/.exec(url.pathname);
  if (!m) return null;
  let address: string;
  try {
    address = decodeURIComponent(m[2]!).toLowerCase();
  } catch {
    return null;
  }
  if (!ADDRESS.test(address)) return null;
  return { address, server: `${url.origin}${m[1]!.replace(/\/+$/, '')}` };
}

/** A join link carried in the options page's own address: #join=<link>. */
export function joinFromHash(hash: string): JoinTarget | null {
  const m = /^#join=(.+)$/.exec(hash);
  if (!m) return null;
  try {
    return parseJoinLink(decodeURIComponent(m[1]!));
  } catch {
    return null;
  }
}
