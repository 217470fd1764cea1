// Step 6, archive: store the sealed post as the archive record (encrypted body, K
// wrapped to the archive key, threading metadata only) with K also wrapped to
// the list key. The record is the durable anchor of the fan-out that follows:
// once it is committed the post is accepted, and wrapping can resume after a
// crash without ever storing K bare.

import { wrapMany } from '../../shared/index.ts';
import { archivePost } from '../archive/archive.ts';
import type { ListKeys } from '../lists/lists.ts';
import type { Db } from '../store/db.ts';
import type { SealedPost } from './types.ts';

export async function archive(post: SealedPost, keys: ListKeys, messageId: string, db: Db): Promise<number> {
  const { verified, sealed } = post;
  const [archivePkesk, listPkesk] = await wrapMany(sealed.sessionKey, [keys.archive, keys.listRecipient]);
  return archivePost(db, {
    listId: verified.list.id,
    messageId,
    inReplyTo: verified.outer.inReplyTo,
    references: verified.outer.references,
    date: verified.outer.date,
    size: sealed.body.byteLength,
    body: sealed.body,
    archivePkesk: archivePkesk!,
    listPkesk: listPkesk!,
  });
}
