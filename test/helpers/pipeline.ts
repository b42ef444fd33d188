import { signatureHeader } from '@replyflow/shared';
import { freePort } from './free-port.js';
import { post, type HttpResponse } from './http.js';
import { startProcess, type AppProcess } from './processes.js';
import { startReceiver, type Behaviour, type Receiver } from './receiver.js';
import { startRedis, type RedisOptions, type RedisServer } from './redis-server.js';

export const SECRET = 'test-webhook-secret';

export interface PipelineOptions {
  ingestEnv?: Record<string, string>;
  workerEnv?: Record<string, string>;
  /** Start a worker (default true). */
  worker?: boolean;
  receiver?: Behaviour;
  redis?: RedisOptions;
}

export interface Pipeline {
  redis: RedisServer;
  receiver: Receiver;
  ingest: AppProcess;
  worker: AppProcess | undefined;
  webhookUrl: string;
  ingestMetricsUrl: string;
  workerMetricsUrl: string;
  workerEnv: Record<string, string>;
  /** Posts a payload signed in token mode with SECRET, unless headers say otherwise. */
  send(body: string | Buffer | object, headers?: Record<string, string>): Promise<HttpResponse>;
  startWorker(extraEnv?: Record<string, string>): Promise<AppProcess>;
  stop(): Promise<void>;
}

/** A private redis-server, a receiver for FORWARD_URL, and the real ingest and worker processes. */
export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const redis = await startRedis(options.redis);
  const receiver = await startReceiver(options.receiver);
  const [port, ingestMetricsPort, workerMetricsPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const common = { REDIS_URL: redis.url, HOST: '127.0.0.1' };
  const workerEnv = {
    ...common,
    METRICS_PORT: String(workerMetricsPort),
    FORWARD_URL: receiver.url,
    BACKOFF_BASE_MS: '50',
    ...options.workerEnv,
  };
  const ingest = await startProcess('ingest', {
    ...common,
    PORT: String(port),
    METRICS_PORT: String(ingestMetricsPort),
    WEBHOOK_SECRET: SECRET,
    ...options.ingestEnv,
  });
  const workers: AppProcess[] = [];
  const startWorker = async (extraEnv: Record<string, string> = {}) => {
    // Only the first worker gets the known metrics port; more pick free ones.
    const port = workers.length === 0 ? {} : { METRICS_PORT: '0' };
    const worker = await startProcess('worker', { ...workerEnv, ...port, ...extraEnv });
    workers.push(worker);
    return worker;
  };
  const worker = options.worker === false ? undefined : await startWorker();
  const webhookUrl = `http://127.0.0.1:${port}/webhooks/notifyer`;
  return {
    redis,
    receiver,
    ingest,
    worker,
    webhookUrl,
    ingestMetricsUrl: `http://127.0.0.1:${ingestMetricsPort}/metrics`,
    workerMetricsUrl: `http://127.0.0.1:${workerMetricsPort}/metrics`,
    workerEnv,
    send: (body, headers = {}) => {
      const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      return post(webhookUrl, text, {
        'content-type': 'application/json',
        'x-webhook-signature': signatureHeader('token', text, SECRET),
        ...headers,
      });
    },
    startWorker,
    stop: async () => {
      await Promise.allSettled([ingest.kill(), ...workers.map((w) => w.kill())]);
      await receiver.close();
      await redis.cleanup();
    },
  };
}

/** The value of one sample in Prometheus text, or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}
