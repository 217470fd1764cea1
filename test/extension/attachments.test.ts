// @vitest-environment happy-dom
// Finding the encrypted part of PGP/MIME mail that Roundcube lists as an
// attachment: only its own attachment list, only same-origin download links of a
// message part, never links a mail's body could carry.

import { beforeEach, describe, expect, it } from 'vitest';
import { encryptedAttachments } from '../../extension/content/attachments.ts';

const GET = '/?_task=mail&_action=get&_mbox=INBOX&_uid=2&_token=tok&_part=2';

function attachment(name: string, href = GET): string {
  return `<li class="application octet-stream asc"><a href="${href}" class="filename"><span class="attachment-name">${name}</span><span class="attachment-size">(~1 KB)</span></a></li>`;
}

function page(items: string, body = '<span class="ui alert alert-warning boxwarning">This is an encrypted message and can not be displayed. Sorry!</span>'): void {
  // Roundcube 1.6 (elastic) message view, as rendered (test fixture written by the test itself).
  document.body.innerHTML = `<ul id="attachment-list" class="attachmentslist">${items}</ul><div id="messagebody">${body}</div>`;
}

describe('encryptedAttachments (Roundcube)', () => {
  beforeEach(() => {
    document.body.innerHTML = '';
  });

  it('finds encrypted.asc and asks for the download form of the same part, on the same origin', () => {
    page(attachment('encrypted.asc'));
    const found = encryptedAttachments(document, new WeakSet());
    expect(found).toHaveLength(1);
    const url = new URL(found[0]!.url);
    expect(url.origin).toBe(location.origin);
    expect(Object.fromEntries(url.searchParams)).toEqual({ _task: 'mail', _action: 'get', _mbox: 'INBOX', _uid: '2', _token: 'tok', _part: '2', _download: '1' });
  });

  it('places the reader at the top of the message body and hides "can not be displayed"', () => {
    page(attachment('encrypted.asc'));
    const [found] = encryptedAttachments(document, new WeakSet());
    const frame = document.createElement('div'); // stands in for the reader frame
    found!.place(frame);
    const body = document.getElementById('messagebody')!;
    expect(body.firstElementChild).toBe(frame);
    expect((body.querySelector('.boxwarning') as HTMLElement).style.display).toBe('none');
  });

  it('also takes the names other OpenPGP mailers give the part', () => {
    page(attachment('msg.asc') + attachment('OpenPGP-encrypted-message.asc', GET.replace('_part=2', '_part=3')));
    expect(encryptedAttachments(document, new WeakSet())).toHaveLength(2);
  });

  it('leaves other attachments, other sites, other actions and links inside the mail body alone', () => {
    page(
      attachment('report.pdf') +
      attachment('encrypted.asc', `https://elsewhere.example${GET}`) +
      attachment('encrypted.asc', GET.replace('_action=get', '_action=delete')) +
      attachment('encrypted.asc', GET.replace('&_part=2', '')),
      // A mail's own HTML could hold a look-alike list: it is inside #messagebody.
      `<ul id="attachment-list"><li><a href="${GET}"><span class="attachment-name">encrypted.asc</span></a></li></ul>`,
    );
    expect(encryptedAttachments(document, new WeakSet())).toEqual([]);
  });

  it('skips a link already handled', () => {
    page(attachment('encrypted.asc'));
    const seen = new WeakSet<Element>();
    for (const f of encryptedAttachments(document, seen)) seen.add(f.link);
    expect(encryptedAttachments(document, seen)).toEqual([]);
  });
});
