// Contender (b): the webhook-to-queue pipeline a tutorial would write. Express,
// express.json(), a token check, a zod schema, and BullMQ `add` with a hash of
// the body as job id. No lanes, no durable dedupe beyond the job's life, no
// metrics, no logs per request. Run as its own process: PORT, HOST, REDIS_URL,
// WEBHOOK_SECRET.
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import express from 'express';
import { z } from 'zod';

const secret = process.env.WEBHOOK_SECRET ?? '';
const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const queue = new Queue('webhooks', { connection: { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) } });

const unixSeconds = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]);
const text = z.string().nullable().optional();
const webhookSchema = z
  .object({
    phone_number: z.union([z.string(), z.number()]),
    incoming_message: z.boolean().optional(),
    user_last_message_time: unixSeconds.optional(),
    bot_last_message_time: unixSeconds.optional(),
    user_timestamp: unixSeconds.optional(),
    bot_timestamp: unixSeconds.optional(),
    recipient_name: text,
    user_id: text,
    last_message_of_user: text,
    last_message_of_bot: text,
    message_type: text,
    attachment_url: text,
    note: text,
    labels: z.union([z.string(), z.array(z.string())]).nullable().optional(),
    last_messages: z.union([z.string(), z.array(z.unknown())]).nullable().optional(),
    referral: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .passthrough();

const app = express();
app.use(express.json({ limit: '1mb' }));

app.post('/webhooks/notifyer', async (req, res) => {
  if (req.get('x-webhook-signature') !== secret) {
    res.status(401).json({ error: 'invalid_signature' });
    return;
  }
  const parsed = webhookSchema.safeParse(req.body);
  if (!parsed.success) {
    res.status(422).json({ error: 'invalid_payload', issues: parsed.error.issues });
    return;
  }
  const id = createHash('sha256').update(JSON.stringify(req.body)).digest('hex');
  try {
    await queue.add('webhook', parsed.data, { jobId: id });
  } catch {
    res.status(503).json({ error: 'unavailable' });
    return;
  }
  res.status(202).json({ status: 'queued', id });
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, process.env.HOST ?? '127.0.0.1', () => console.log(`naive pipeline listening on ${port}`));
process.on('SIGTERM', () => {
  void queue.close().finally(() => process.exit(0));
});
