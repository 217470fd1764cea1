// Per-list settings the registry and discovery need beyond the posting policy:
// display name, description, and whether new members need a moderator.

import type { Db } from '../store/db.ts';

export interface ListSettings {
  name: string | null;
  description: string | null;
  subscription: 'open' | 'moderated';
}

export function getListSettings(db: Db, listId: number): ListSettings {
  const r = db.prepare('SELECT name, description, subscription FROM list_settings WHERE list_id = ?').get(listId) as ListSettings | undefined;
  return r ?? { name: null, description: null, subscription: 'open' };
}

export function setListSettings(db: Db, listId: number, s: Partial<ListSettings>): void {
  const current = getListSettings(db, listId);
  const next = { ...current, ...s };
  db.prepare(`INSERT INTO list_settings (list_id, name, description, subscription) VALUES (?,?,?,?)
    ON CONFLICT(list_id) DO UPDATE SET name = excluded.name, description = excluded.description, subscription = excluded.subscription`)
    .run(listId, next.name, next.description, next.subscription);
}
