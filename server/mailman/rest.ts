// A small typed client for Mailman 3 Core's REST API (3.1), as Postorius uses it:
// HTTP Basic auth, a timeout on every call, answers read with a size cap and
// validated with zod, and member listings read page by page with a bound on the
// number of pages. Errors are MailmanError with a code and the HTTP status only:
// Mailman's own error text is kept short and never holds a post.

import { z } from 'zod';
import { readBodyCapped } from '../../shared/bytes.ts';

export interface MailmanEndpoint {
  /** The Core's REST root, e.g. http://127.0.0.1:8001 (the /3.1 prefix is added here). */
  url: string;
  user: string;
  pass: string;
}

export interface RestOptions {
  /** Per request, connect to last byte. */
  timeoutMs?: number;
  /** Members per page (Mailman slices with count/page). */
  pageSize?: number;
  /** At most this many pages per listing: pageSize * maxPages members. */
  maxPages?: number;
  /** Largest answer body read. */
  maxBodyBytes?: number;
}

export type MailmanErrorCode = 'UNREACHABLE' | 'TIMEOUT' | 'HTTP' | 'BAD_RESPONSE' | 'TOO_LARGE' | 'NOT_FOUND' | 'CONFLICT';

export class MailmanError extends Error {
  override name = 'MailmanError';
  constructor(readonly code: MailmanErrorCode, message: string, readonly status?: number) {
    super(message);
  }
}

/** True when the Core could not be asked at all (down, refused, timed out): a reason to wait, not to refuse. */
export function isUnreachable(e: unknown): boolean {
  return e instanceof MailmanError && (e.code === 'UNREACHABLE' || e.code === 'TIMEOUT' || (e.code === 'HTTP' && (e.status ?? 0) >= 500));
}

export const ACTIONS = ['accept', 'hold', 'reject', 'discard', 'defer'] as const;
export type MailmanAction = (typeof ACTIONS)[number];
export const ROLES = ['member', 'owner', 'moderator', 'nonmember'] as const;
export type MailmanRole = (typeof ROLES)[number];

const memberSchema = z.object({
  email: z.string().max(320),
  list_id: z.string().max(320).optional(),
  role: z.enum(ROLES),
  member_id: z.string().max(64).optional(),
  delivery_mode: z.string().max(40).optional(),
  display_name: z.string().max(1000).optional(),
  moderation_action: z.enum(ACTIONS).optional(),
});
export type MailmanMember = z.infer<typeof memberSchema>;

const pageSchema = z.object({
  start: z.number().int().nonnegative(),
  total_size: z.number().int().nonnegative(),
  entries: z.array(memberSchema).optional(),
});

const listSchema = z.object({
  list_id: z.string().max(320),
  fqdn_listname: z.string().max(320),
  mail_host: z.string().max(255),
  list_name: z.string().max(255),
  display_name: z.string().max(1000).optional(),
  member_count: z.number().int().nonnegative().optional(),
});
export type MailmanList = z.infer<typeof listSchema>;

/** The list settings Letterlock reads; the rest of Mailman's config passes through unchecked. */
const configSchema = z.looseObject({
  fqdn_listname: z.string().max(320),
  default_member_action: z.enum(ACTIONS),
  default_nonmember_action: z.enum(ACTIONS),
  subscription_policy: z.enum(['open', 'confirm', 'moderate', 'confirm_then_moderate']),
  emergency: z.boolean().optional(),
  accept_these_nonmembers: z.array(z.string().max(1000)).max(10_000).optional(),
  hold_these_nonmembers: z.array(z.string().max(1000)).max(10_000).optional(),
  reject_these_nonmembers: z.array(z.string().max(1000)).max(10_000).optional(),
  discard_these_nonmembers: z.array(z.string().max(1000)).max(10_000).optional(),
  archive_policy: z.string().max(40).optional(),
  posting_pipeline: z.string().max(200).optional(),
});
export type MailmanListConfig = z.infer<typeof configSchema>;

const versionsSchema = z.object({ mailman_version: z.string().max(200), api_version: z.string().max(20) });

export interface SubscribeRequest {
  listId: string;
  address: string;
  displayName?: string;
  role?: MailmanRole;
  preVerified?: boolean;
  preConfirmed?: boolean;
  preApproved?: boolean;
}

/** member: subscribed now; pending: Mailman holds it (confirmation or moderator); exists: it was already. */
export type SubscribeResult = { status: 'member' | 'exists'; memberId: string | null } | { status: 'pending'; token: string | null };

export class MailmanRest {
  private readonly timeoutMs: number;
  readonly pageSize: number;
  readonly maxPages: number;
  private readonly maxBodyBytes: number;
  private readonly auth: string;
  private readonly root: string;

