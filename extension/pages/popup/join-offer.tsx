// The popup on a list's join page (GET /join/<address> of a list server): it
// offers "Join <list name>" and opens the join step with that link. The page is
// read only through the activeTab grant the toolbar click gives (its URL and
// title), never by a content script or host access. The address and server come
// from the URL the browser shows; the title only names the list, and the server
// is shown beside it, since any site could serve a page shaped like this. The
// list key's fingerprint is still compared in the join step.

import { useEffect, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { insecureServer } from '../../loopback.ts';
import { joinPageUrl, offerFromTab, type JoinOffer } from '../options/join.ts';
import { joinWords } from '../ui/words.ts';

/**
 * The tab under the popup: the active tab of the popup's own window. `checked`
 * once the browser answered (a tab without the activeTab grant has no URL).
 */
export function useJoinOffer(): { offer: JoinOffer | null; checked: boolean } {
  const [found, setFound] = useState<{ offer: JoinOffer | null; checked: boolean }>({ offer: null, checked: false });
  useEffect(() => {
    const none = () => setFound({ offer: null, checked: true });
    void browser.tabs.query({ active: true, currentWindow: true }).then((tabs) => setFound({ offer: offerFromTab(tabs[0]), checked: true }), none);
  }, []);
  return found;
}

export function JoinOfferCard({ offer, hasKey, open }: { offer: JoinOffer; hasKey: boolean; open: (path: string) => void }) {
  const { target, name } = offer;
  const host = new URL(target.server).host;
  if (insecureServer(target.server)) {
    return <p class="warning" data-test="join-offer" data-test-state="insecure">This join page comes over plain http from {host}. Letterlock joins lists only over https (or on this computer). Ask the list owner for an https join link.</p>;
  }
  return (
    <div class="card" data-test="join-offer" data-test-state="offer" data-list={target.address}>
      <p class="muted">{hasKey ? 'This page is a list\'s join page.' : 'This page is a list\'s join page. Set up Letterlock first: the list is filled in for you at the end.'}</p>
      <button type="button" class="primary" data-test="join-offer-button" onClick={() => open(`extension/pages/options/index.html#join=${encodeURIComponent(joinPageUrl(target))}`)}>{joinWords.offer(name)}</button>
      <p class="muted" data-test="join-offer-where">{joinWords.offerAt(target.address, host)}</p>
    </div>
  );
}
