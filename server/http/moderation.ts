// The moderation routes (issue 12 item 4; shared/api/moderation.ts has the API):
// a moderator's log-in, the held posts re-wrapped to their key, and signed
// decisions. Registered by api.ts, which passes its own body parser, bearer
// reader and route limits so these routes are bounded like the archive's.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodType } from 'zod';
import { z } from 'zod';
import { ChallengeRequest, HeldMessagesRequest, LoginRequest, SignedDecision } from '../../shared/index.ts';
import type { HttpLimits } from '../config/config.ts';
import { ModerationAccess, type ModerationDeps } from '../moderation/access.ts';
import type { Rate, Rule } from '../registry/limits.ts';
import type { ListRecord } from '../store/lists.ts';

type Rules = (req: FastifyRequest) => Rule[];

export interface ModerationRouteDeps extends ModerationDeps {
  limits: HttpLimits;
  parse<T>(schema: ZodType<T>, data: unknown): T;
  bearer(req: FastifyRequest): string | undefined;
  listOf(address: string): Promise<ListRecord>;
  limited(...rules: Rules[]): { preHandler: (req: FastifyRequest) => Promise<void> };
  perIp(route: string, rate: Rate): Rules;
  perAddress(route: string): Rules;
}

export function registerModerationRoutes(app: FastifyInstance, d: ModerationRouteDeps): ModerationAccess {
  const access = new ModerationAccess(d);
  const base = '/v1/lists/:address/moderation';
  type P = { Params: { address: string } };

  app.post<P>(`${base}/auth/challenge`, d.limited(d.perAddress('moderate-challenge'), d.perIp('moderate-challenge', d.limits.challengePerIp)), async (req) => {
    const list = await d.listOf(req.params.address);
    return await access.challenge(list, d.parse(ChallengeRequest, req.body).address);
  });
  app.post<P>(`${base}/auth/login`, d.limited(d.perIp('moderate-login', d.limits.sensitivePerIp)), async (req) => {
    const list = await d.listOf(req.params.address);
    const { challengeId, signature } = d.parse(LoginRequest, req.body);
    return access.login(list, challengeId, signature);
  });
  app.get<P>(`${base}/held`, async (req) => {
    const list = await d.listOf(req.params.address);
    return await access.held(await access.session(list, d.bearer(req)));
  });
  app.post<P>(`${base}/held/messages`, async (req) => {
    const list = await d.listOf(req.params.address);
    const session = await access.session(list, d.bearer(req));
    return { messages: await access.messages(session, d.parse(HeldMessagesRequest, req.body).ids) };
  });
  // Decisions cost a signature check and, on approval, a whole fan-out: limited like the other signed requests.
  app.post<P & { Params: { id: string } }>(`${base}/held/:id/decision`, d.limited(d.perIp('moderate-decision', d.limits.sensitivePerIp)), async (req) => {
    const list = await d.listOf(req.params.address);
    const session = await access.session(list, d.bearer(req));
    const id = d.parse(z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER), req.params.id);
    return access.decide(session, id, d.parse(SignedDecision, req.body));
  });
  return access;
}
