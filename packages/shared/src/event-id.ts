import { hash } from 'node:crypto';

export interface EventIdFields {
  phone: string;
  direction: 'incoming' | 'outgoing';
  messageTime: number;
  messageType: string | null;
  text: string | null;
  attachmentUrl: string | null;
}

/**
 * The contract's event id (section 4): what identifies a message, nothing else,
 * so a redelivery or the same message with labels or notes changed is a duplicate.
 */
export function eventIdOf(fields: EventIdFields): string {
  const source = [
    'notifyer',
    fields.phone,
    fields.direction,
    String(fields.messageTime),
    fields.messageType ?? '',
    fields.text ?? '',
    fields.attachmentUrl ?? '',
  ].join('|');
  // One-shot hash: no Hash object per event (the ingest's hottest path).
  return hash('sha256', source, 'hex');
}
