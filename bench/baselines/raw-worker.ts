// The worker baselines: a plain BullMQ Worker at replyflow's concurrency, either
// doing the same POST as replyflow's forward workflow (the same request on the
// wire: undici, keep-alive, CONCURRENCY POSTs in flight, the same deadline) or
// nothing at all (BullMQ's own ceiling). MODE=post makes the POST with
// undici's `request`, as its documentation shows; MODE=replyflow-post with
// replyflow's own postJson (POST_MODULE, apps/worker/dist/engine/http-post.js),
// which dispatches with a handler of its own. No lanes, so no per-phone order.
// Its traceparent is made as replyflow makes it (newSpanId), so both pay the
// same for it. Env: REDIS_URL, QUEUE, PREFIX, CONCURRENCY, MODE (post |
// replyflow-post | noop), FORWARD_URL, TARGET, POST_MODULE.
import { newSpanId } from '@replyflow/shared';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';

interface ForwardBody {
  id: string;
  data: { phone: string };
  [key: string]: unknown;
}

const mode = process.env.MODE ?? 'post';
const concurrency = Number(process.env.CONCURRENCY ?? 32);
const target = Number(process.env.TARGET ?? 0);
const forwardUrl = process.env.FORWARD_URL ?? '';
const timeoutMs = 10_000;
const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });

async function post(job: Job<ForwardBody>): Promise<void> {
  const body = JSON.stringify(job.data);
  // The same total deadline as replyflow's http-post.ts, the same way.
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), timeoutMs);
  try {
    await postOnce(job, body, controller.signal);
  } finally {
    clearTimeout(deadline);
  }
}

type PostJson = (agent: Agent, url: string, headers: Record<string, string>, body: string, timeoutMs: number) => Promise<unknown>;
const replyflowPost: PostJson | undefined =
  mode === 'replyflow-post' ? ((await import(process.env.POST_MODULE ?? '')) as { postJson: PostJson }).postJson : undefined;

function headersOf(job: Job<ForwardBody>): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': job.data.id,
    'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
    // As replyflow's forward does: the trace from the event id, span ids from a pooled random draw.
    traceparent: `00-${job.data.id.slice(0, 32)}-${newSpanId()}-01`,
  };
}

async function postOnce(job: Job<ForwardBody>, body: string, signal: AbortSignal): Promise<void> {
  const response = await request(forwardUrl, {
    method: 'POST',
    headers: headersOf(job),
    body,
    dispatcher: agent,
    signal,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  await response.body.dump();
  if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}`);
}

let done = 0;
let firstStart = 0;
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const worker = new Worker<ForwardBody>(
  process.env.QUEUE ?? 'forward',
  async (job) => {
    if (firstStart === 0) firstStart = Date.now();
    if (replyflowPost) await replyflowPost(agent, forwardUrl, headersOf(job), JSON.stringify(job.data), timeoutMs);
    else if (mode === 'post') await post(job);
  },
  { connection, prefix: process.env.PREFIX ?? 'bull', concurrency },
);
worker.on('completed', () => {
  done++;
  if (done === target) console.log(JSON.stringify({ msg: 'drained', count: done, firstStartMs: firstStart, lastEndMs: Date.now() }));
});
worker.on('error', (error) => console.error(JSON.stringify({ msg: 'worker error', err: error.message })));
await worker.waitUntilReady();
console.log(JSON.stringify({ msg: 'raw worker started', mode, concurrency }));

process.on('SIGTERM', () => {
  void worker
    .close()
    .then(() => agent.close())
    .then(() => connection.quit())
    .finally(() => process.exit(0));
});
