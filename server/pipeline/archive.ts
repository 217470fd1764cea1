// Step 6, archive: store the sealed post as the archive record (encrypted body, K
// wrapped to the archive key, threading metadata only) with K also wrapped to
// the list key. The record is the durable anchor of the fan-out that follows:
// once it is committed the post is accepted, and wrapping can resume after a
// crash without ever storing K bare. The signature's digest (replay protection)
// is recorded in the same transaction, after checking again for a duplicate
// Message-ID or a digest another copy recorded meanwhile: of two copies of one
// post racing through the pipeline, exactly one is archived.

import { wrapMany } from '../../shared/index.ts';
import { archivePost } from '../archive/archive.ts';
import { displayOf, sealDisplay } from '../delivery/display.ts';
import type { ListKeys } from '../lists/lists.ts';
import type { Sql } from '../store/db.ts';
import { lockKeys } from '../store/registry.ts';
import { purgeSignatures, recordSignature, setSignaturePost } from '../store/replay.ts';
import { Refusal } from './reasons.ts';
import { duplicateOf, replayWindowMs, threadingOf } from './replay.ts';
import type { SealedPost } from './types.ts';

export type Archived = { postId: number; duplicate: false } | { postId: number; duplicate: true };

export async function archive(post: SealedPost, keys: ListKeys, messageId: string, sql: Sql, now = Date.now()): Promise<Archived> {
  const { verified, sealed } = post;
  const [archivePkesk, listPkesk] = await wrapMany(sealed.sessionKey, [keys.archive, keys.listRecipient]);
  const display = verified.member ? await sealDisplay(displayOf(verified.member.address, verified.inner, verified.clear), keys.listKey) : null;
  const listId = verified.list.id;
  return sql.tx(async (): Promise<Archived> => {
    // PostgreSQL: copies of one mail racing on other connections wait here, then see the
    // first one's post as a duplicate (not its signature as a replay).
    if (verified.outer.messageId) await lockKeys(sql, [['post', `${listId} ${verified.outer.messageId}`]]);
    const dup = await duplicateOf(sql, verified, now);
    if (dup !== null) return { postId: dup, duplicate: true };
    const digest = verified.signatureDigest;
    const signedAt = verified.verification?.valid ? verified.verification.signedAt?.getTime() ?? now : now;
    if (digest && !await recordSignature(sql, listId, digest, signedAt, null, now)) throw new Refusal('REPLAYED'); // rolls back
    const postId = await archivePost(sql, {
      listId,
      messageId,
      outerMessageId: verified.outer.messageId,
      inReplyTo: threadingOf(verified).inReplyTo,
      references: threadingOf(verified).references,
      date: verified.outer.date,
      size: sealed.body.byteLength,
      body: sealed.body,
      archivePkesk: archivePkesk!,
      listPkesk: listPkesk!,
      display,
      bareText: verified.inner ? !verified.inner.isMime : false,
    });
    if (digest) await setSignaturePost(sql, listId, digest, postId);
    await purgeSignatures(sql, listId, replayWindowMs(verified.list), now);
    return { postId, duplicate: false };
  });
}
