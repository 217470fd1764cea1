// Finds the encrypted part of PGP/MIME mail (RFC 3156) that a webmail lists as an
// attachment because it cannot show it. Pure DOM and URL work: no crypto, nothing
// fetched here. Only the webmail's own attachment list is trusted, never links in
// a message body (a mail could otherwise name any same-origin URL to be fetched).

/** File names senders give the encrypted part (Letterlock, Enigmail, Thunderbird, Mailvelope). */
const ENCRYPTED_NAMES = /^(encrypted\.asc|msg\.asc|openpgp-encrypted-message\.asc)$/i;

export interface EncryptedAttachment {
  /** The attachment's link (marks it handled). */
  link: Element;
  /** Where the armored text is downloaded from: same origin as the page. */
  url: string;
  /** Puts the reader frame (or a note) where the webmail says it cannot show the message. */
  place(el: Element): void;
}

/** The visible file name of an attachment link (Roundcube adds the size after it). */
function nameOf(link: Element): string {
  const named = link.querySelector('.attachment-name');
  return (named?.textContent ?? link.textContent ?? '').replace(/\s*\(~?[\d.,]+\s*[KMG]?B\)\s*$/i, '').trim();
}

/**
 * Roundcube 1.6: `#attachment-list li a` with `?_task=mail&_action=get&_uid=…&_part=…&_token=…`;
 * adding `_download=1` returns the part's bytes as stored (the CSRF token is already in the link).
 */
function roundcube(doc: Document, seen: WeakSet<Element>): EncryptedAttachment[] {
  const out: EncryptedAttachment[] = [];
  const body = doc.getElementById('messagebody');
  for (const link of doc.querySelectorAll('#attachment-list li a[href]')) {
    if (seen.has(link) || body?.contains(link) || !ENCRYPTED_NAMES.test(nameOf(link))) continue;
    let url: URL;
    try {
      url = new URL(link.getAttribute('href')!, doc.baseURI);
    } catch {
      continue;
    }
    const q = url.searchParams;
    if (url.origin !== doc.location.origin || q.get('_task') !== 'mail' || q.get('_action') !== 'get' || !q.get('_uid') || !q.get('_part')) continue;
    q.set('_download', '1');
    out.push({
      link,
      url: url.href,
      place(el) {
        if (body) {
          // Roundcube's "This is an encrypted message and can not be displayed" gives way to the reader.
          for (const w of body.querySelectorAll(':scope > .boxwarning')) (w as HTMLElement).style.display = 'none';
          body.prepend(el);
        } else {
          link.closest('#attachment-list')!.after(el);
        }
      },
    });
  }
  return out;
}

/** Encrypted parts listed as attachments in this document, not yet in `seen`. */
export function encryptedAttachments(doc: Document, seen: WeakSet<Element>): EncryptedAttachment[] {
  return roundcube(doc, seen);
}
