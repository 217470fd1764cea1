// Whether a click in the reader frame counts: the frame must have been in plain
// sight. Chromium: IntersectionObserver v2 (`trackVisibility`) says whether the
// clicked control was unoccluded, unfaded and untransformed on screen (it sees
// overlays that let clicks through, which no DOM check can). Both browsers: the
// content script that placed the frame checks, in its own world, that the frame
// is the topmost element where the click landed and that nothing fades or hides it.

import { ask, BusError } from '../../ask.ts';
import { EXTENSION_ERRORS } from '../../errors.ts';

type V2Entry = IntersectionObserverEntry & { isVisible?: boolean };

const supported = typeof IntersectionObserverEntry !== 'undefined' && 'isVisible' in IntersectionObserverEntry.prototype;
const seen = new WeakMap<Element, boolean>();
const waiting = new WeakMap<Element, (() => void)[]>();
let observer: IntersectionObserver | null = null;
/** How long a click waits for the observer's report: it comes after its 100 ms delay, later on a busy machine. */
const REPORT_WAIT_MS = 3000;

function watch(el: Element): void {
  if (!supported || seen.has(el) || waiting.has(el)) return;
  observer ??= new IntersectionObserver((entries) => {
    for (const e of entries as V2Entry[]) {
      seen.set(e.target, e.isVisible === true);
      for (const f of waiting.get(e.target) ?? []) f();
      waiting.delete(e.target);
    }
  }, { threshold: [1], trackVisibility: true, delay: 100 } as IntersectionObserverInit);
  waiting.set(el, []);
  observer.observe(el);
}

/** Starts watching a control so its visibility is known before it is clicked. */
export function watchControl(el: Element | null): void {
  if (el) watch(el);
}

async function v2Visible(el: Element): Promise<boolean> {
  watch(el);
  if (!seen.has(el)) {
    // The first report comes within the observer's delay; a control clicked before it is waited for.
    await new Promise<void>((resolve) => {
      waiting.get(el)?.push(resolve);
      setTimeout(resolve, REPORT_WAIT_MS);
    });
  }
  if (seen.get(el) !== true && observer) {
    // The last report may predate a scroll that just brought the control into view
    // (the observer reports only crossings, after its delay): ask for a fresh one.
    observer.unobserve(el);
    seen.delete(el);
    waiting.delete(el);
    watch(el);
    await new Promise<void>((resolve) => {
      waiting.get(el)?.push(resolve);
      setTimeout(resolve, REPORT_WAIT_MS);
    });
  }
  return seen.get(el) === true;
}

/** Throws COVERED unless this click counts. */
export async function guardClick(blockId: string, ev: Event): Promise<void> {
  const covered = new BusError('COVERED', EXTENSION_ERRORS.COVERED);
  if (!ev.isTrusted) throw covered;
  const target = ev.currentTarget as Element | null;
  if (supported && target && !(await v2Visible(target))) throw covered;
  const m = ev as MouseEvent;
  // A button pressed with Enter or Space is a click with detail 0 and no pointer position.
  const keyboard = !(m.detail > 0);
  const { visible } = await ask('reader.visible', { blockId, click: { x: keyboard ? 0 : m.clientX, y: keyboard ? 0 : m.clientY, keyboard } });
  if (!visible) throw covered;
}
