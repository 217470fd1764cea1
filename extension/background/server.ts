// The list server's HTTP API as the background uses it. Every answer is checked
// against the shared zod schemas before use; errors come back as the server's
// own code and sentence. Sizes are bounded before parsing.

import type { z } from 'zod';
import {
  API_PREFIX, ApiError, ArchiveMessages, ChallengeResponse, ConfirmResponse, ListInfo, LoginResponse, MemberKey,
  SignedRequestResponse, SubscribeResponse, Thread, ThreadPage,
  type ArchiveMessagesRequest, type ConfirmRequest, type LoginRequest, type SignedRequest, type SubscribeRequest,
} from '../../shared/api/types.ts';
import { DecisionResponse, HeldList, HeldMessages, type HeldMessagesRequest, type SignedDecision } from '../../shared/api/moderation.ts';
import { ExtensionError, refuse } from '../errors.ts';
import { isLoopback } from '../loopback.ts';

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

const MAX_ANSWER = 1024 * 1024;
const MAX_ARCHIVE_ANSWER = 64 * 1024 * 1024;

/** A server address typed by the user, made canonical: http(s), no trailing slash, no query. */
export function normalizeServer(input: string): string {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    refuse('BAD_INPUT', 'the server address is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') refuse('BAD_INPUT', 'the server address must start with https://');
  // Plain http only to this computer: anywhere else the network could swap the list key.
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) refuse('INSECURE_SERVER');
  if (url.username || url.password) refuse('BAD_INPUT', 'the server address must not hold a user name or password');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export class ListServer {
  constructor(private readonly fetchFn: Fetch) {}

  private async call<S extends z.ZodType>(schema: S, server: string, path: string, init: { method?: string; body?: unknown; token?: string } = {}, max = MAX_ANSWER): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    let res: Response;
    try {
      res = await this.fetchFn(`${server}${API_PREFIX}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        credentials: 'omit',
        redirect: 'error',
        cache: 'no-store',
      });
    } catch {
      refuse('SERVER_UNREACHABLE');
    }
    const text = await res.text();
    if (text.length > max) refuse('SERVER_BAD_ANSWER', 'the answer is too large');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      refuse(res.ok ? 'SERVER_BAD_ANSWER' : 'SERVER_ERROR', `HTTP ${res.status}`);
    }
    if (!res.ok) {
      const err = ApiError.safeParse(json);
      if (err.success) throw new ExtensionError(err.data.error, err.data.message.slice(0, 300));
      refuse('SERVER_ERROR', `HTTP ${res.status}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) refuse('SERVER_BAD_ANSWER');
    return parsed.data;
  }

  private static list(address: string): string {
    return `/lists/${encodeURIComponent(address)}`;
  }

  listInfo(server: string, address: string) {
    return this.call(ListInfo, server, ListServer.list(address));
  }

  subscribe(server: string, list: string, body: SubscribeRequest) {
    return this.call(SubscribeResponse, server, `${ListServer.list(list)}/subscriptions`, { method: 'POST', body });
  }

  confirm(server: string, list: string, body: ConfirmRequest) {
    return this.call(ConfirmResponse, server, `${ListServer.list(list)}/subscriptions/confirm`, { method: 'POST', body });
  }

  /** A request signed by the member's current key (key change, unsubscribe, delivery form). */
  signedRequest(server: string, list: string, body: SignedRequest) {
    return this.call(SignedRequestResponse, server, `${ListServer.list(list)}/requests`, { method: 'POST', body });
  }

  challenge(server: string, list: string, address: string) {
    return this.call(ChallengeResponse, server, `${ListServer.list(list)}/auth/challenge`, { method: 'POST', body: { address } });
  }

  login(server: string, list: string, body: LoginRequest) {
    return this.call(LoginResponse, server, `${ListServer.list(list)}/auth/login`, { method: 'POST', body });
  }

  threads(server: string, list: string, token: string, before: string | null, limit = 20) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before) q.set('before', before);
    return this.call(ThreadPage, server, `${ListServer.list(list)}/archive/threads?${q}`, { token });
  }

  /** The thread holding one post, by archive id or Message-ID (a permalink). */
  thread(server: string, list: string, token: string, key: { id: number } | { messageId: string }) {
    const q = 'id' in key ? new URLSearchParams({ id: String(key.id) }) : new URLSearchParams({ messageId: key.messageId });
    return this.call(Thread, server, `${ListServer.list(list)}/archive/thread?${q}`, { token });
  }

  messages(server: string, list: string, token: string, body: ArchiveMessagesRequest) {
    return this.call(ArchiveMessages, server, `${ListServer.list(list)}/archive/messages`, { method: 'POST', body, token }, MAX_ARCHIVE_ANSWER);
  }

  memberKey(server: string, list: string, token: string, keyId: string) {
    return this.call(MemberKey, server, `${ListServer.list(list)}/members/keys/${encodeURIComponent(keyId)}`, { token });
  }

  // ---- moderation (shared/api/moderation.ts) ----

  moderationChallenge(server: string, list: string, address: string) {
    return this.call(ChallengeResponse, server, `${ListServer.list(list)}/moderation/auth/challenge`, { method: 'POST', body: { address } });
  }

  moderationLogin(server: string, list: string, body: LoginRequest) {
    return this.call(LoginResponse, server, `${ListServer.list(list)}/moderation/auth/login`, { method: 'POST', body });
  }

  heldList(server: string, list: string, token: string) {
    return this.call(HeldList, server, `${ListServer.list(list)}/moderation/held`, { token });
  }

  heldMessages(server: string, list: string, token: string, body: HeldMessagesRequest) {
    return this.call(HeldMessages, server, `${ListServer.list(list)}/moderation/held/messages`, { method: 'POST', body, token }, MAX_ARCHIVE_ANSWER);
  }

  decide(server: string, list: string, token: string, id: number, body: SignedDecision) {
    return this.call(DecisionResponse, server, `${ListServer.list(list)}/moderation/held/${id}/decision`, { method: 'POST', body, token });
  }
}
