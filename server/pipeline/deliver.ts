// Step 8, deliver: put one page of copies on the durable queue: one row per
// recipient holding only its PKESK (the body is stored once, in the post row),
// and a content-free notice for each member whose key could not be used (the
// owner hears of those in the next report). The delivery worker sends them.

import { missedNoticeMail } from '../delivery/notices.ts';
import { isStorageError } from '../store/db.ts';
import type { ListRecord } from '../store/lists.ts';
import type { QueueStore } from '../store/queue.ts';
import type { WrappedPage } from './types.ts';

export const ROW_FAILED = 'INTERNAL: the copy could not be queued';

/**
 * Call inside the page's transaction. Each row is isolated: one that cannot be
 * made (a notice the writer refuses) is reported to the owner and the others go
 * on; a storage error (disk full) is rethrown so the whole page rolls back and is retried.
 * (What fails a row is JavaScript before its statement, so no savepoint is needed:
 * a failed statement would abort the whole transaction on PostgreSQL.)
 */
export async function deliver(page: WrappedPage, list: ListRecord, postId: number, messageId: string | null, queue: QueueStore): Promise<void> {
  const isolated = async (rcpt: string, add: () => Promise<unknown>) => {
    try {
      await add();
    } catch (e) {
      if (isStorageError(e)) throw e;
      await queue.addReport(list.id, rcpt, postId, ROW_FAILED);
    }
  };
  // The copies in one multi-row statement per chunk (a round trip each on PostgreSQL);
  // only the statement can fail them, and then the page rolls back as a whole.
  await queue.addMany(page.copies.map((c) => ({ listId: list.id, postId, kind: 'copy' as const, rcpt: c.rcpt, pkesk: c.pkesk })));
  for (const m of page.missed) {
    await isolated(m.rcpt, async () => {
      await queue.add({ listId: list.id, postId, kind: 'notice', rcpt: m.rcpt, mail: missedNoticeMail(list.address, m.rcpt, m.code, messageId) });
      await queue.addReport(list.id, m.rcpt, postId, `${m.code}: missed a post (notice sent)`);
    });
  }
}
