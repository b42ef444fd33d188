// replyflow's ingest and worker as every section starts them: on the bench's
// Redis, at the bench's log level, the ingest signed with the bench's secret.
import type { BenchContext } from './context.js';
import { SECRET } from './payloads.js';
import { startApp, type NodeProcess } from './procs.js';

/** replyflow's ingest on 127.0.0.1:`port`, its metrics on `metricsPort`; `extraEnv` (e.g. REDIS_CLUSTER_NODES, QUEUE_SHARDS) overrides. */
export function startIngest(
  ctx: BenchContext,
  port: number,
  metricsPort: number,
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<NodeProcess> {
  const env = {
    REDIS_URL: ctx.redis.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    WEBHOOK_SECRET: SECRET,
    LOG_LEVEL: ctx.config.logLevel,
    ...extraEnv,
  };
  return startApp('ingest', env, nodeArgs);
}

/** replyflow's worker forwarding to `forwardUrl`, at the bench's concurrency, its metrics on a port of its own. */
export function startWorker(
  ctx: BenchContext,
  forwardUrl: string,
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<NodeProcess> {
  const env = {
    REDIS_URL: ctx.redis.url,
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    FORWARD_URL: forwardUrl,
    WORKER_CONCURRENCY: String(ctx.config.workerConcurrency),
    LOG_LEVEL: ctx.config.logLevel,
    ...extraEnv,
  };
  return startApp('worker', env, nodeArgs);
}
