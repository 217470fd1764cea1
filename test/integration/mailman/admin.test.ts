// The operator's side of a Mailman-bound list against a real Mailman 3 Core
// (test/support/mailman.ts, started once for this file with the prototype archiver
// enabled site-wide, as a site with HyperKitty has one): the settings binding refuses
// or corrects (server/mailman/safety.ts), `mailman status` and `mailman import`.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSafety, ensureSafe, fixSafety, UnsafeMailmanList } from '../../../server/mailman/safety.ts';
import { MailmanCore } from '../../support/mailman.ts';

let core: MailmanCore;

beforeAll(async () => {
  core = await MailmanCore.start({ archivers: ['prototype'] });
}, 240_000);

afterAll(async () => {
  await core?.stop();
}, 120_000);

describe('Mailman settings a bound list must not have', () => {
  it('a new Mailman list is unsafe as created (archiver on, archive policy public, digests on); binding refuses it and says which', async () => {
    const id = await core.createList('unsafe@lists.example.test');
    const rest = core.rest();
    const issues = await checkSafety(rest, id);
    expect(issues.map((i) => i.setting).sort()).toEqual(['archive_policy', 'archivers.prototype', 'digests_enabled']);
    const refused = await ensureSafe(rest, id, false).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(UnsafeMailmanList);
    expect((refused as Error).message).toMatch(/archivers\.prototype is enabled.*--fix/);
    // Refusing changed nothing in Mailman.
    expect((await rest.archivers(id)).prototype).toBe(true);
  });

  it('--fix turns each one off over REST, Mailman reads back safe, and a second fix has nothing to do', async () => {
    const id = await core.createList('fixme@lists.example.test', { gateway_to_news: true });
    const rest = core.rest();
    expect((await checkSafety(rest, id)).map((i) => i.setting)).toContain('gateway_to_news');
    const fixed = await ensureSafe(rest, id, true);
    expect(fixed.map((i) => i.setting).sort()).toEqual(['archive_policy', 'archivers.prototype', 'digests_enabled', 'gateway_to_news']);
    expect(await rest.archivers(id)).toEqual({ prototype: false });
    const cfg = await rest.listConfig(id) as Record<string, unknown>;
    expect([cfg.archive_policy, cfg.digests_enabled, cfg.gateway_to_news]).toEqual(['never', false, false]);
    expect(await checkSafety(rest, id)).toEqual([]);
    expect(await fixSafety(rest, id)).toEqual([]);
    await expect(ensureSafe(rest, id, false)).resolves.toEqual([]);
  });
});
