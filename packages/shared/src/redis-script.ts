import type { Cluster, Redis } from 'ioredis';

export type RedisScript = (keys: readonly string[], args: readonly (string | number | Buffer)[]) => Promise<unknown>;

/**
 * A Lua script run by SHA (ioredis's defineCommand loads it on first use), so
 * each call sends only its keys and arguments. The number of keys is sent with
 * each call, so a script may take a variable number of them.
 */
export function defineScript(redis: Redis | Cluster, name: string, lua: string): RedisScript {
  if (!(name in redis)) redis.defineCommand(name, { lua });
  const command = (redis as unknown as Record<string, (...args: (string | number | Buffer)[]) => Promise<unknown>>)[name]!;
  return (keys, args) => command.call(redis, keys.length, ...keys, ...args);
}
