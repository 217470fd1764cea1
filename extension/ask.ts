// The callers' side of the bus (extension pages, frames, content script): one
// function that sends a typed request and unwraps the answer.

import browser from 'webextension-polyfill';
import type { Answer, Envelope, RequestType, Requests } from './messages.ts';

export class BusError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'BusError';
  }
}

/** Sends one request to the background and returns its answer or throws a BusError. */
export async function ask<K extends RequestType>(type: K, payload: Requests[K]['req']): Promise<Requests[K]['res']> {
  const envelope: Envelope<K> = { letterlock: 1, type, payload };
  const answer = (await browser.runtime.sendMessage(envelope)) as Answer<Requests[K]['res']> | undefined;
  if (!answer) throw new BusError('INTERNAL', 'Letterlock did not answer. Reload the page.');
  if (!answer.ok) throw new BusError(answer.error.code, answer.error.message);
  return answer.value;
}