  constructor(endpoint: MailmanEndpoint, options: RestOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.pageSize = Math.max(1, Math.min(options.pageSize ?? 1000, 5000));
    this.maxPages = Math.max(1, options.maxPages ?? 200);
    this.maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
    this.auth = `Basic ${Buffer.from(`${endpoint.user}:${endpoint.pass}`).toString('base64')}`;
    this.root = `${endpoint.url.replace(/\/+$/, '')}/3.1`;
  }

  /** One call; `ok` statuses pass, 404 and 409 get their own codes. Returns the parsed JSON body (or null when empty). */
  private async call(method: string, path: string, body?: Record<string, unknown>): Promise<{ status: number; json: unknown; location: string | null }> {
    let res: Response;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      res = await fetch(`${this.root}${path}`, {
        method,
        headers: { authorization: this.auth, accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal,
        redirect: 'error',
      });
    } catch (e) {
      if (signal.aborted) throw new MailmanError('TIMEOUT', `Mailman REST did not answer ${method} ${path} within ${this.timeoutMs} ms`);
      throw new MailmanError('UNREACHABLE', `Mailman REST at ${this.root} is not reachable (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name})`);
    }
    let text: string;
    try {
      text = await readCapped(res, this.maxBodyBytes);
    } catch (e) {
      if (e instanceof MailmanError) throw e;
      if (signal.aborted) throw new MailmanError('TIMEOUT', `Mailman REST did not finish answering ${method} ${path} within ${this.timeoutMs} ms`);
      throw new MailmanError('UNREACHABLE', `Mailman REST connection broke during ${method} ${path}`);
    }
    let json: unknown = null;
    if (text.length) {
      try {
        json = JSON.parse(text);
      } catch {
        if (res.ok) throw new MailmanError('BAD_RESPONSE', `Mailman REST answered ${method} ${path} with something that is not JSON`, res.status);
      }
    }
    if (!res.ok) {
      const description = typeof (json as { description?: unknown } | null)?.description === 'string' ? String((json as { description: string }).description).slice(0, 200) : '';
      const msg = `Mailman REST refused ${method} ${path}: HTTP ${res.status}${description ? ` (${description})` : ''}`;
      if (res.status === 401 || res.status === 403) throw new MailmanError('HTTP', `${msg}; check the Mailman REST user and password`, res.status);
      if (res.status === 404) throw new MailmanError('NOT_FOUND', msg, 404);
      if (res.status === 409) throw new MailmanError('CONFLICT', msg, 409);
      throw new MailmanError('HTTP', msg, res.status);
    }
    return { status: res.status, json, location: res.headers.get('location') };
  }

