import type { Cluster, Redis } from 'ioredis';

export type RedisScript = (keys: readonly string[], args: readonly (string | number | Buffer)[]) => Promise<unknown>;

/**
 * A Lua script run by SHA (ioredis's defineCommand loads it on first use), so
 * each call sends only its keys and arguments.
 */
export function defineScript(redis: Redis | Cluster, name: string, numberOfKeys: number, lua: string): RedisScript {
  if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
  const command = (redis as unknown as Record<string, (...args: (string | number | Buffer)[]) => Promise<unknown>>)[name]!;
  return (keys, args) => command.call(redis, ...keys, ...args);
}
