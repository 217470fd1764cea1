// Plain http:// is allowed for a list server only on this computer, where no
// network can swap the list key on the way. Shared by the background (which
// refuses) and the options page (which says so before asking the browser for access).

/** localhost, *.localhost and 127.0.0.0/8, as URL.hostname gives them, and [::1]. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** True for an http:// address that leaves this computer. */
export function insecureServer(input: string): boolean {
  try {
    const u = new URL(input.trim());
    return u.protocol === 'http:' && !isLoopback(u.hostname);
  } catch {
    return false;
  }
}

/**
 * What a person types for a site or server, as a URL: "mail.example.org" becomes
 * https://mail.example.org, and a host on this computer ("127.0.0.1:8025",
 * "localhost:8080") http://, since that is how local test servers run. Anything
 * with a scheme is left as typed (a wrong one is refused by the caller).
 */
export function withScheme(input: string): string {
  const s = input.trim();
  // Only what reads as a host name (and port, path) gets a scheme; anything else stays
  // as typed, so the caller refuses it (browsers would take "lists dot test" as a host).
  const m = /^([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::\d{1,5})?(?:[/?#]\S*)?$/.exec(s);
  if (!m) return s;
  return `${isLoopback(m[1]!) ? 'http' : 'https'}://${s}`;
}