  private parse<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
    const r = schema.safeParse(json);
    if (!r.success) throw new MailmanError('BAD_RESPONSE', `Mailman REST answered ${what} in an unexpected shape`);
    return r.data;
  }

  async versions(): Promise<{ mailman_version: string; api_version: string }> {
    return this.parse(versionsSchema, (await this.call('GET', '/system/versions')).json, 'versions');
  }

  /** Creates a domain; an existing one is fine. */
  async createDomain(mailHost: string): Promise<void> {
    try {
      await this.call('POST', '/domains', { mail_host: mailHost });
    } catch (e) {
      if (!(e instanceof MailmanError && (e.code === 'CONFLICT' || (e.status === 400 && /already|duplicate/i.test(e.message))))) throw e;
    }
  }

  /** Creates a list; returns its list id. */
  async createList(fqdn: string): Promise<string> {
    const { location } = await this.call('POST', '/lists', { fqdn_listname: fqdn });
    const id = location?.split('/').pop();
    return id ? decodeURIComponent(id) : (await this.getList(fqdn)).list_id;
  }

  /** A list by its list id (news.example.org) or posting address (news@example.org). */
  async getList(listIdOrFqdn: string): Promise<MailmanList> {
    return this.parse(listSchema, (await this.call('GET', `/lists/${encodeURIComponent(listIdOrFqdn)}`)).json, 'the list');
  }

  async listConfig(listId: string): Promise<MailmanListConfig> {
    return this.parse(configSchema, (await this.call('GET', `/lists/${encodeURIComponent(listId)}/config`)).json, 'the list settings');
  }

  async patchConfig(listId: string, values: Record<string, unknown>): Promise<void> {
    await this.call('PATCH', `/lists/${encodeURIComponent(listId)}/config`, values);
  }

  /** Every entry of a paged member listing, page by page, at most maxPages pages. */
  private async paged(pathFor: (page: number) => { method: string; path: string; body?: Record<string, unknown> }, what: string): Promise<MailmanMember[]> {
    const out: MailmanMember[] = [];
    for (let page = 1; ; page++) {
      if (page > this.maxPages) throw new MailmanError('TOO_LARGE', `${what} has more than ${this.maxPages * this.pageSize} entries, more than this server reads`);
      const req = pathFor(page);
      const p = this.parse(pageSchema, (await this.call(req.method, req.path, req.body)).json, what);
      if (p.total_size > this.maxPages * this.pageSize) throw new MailmanError('TOO_LARGE', `${what} has ${p.total_size} entries, more than the ${this.maxPages * this.pageSize} this server reads`);
      const entries = p.entries ?? [];
      out.push(...entries);
      if (entries.length < this.pageSize || out.length >= p.total_size) return out;
    }
  }

  /** /lists/{id}/roster/{role}: the list's members, owners, moderators or nonmembers. */
  roster(listId: string, role: MailmanRole): Promise<MailmanMember[]> {
    return this.paged((page) => ({ method: 'GET', path: `/lists/${encodeURIComponent(listId)}/roster/${role}?count=${this.pageSize}&page=${page}` }), `the ${role} roster of ${listId}`);
  }

  /** /members/find: members matching all the given fields (e.g. role member, delivery_status enabled). */
  findMembers(query: { list_id?: string; subscriber?: string; role?: MailmanRole; delivery_status?: string; moderation_action?: MailmanAction }): Promise<MailmanMember[]> {
    const fields = ['email', 'role', 'member_id', 'moderation_action', 'display_name', 'delivery_mode', 'list_id'];
    return this.paged((page) => ({ method: 'POST', path: '/members/find', body: { ...query, fields, count: this.pageSize, page } }), 'the member search');
  }

  async subscribe(r: SubscribeRequest): Promise<SubscribeResult> {
    const body: Record<string, unknown> = { list_id: r.listId, subscriber: r.address, role: r.role ?? 'member' };
    if (r.displayName) body.display_name = r.displayName;
    if (r.preVerified !== undefined) body.pre_verified = r.preVerified;
    if (r.preConfirmed !== undefined) body.pre_confirmed = r.preConfirmed;
    if (r.preApproved !== undefined) body.pre_approved = r.preApproved;
    try {
      const { status, json, location } = await this.call('POST', '/members', body);
      if (status === 202) {
        const token = (json as { token?: unknown } | null)?.token;
        return { status: 'pending', token: typeof token === 'string' ? token : null };
      }
      return { status: 'member', memberId: location?.split('/').pop() ?? null };
    } catch (e) {
      if (e instanceof MailmanError && e.code === 'CONFLICT') return { status: 'exists', memberId: null };
      throw e;
    }
  }

  /** The member of a list with this address and role, or null. */
  async findMember(listId: string, address: string, role: MailmanRole = 'member'): Promise<MailmanMember | null> {
    const found = await this.findMembers({ list_id: listId, subscriber: address, role });
    return found.find((m) => m.email.toLowerCase() === address.toLowerCase()) ?? null;
  }

  /** Removes the address from the list (role member); false when it was not a member. */
  async unsubscribe(listId: string, address: string, role: MailmanRole = 'member'): Promise<boolean> {
    const m = await this.findMember(listId, address, role);
    if (!m?.member_id) return false;
    try {
      await this.call('DELETE', `/members/${encodeURIComponent(m.member_id)}`);
      return true;
    } catch (e) {
      if (e instanceof MailmanError && e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  /** Per-member moderation (accept/hold/reject/discard, or '' for the list default). */
  async setModeration(memberId: string, action: MailmanAction | ''): Promise<void> {
    await this.call('PATCH', `/members/${encodeURIComponent(memberId)}`, { moderation_action: action });
  }

  /**
   * /lists/{id}/archivers: each archiver the site enables, and whether this list uses it
   * (server/mailman/safety.ts turns them off for a bound list). Added by the mm2 helper.
   */
  async archivers(listId: string): Promise<Record<string, boolean>> {
    // Besides the archivers' flags the answer holds http_etag.
    const schema = z.record(z.string().max(100), z.unknown()).refine((r) => Object.keys(r).length <= 100);
    const all = this.parse(schema, (await this.call('GET', `/lists/${encodeURIComponent(listId)}/archivers`)).json, 'the archivers');
    return Object.fromEntries(Object.entries(all).filter((e): e is [string, boolean] => typeof e[1] === 'boolean'));
  }

  async patchArchivers(listId: string, values: Record<string, boolean>): Promise<void> {
    // Mailman reads these with lazr's as_boolean, which takes strings only (a JSON false is an HTTP 500).
    await this.call('PATCH', `/lists/${encodeURIComponent(listId)}/archivers`, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])));
  }

  /** A member's delivery status: enabled, by_user, by_moderator, by_bounces. */
  async setDeliveryStatus(memberId: string, status: 'enabled' | 'by_user' | 'by_moderator' | 'by_bounces'): Promise<void> {
    await this.call('PATCH', `/members/${encodeURIComponent(memberId)}/preferences`, { delivery_status: status });
  }
}

/** Reads a response body as text, refusing more than `max` bytes (a Core is trusted, a proxy before it may not be). */
async function readCapped(res: Response, max: number): Promise<string> {
  const bytes = await readBodyCapped(res, max);
  if (!bytes) throw new MailmanError('TOO_LARGE', `Mailman REST answer exceeds ${max} bytes`);
  return Buffer.from(bytes).toString('utf8');
}
