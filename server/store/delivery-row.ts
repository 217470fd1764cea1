// A delivery row as claimed: its own module so queue.ts and coordination.ts share it without an import circle.

export type DeliveryKind = 'copy' | 'notice' | 'bounce' | 'report';

export interface DeliveryRow {
  id: number;
  list_id: number;
  post_id: number | null;
  kind: DeliveryKind;
  rcpt: string;
  pkesk: Buffer | null;
  mail: Buffer | null;
  attempts: number;
  created_at: number;
  /** As claimed: the recipient's chosen copy form (member_prefs), null for the default; absent: not looked up. */
  form?: 'pgp-mime' | 'inline' | null;
}
