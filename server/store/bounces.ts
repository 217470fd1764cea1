// The bounces and notices the list sent to senders, counted in the database so
// the hourly limits per recipient and per list survive a restart. Rows older than
// the counting window are purged as new ones are written.

import type { Db } from './db.ts';

export function bouncesSince(db: Db, since: number): (by: { rcpt: string } | { listId: number }) => number {
  return (by) => 'rcpt' in by
    ? (db.prepare('SELECT count(*) AS n FROM bounce_log WHERE rcpt = ? AND sent_at >= ?').get(by.rcpt, since) as { n: number }).n
    : (db.prepare('SELECT count(*) AS n FROM bounce_log WHERE list_id = ? AND sent_at >= ?').get(by.listId, since) as { n: number }).n;
}

export function logBounce(db: Db, listId: number, rcpt: string, now: number, keepMs: number): void {
  db.prepare('DELETE FROM bounce_log WHERE sent_at < ?').run(now - keepMs);
  db.prepare('INSERT INTO bounce_log (list_id, rcpt, sent_at) VALUES (?,?,?)').run(listId, rcpt, now);
}
