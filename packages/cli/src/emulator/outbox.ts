import { randomBytes } from 'node:crypto';
import { sendJson, type Route } from './http-io.js';

/** One call to `POST /send`, as `GET /sent` lists it. */
export interface SentCall {
  at: string;
  authorization: string | null;
  body: unknown;
}

/**
 * The send-message endpoint auto-replies call (NOTIFYER_SEND_URL): every call
 * is accepted and kept, so a test or a person can see what would have gone
 * to WhatsApp. The log names the recipient, never the Authorization value.
 */
export function outboxRoutes(log: (line: string) => void): Route[] {
  const sent: SentCall[] = [];
  return [
    {
      method: 'POST',
      path: /^\/send$/,
      handle: async ({ req, res, readBody }) => {
        const body = await readBody();
        sent.push({ at: new Date().toISOString(), authorization: req.headers.authorization ?? null, body });
        const to = typeof body === 'object' && body !== null && 'to' in body ? String((body as { to: unknown }).to) : '';
        log(`send: message to ${to || '(no "to")'} recorded (${sent.length} so far)`);
        sendJson(res, 200, {
          messaging_product: 'whatsapp',
          contacts: [{ input: to, wa_id: to }],
          messages: [{ id: `wamid.${randomBytes(12).toString('hex')}` }],
        });
      },
    },
    { method: 'GET', path: /^\/sent$/, handle: ({ res }) => sendJson(res, 200, sent) },
  ];
}
