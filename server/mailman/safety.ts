// The Mailman settings a bound list must not have: those that, if a post of the list
// ever passed through Mailman (a routing mistake, a member mailing Mailman's address
// by hand), would keep a copy of it outside Letterlock's encrypted archive. The routing
// (server/mailman/routing.ts) keeps posts away from Mailman; these settings make sure a
// stray one is not archived, digested or gatewayed as well. Binding refuses a list that
// has any of them, or with `fix` turns them off over REST, as Postorius would.
//
//   archivers        every archiver the site enables (HyperKitty, MHonArc, mail-archive,
//                    prototype) off for this list: each keeps every post it is given
//   archive_policy   'never': Mailman's to-archive step then does not even queue the post
//                    for the archivers (var/queue/archive)
//   digests_enabled  false: the to-digest step appends every post to
//                    var/lists/<list-id>/digest.mmdf and mails digests itself
//   gateway_to_news  false: the to-usenet step posts every post to a newsgroup
//
// Left alone, because they are Mailman's business with people and never see a post:
// the member/nonmember actions (Letterlock follows them), subscription policy,
// welcome/goodbye messages, bounce processing of Mailman's own notices.

import type { MailmanRest } from './rest.ts';

export interface SafetyIssue {
  /** `archivers.hyperkitty`, `archive_policy`, ... */
  setting: string;
  current: string;
  wanted: string;
  why: string;
}

const WHY = {
  archiver: 'this archiver keeps every post Mailman handles, outside the encrypted archive',
  archive_policy: "Mailman queues every post for its archivers unless the policy is 'never'",
  digests_enabled: 'Mailman appends every post to the digest mailbox on disk and mails digests itself',
  gateway_to_news: 'Mailman posts every post to a newsgroup',
} as const;

/** What is unsafe about the Mailman list now; [] when nothing is. */
export async function checkSafety(rest: MailmanRest, mailmanListId: string): Promise<SafetyIssue[]> {
  const [config, archivers] = await Promise.all([rest.listConfig(mailmanListId), rest.archivers(mailmanListId)]);
  const issues: SafetyIssue[] = [];
  for (const [name, enabled] of Object.entries(archivers).sort()) {
    if (enabled) issues.push({ setting: `archivers.${name}`, current: 'enabled', wanted: 'disabled', why: WHY.archiver });
  }
  const c = config as Record<string, unknown>;
  if (c.archive_policy !== 'never') issues.push({ setting: 'archive_policy', current: String(c.archive_policy ?? '(unset)'), wanted: 'never', why: WHY.archive_policy });
  if (c.digests_enabled !== false) issues.push({ setting: 'digests_enabled', current: String(c.digests_enabled ?? '(unset)'), wanted: 'false', why: WHY.digests_enabled });
  if (c.gateway_to_news !== false) issues.push({ setting: 'gateway_to_news', current: String(c.gateway_to_news ?? '(unset)'), wanted: 'false', why: WHY.gateway_to_news });
  return issues;
}

export class UnsafeMailmanList extends Error {
  override name = 'UnsafeMailmanList';
  constructor(readonly mailmanListId: string, readonly issues: SafetyIssue[]) {
    super(`Mailman list ${mailmanListId} would keep copies of posts outside Letterlock: ${issues.map((i) => `${i.setting} is ${i.current} (want ${i.wanted})`).join('; ')}. Change them in Postorius, or bind with --fix to change them now.`);
  }
}

/**
 * Corrects every issue over REST (archivers in one PATCH, the list settings in another),
 * then reads the settings back: returns what was fixed, or throws UnsafeMailmanList
 * with what is still wrong (a Core that ignored a change).
 */
export async function fixSafety(rest: MailmanRest, mailmanListId: string): Promise<SafetyIssue[]> {
  const issues = await checkSafety(rest, mailmanListId);
  if (issues.length === 0) return [];
  const archivers = Object.fromEntries(issues.filter((i) => i.setting.startsWith('archivers.')).map((i) => [i.setting.slice('archivers.'.length), false]));
  if (Object.keys(archivers).length) await rest.patchArchivers(mailmanListId, archivers);
  const config: Record<string, unknown> = {};
  for (const i of issues) {
    if (i.setting === 'archive_policy') config.archive_policy = 'never';
    if (i.setting === 'digests_enabled') config.digests_enabled = false;
    if (i.setting === 'gateway_to_news') config.gateway_to_news = false;
  }
  if (Object.keys(config).length) await rest.patchConfig(mailmanListId, config);
  const left = await checkSafety(rest, mailmanListId);
  if (left.length) throw new UnsafeMailmanList(mailmanListId, left);
  return issues;
}

/** Binding's rule: refuse an unsafe list, or with `fix` correct it. Returns what was fixed. */
export async function ensureSafe(rest: MailmanRest, mailmanListId: string, fix: boolean): Promise<SafetyIssue[]> {
  if (fix) return fixSafety(rest, mailmanListId);
  const issues = await checkSafety(rest, mailmanListId);
  if (issues.length) throw new UnsafeMailmanList(mailmanListId, issues);
  return [];
}
