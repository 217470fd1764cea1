// The archive seal: an accepted post is stored as its encrypted body, K wrapped to
// the archive key, and only the metadata needed to thread and page. Subject,
// sender and body exist only inside the ciphertext.

import type { Sql } from '../store/db.ts';
import { insertPost } from '../store/posts.ts';

export interface ArchiveInput {
  listId: number;
  messageId: string | null;
  /** The Message-ID the mail arrived with (duplicates are found by it); null: none, or the same as messageId. */
  outerMessageId?: string | null;
  inReplyTo: string | null;
  references: string[];
  date: Date | null;
  size: number;
  body: Uint8Array;
  archivePkesk: Uint8Array;
  /** K wrapped to the list key, kept only until the fan-out is done. */
  listPkesk: Uint8Array;
  /** Author name and clear subject, encrypted to the list key (delivery/display.ts). */
  display?: Uint8Array | null;
  bareText?: boolean;
}

/** Returns the post id, which the queued copies use to find the shared body. */
export async function archivePost(sql: Sql, input: ArchiveInput): Promise<number> {
  return await insertPost(sql, {
    listId: input.listId,
    messageId: input.messageId,
    outerMessageId: input.outerMessageId ?? null,
    inReplyTo: input.inReplyTo,
    references: input.references.slice(0, 100),
    date: input.date ? input.date.getTime() : null,
    size: input.size,
    body: input.body,
    archivePkesk: input.archivePkesk,
    listPkesk: input.listPkesk,
    display: input.display ?? null,
    bareText: input.bareText ?? false,
  });
}
