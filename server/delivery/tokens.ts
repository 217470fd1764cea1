// Per-recipient tokens derived from the server secret: the VERP envelope sender
// (list+bounces-<delivery>-<mac>@domain) that tells which copy bounced, and the
// one-click unsubscribe token of RFC 8058.

import { tokenKey } from '../config/secret.ts';

export interface Tokens {
  bounceAddress(listAddress: string, deliveryId: number): string;
  /** Returns the delivery id when `address` is a valid bounce address of `listAddress`. */
  parseBounceAddress(listAddress: string, address: string): number | null;
  unsubscribeToken(listAddress: string, member: string): string;
}

export function splitAddress(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

export function createTokens(secret: string): Tokens {
  const verp = tokenKey(secret, 'verp');
  const unsub = tokenKey(secret, 'unsubscribe');
  return {
    bounceAddress(listAddress, id) {
      const { local, domain } = splitAddress(listAddress);
      return `${local}+bounces-${id}-${verp(`${listAddress}:${id}`)}@${domain}`;
    },
    parseBounceAddress(listAddress, address) {
      const { local, domain } = splitAddress(listAddress);
      const m = /^(.+)\+bounces-(\d{1,15})-([0-9a-f]{16})@(.+)$/.exec(address.toLowerCase());
      if (!m || m[1] !== local || m[4] !== domain) return null;
      const id = Number(m[2]);
      return verp(`${listAddress}:${id}`) === m[3] ? id : null;
    },
    unsubscribeToken: (listAddress, member) => unsub(`${listAddress}:${member.toLowerCase()}`),
  };
}
