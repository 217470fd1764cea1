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
