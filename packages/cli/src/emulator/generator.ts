import { randomUUID } from 'node:crypto';
import {
  firstContactReferral,
  incomingMedia,
  incomingText,
  legacyIncoming,
  outgoingAgent,
  type Customer,
  type Media,
  type MessageParts,
} from './templates.js';

export type MessageKind = 'incoming-text' | 'incoming-media' | 'first-contact-referral' | 'outgoing-agent' | 'legacy-incoming';
export type Direction = 'incoming' | 'outgoing';

export interface GeneratedMessage {
  kind: MessageKind;
  direction: Direction;
  phoneDigits: string;
  payload: Record<string, unknown>;
}

/** Every kind in turn: four incoming shapes, one outgoing. */
const ROTATION: readonly MessageKind[] = ['incoming-text', 'incoming-media', 'outgoing-agent', 'first-contact-referral', 'legacy-incoming'];
const NAMES = ['Dana Whitfield', 'Luis Ortega', 'Priya Nair', 'Tom Becker', 'Amara Okafor', 'Chen Wei', 'Sofia Rossi', 'Jonas Berg', 'Fatima Zahra', 'Mia Novak', 'Kofi Mensah', 'Elena Petrova'];
const CUSTOMER_LINES = [
  'Great, when will it arrive?', 'Is the course still open?', 'Can I change my delivery address?', 'Do you ship to Spain?',
  'What are your opening hours?', 'I would like to book a table for two', 'Thanks!', 'Is the blue model back in stock?',
  'Can I pay by card on delivery?', 'STOP', 'Hi, I have a question about my order', 'How much is shipping?',
];
const AGENT_LINES = [
  'It should arrive on Monday.', 'Yes, there are still a few places left.', 'Sure, what is the new address?',
  'We are open 9 to 6, Monday to Saturday.', 'Thanks for your patience!', 'Your order ships within 2 days.',
];
const LABEL_SETS = [['customer'], ['customer', 'shipping'], ['lead'], ['customer', 'vip'], []];
const MEDIA: readonly { type: Media['type']; ext: string }[] = [
  { type: 'image', ext: 'jpg' }, { type: 'audio', ext: 'ogg' }, { type: 'video', ext: 'mp4' }, { type: 'document', ext: 'pdf' },
];
const COUNTRY_PREFIXES = ['447700', '1555', '9198', '4915', '3361'];

/**
 * Variations of Notifyer's fixtures. Each message gets a message time one
 * second past the previous one (or now, if later), so no two messages of one
 * emulator share an event id; phones are random per emulator start, so a
 * restarted emulator does not repeat an earlier one's events either.
 */
export class MessageGenerator {
  private sequence = 0;
  private lastTime = 0;
  private readonly customers: Customer[];

  constructor(
    private readonly random: () => number = Math.random,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.customers = NAMES.map((name) => this.newCustomer(name));
  }

  next(): GeneratedMessage {
    const kind = ROTATION[this.sequence % ROTATION.length]!;
    this.sequence++;
    const parts = this.parts(kind);
    const direction: Direction = kind === 'outgoing-agent' ? 'outgoing' : 'incoming';
    return { kind, direction, phoneDigits: parts.customer.phoneDigits, payload: this.build(kind, parts) };
  }

  private build(kind: MessageKind, parts: MessageParts): Record<string, unknown> {
    switch (kind) {
      case 'incoming-text':
        return incomingText(parts);
      case 'incoming-media':
        return incomingMedia(parts, this.media());
      case 'first-contact-referral':
        return firstContactReferral(parts, this.sequence);
      case 'outgoing-agent':
        return outgoingAgent(parts, `agent${1 + this.pick([0, 1, 2])}@shop.example.test`);
      case 'legacy-incoming':
        return legacyIncoming(parts);
    }
  }

  private parts(kind: MessageKind): MessageParts {
    // A first contact is someone new: a phone no earlier message had.
    const customer = kind === 'first-contact-referral' ? this.newCustomer(this.pick(NAMES)) : this.pick(this.customers);
    return {
      customer,
      time: this.nextTime(),
      customerText: this.pick(CUSTOMER_LINES),
      agentText: this.pick(AGENT_LINES),
      labels: this.pick(LABEL_SETS),
    };
  }

  private nextTime(): number {
    this.lastTime = Math.max(Math.floor(this.nowMs() / 1000), this.lastTime + 1);
    return this.lastTime;
  }

  private media(): Media {
    const { type, ext } = this.pick(MEDIA);
    const name = Math.floor(this.random() * 0xffffffff).toString(16).padStart(8, '0');
    return { type, url: `https://media.example.test/u/${name}.${ext}` };
  }

  private newCustomer(name: string): Customer {
    const prefix = this.pick(COUNTRY_PREFIXES);
    let digits = prefix;
    while (digits.length < 12) digits += String(Math.floor(this.random() * 10));
    return { name, phoneDigits: digits, userId: randomUUID() };
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }
}
