// Binding a Letterlock list to a Mailman list: the Mailman list is found over
// REST (by list id, news.example.org, or posting address, news@example.org),
// must have the same posting address, and its id is stored on the list row.
// From then on Mailman's roster and settings decide who gets posts and who may
// post; keys stay in Letterlock's registry. The first roster read follows.

import { createList, normalizeAddress, type CreateListOptions } from '../lists/lists.ts';
import type { Sql } from '../store/db.ts';
import { getList, getListById, type ListRecord } from '../store/lists.ts';
import { MailmanError, type MailmanList, type MailmanRest } from './rest.ts';
import { setBinding } from '../store/mailman.ts';

export class BindError extends Error {
  override name = 'BindError';
}

/** The Mailman list named by `target` (list id or posting address), checked against the Letterlock address. */
export async function resolveMailmanList(rest: MailmanRest, address: string, target: string): Promise<MailmanList> {
  const t = target.trim().toLowerCase();
  if (!/^[a-z0-9][a-z0-9._+@-]{0,318}$/.test(t)) throw new BindError(`"${target.slice(0, 100)}" is not a Mailman list id (news.example.org) or list address (news@example.org)`);
  let found: MailmanList;
  try {
    found = await rest.getList(t);
  } catch (e) {
    if (e instanceof MailmanError && e.code === 'NOT_FOUND') throw new BindError(`Mailman has no list ${t}`);
    throw e;
  }
  if (found.fqdn_listname.toLowerCase() !== normalizeAddress(address)) {
    throw new BindError(`Mailman list ${found.list_id} posts to ${found.fqdn_listname}, not to ${normalizeAddress(address)}: a bound list keeps its address`);
  }
  return found;
}

/** Binds an existing Letterlock list; returns it as bound. */
export async function bindList(sql: Sql, rest: MailmanRest, address: string, target: string): Promise<ListRecord> {
  const list = await getList(sql, address);
  if (!list) throw new BindError(`no list ${address}`);
  const ml = await resolveMailmanList(rest, list.address, target);
  await setBinding(sql, list.id, ml.list_id);
  return (await getListById(sql, list.id))!;
}

/** `list create ADDRESS --mailman LIST`: the Mailman list is checked before the Letterlock list is made. */
export async function createBoundList(sql: Sql, secret: string, rest: MailmanRest, address: string, target: string, options: CreateListOptions): Promise<ListRecord> {
  const ml = await resolveMailmanList(rest, address, target);
  const created = await createList(sql, secret, address, options);
  await setBinding(sql, created.id, ml.list_id);
  return (await getListById(sql, created.id))!;
}

export async function unbindList(sql: Sql, address: string): Promise<void> {
  const list = await getList(sql, address);
  if (!list) throw new BindError(`no list ${address}`);
  await setBinding(sql, list.id, null);
}
