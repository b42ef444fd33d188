import { clusterSeed, Cluster, Redis, withDeadline, type Config, type RedisClient } from '@replyflow/shared';
import { CommandFailedError } from './errors.js';

const CONNECT_TIMEOUT_MS = 3_000;
const COMMAND_TIMEOUT_MS = 5_000;
// ioredis waits this long for a socket to close before destroying it (2 s by
// default), and after a refused connection that timer alone keeps the process up.
const DISCONNECT_TIMEOUT_MS = 100;

/**
 * A connection for a short-lived command: one attempt, a deadline, and no
 * queueing of commands while disconnected. The services' connections retry
 * forever, which is right for a daemon and wrong for an operator at a prompt,
 * who wants "Redis is unreachable" within seconds.
 */
export async function connectRedis(config: Pick<Config, 'redisUrl' | 'redisClusterNodes'>): Promise<RedisClient> {
  let lastError: Error | undefined;
  const perNode = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
  };
  const seeds = config.redisClusterNodes ?? [];
  const redisUrl = seeds.length > 0 ? seeds.join(',') : config.redisUrl;
  const redis: RedisClient =
    seeds.length > 0
      ? new Cluster(
          seeds.map(clusterSeed),
          { lazyConnect: true, redisOptions: perNode, clusterRetryStrategy: () => null, enableOfflineQueue: false },
        )
      : new Redis(config.redisUrl, { ...perNode, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  // Without a listener ioredis prints every connection error itself.
  redis.on('error', (err: Error) => (lastError = err));
  try {
    await withDeadline(redis.connect(), CONNECT_TIMEOUT_MS + 500);
    return redis;
  } catch (err) {
    redis.disconnect();
    const reason = describe(lastError ?? (err as Error));
    throw new CommandFailedError(`cannot reach Redis at ${redactUrl(redisUrl)}: ${reason}`, { cause: err });
  }
}

function describe(err: Error): string {
  const code = (err as { code?: string }).code;
  return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}

/** A password in REDIS_URL must not reach a terminal or a CI log. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid REDIS_URL)';
  }
}
