// Per-list settings the registry and discovery need beyond the posting policy:
// display name, description, and whether new members need a moderator (table list_settings).

import type { Sql } from './sql.ts';

export interface ListSettings {
  name: string | null;
  description: string | null;
  subscription: 'open' | 'moderated';
}

export async function getListSettings(sql: Sql, listId: number): Promise<ListSettings> {
  const r = await sql.get<ListSettings>('SELECT name, description, subscription FROM list_settings WHERE list_id = ?', [listId]);
  return r ?? { name: null, description: null, subscription: 'open' };
}

export async function setListSettings(sql: Sql, listId: number, s: Partial<ListSettings>): Promise<void> {
  // Read and write in one transaction: two partial updates do not undo each other.
  await sql.tx(async () => {
    const next = { ...await getListSettings(sql, listId), ...s };
    await sql.run(`INSERT INTO list_settings (list_id, name, description, subscription) VALUES (?,?,?,?)
      ON CONFLICT (list_id) DO UPDATE SET name = excluded.name, description = excluded.description, subscription = excluded.subscription`,
      [listId, next.name, next.description, next.subscription]);
  });
}
