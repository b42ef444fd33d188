// Message shapes after the shared Notifyer fixtures (fixtures/notifyer/): the
// same fields, field types and generations, with the people and words varied.

export interface Customer {
  name: string;
  phoneDigits: string;
  userId: string;
}

export interface MessageParts {
  customer: Customer;
  /** Unix seconds of this message: the one field every event differs in. */
  time: number;
  customerText: string;
  agentText: string;
  labels: string[];
}

export interface Media {
  type: 'image' | 'audio' | 'video' | 'document';
  url: string;
}

type Payload = Record<string, unknown>;

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** "+44 7700 900123": how current payloads write an incoming phone. */
export function formatPhone(digits: string): string {
  return `+${digits.slice(0, 2)} ${digits.slice(2, 6)} ${digits.slice(6)}`;
}

function turn(type: 'user' | 'bot', content: string, seconds: number, contentType = 'text'): Payload {
  return { type, content, timestamp: iso(seconds), content_type: contentType };
}

function paragraph(turns: Payload[]): string {
  return turns.map((t) => `${String(t.type)}: ${String(t.content)}`).join('\n');
}

/** incoming-text.json: last_messages as a JSON string, the phone with + and spaces. */
export function incomingText({ customer, time, customerText, agentText, labels }: MessageParts): Payload {
  const botTime = time - 98;
  const turns = [turn('bot', agentText, botTime), turn('user', customerText, time)];
  return {
    last_messages: JSON.stringify(turns),
    conversation_paragraph: paragraph(turns),
    phone_number: formatPhone(customer.phoneDigits),
    recipient_name: customer.name,
    user_id: customer.userId,
    last_message_of_user: customerText,
    last_message_of_bot: agentText,
    message_type: 'text',
    user_last_message_time: time,
    bot_last_message_time: botTime,
    attachment_url: null,
    note: '',
    note_automation: '',
    labels: labels.join(', '),
    incoming_message: true,
    send_by: '',
    was_message_by_human: false,
  };
}

/** incoming-image.json: a media message, empty text, attachment_url set. */
export function incomingMedia(parts: MessageParts, media: Media): Payload {
  const base = incomingText(parts);
  const turns = [...(JSON.parse(base.last_messages as string) as Payload[]).slice(0, 1), { ...turn('user', '', parts.time, media.type), media_url: media.url }];
  return {
    ...base,
    last_messages: JSON.stringify(turns),
    last_message_of_user: '',
    message_type: media.type,
    attachment_url: media.url,
  };
}

/** first-contact-referral.json: an ad click, the phone as a number, no bot message yet. */
export function firstContactReferral({ customer, time, customerText }: MessageParts, adNumber: number): Payload {
  const turns = [turn('user', customerText, time)];
  return {
    last_messages: JSON.stringify(turns),
    conversation_paragraph: paragraph(turns),
    phone_number: Number(customer.phoneDigits),
    recipient_name: customer.name,
    user_id: customer.userId,
    last_message_of_user: customerText,
    last_message_of_bot: '',
    message_type: 'text',
    user_last_message_time: time,
    bot_last_message_time: 0,
    attachment_url: null,
    note: '',
    note_automation: '',
    labels: '',
    incoming_message: true,
    send_by: '',
    was_message_by_human: false,
    referral: referral(adNumber),
  };
}

function referral(adNumber: number): Payload {
  const ads = ['Evening photography course', 'Spring sale: 20% off', 'Free delivery this week', 'Book a free consultation'];
  return {
    source_type: 'ad',
    source_id: `1202100${String(adNumber).padStart(11, '0')}`,
    source_url: `https://ads.example.test/c/${adNumber}`,
    headline: ads[adNumber % ads.length],
    body: 'Tap to chat with us on WhatsApp.',
    media_type: 'image',
    image_url: `https://ads.example.test/c/${adNumber}.jpg`,
    ctwa_clid: `ARA${adNumber.toString(36).toUpperCase()}kLmNoPqRsTuVwXyZ`,
    welcome_message: { text: 'Hi! Ask us anything.' },
  };
}

/** outgoing-agent.json: incoming_message false, sent by a person; arrays for last_messages and labels. */
export function outgoingAgent({ customer, time, customerText, agentText, labels }: MessageParts, agent: string): Payload {
  const userTime = time - 265;
  const turns = [turn('user', customerText, userTime), turn('bot', agentText, time)];
  return {
    last_messages: turns,
    conversation_paragraph: paragraph(turns),
    phone_number: customer.phoneDigits,
    recipient_name: customer.name,
    user_id: customer.userId,
    last_message_of_user: customerText,
    last_message_of_bot: agentText,
    message_type: 'text',
    user_last_message_time: userTime,
    bot_last_message_time: time,
    attachment_url: null,
    note: '',
    note_automation: '',
    labels,
    incoming_message: false,
    send_by: agent,
    was_message_by_human: true,
  };
}

/** legacy-incoming.json: the older generation, user_timestamp/bot_timestamp, no note, labels or direction. */
export function legacyIncoming({ customer, time, customerText }: MessageParts): Payload {
  const turns = [turn('user', customerText, time)];
  return {
    last_messages: JSON.stringify(turns),
    conversation_paragraph: paragraph(turns),
    phone_number: customer.phoneDigits,
    recipient_name: '',
    user_id: customer.userId,
    last_message_of_user: customerText,
    last_message_of_bot: '',
    message_type: 'text',
    user_timestamp: time,
    bot_timestamp: 0,
    attachment_url: null,
  };
}
