// The bounces and notices the list sent to senders, counted in the database so
// the hourly limits per recipient and per list survive a restart. Rows older than
// the counting window are purged as new ones are written.

import type { Sql } from './sql.ts';

export function bouncesSince(sql: Sql, since: number): (by: { rcpt: string } | { listId: number }) => Promise<number> {
  return async (by) => ('rcpt' in by
    ? await sql.get<{ n: number }>('SELECT count(*) AS n FROM bounce_log WHERE rcpt = ? AND sent_at >= ?', [by.rcpt, since])
    : await sql.get<{ n: number }>('SELECT count(*) AS n FROM bounce_log WHERE list_id = ? AND sent_at >= ?', [by.listId, since]))!.n;
}

export async function logBounce(sql: Sql, listId: number, rcpt: string, now: number, keepMs: number): Promise<void> {
  await sql.tx(async () => {
    await sql.run('DELETE FROM bounce_log WHERE sent_at < ?', [now - keepMs]);
    await sql.run('INSERT INTO bounce_log (list_id, rcpt, sent_at) VALUES (?,?,?)', [listId, rcpt, now]);
  });
}
