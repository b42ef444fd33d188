import type { Redis } from 'ioredis';

export interface SnapshotOptions {
  /** Hash fields that hold times: only whether each is there is kept. */
  timeFields: readonly string[];
  /** Whether sorted sets keep their scores (not where scores are times). */
  zsetScores: boolean;
  /** String keys left out (locks, stall-check stamps: tokens and times). */
  skipStrings?: RegExp;
}

/**
 * Every key under `prefix` with its type and content, minus what differs by
 * nature between two runs of the same work (times, stream ids), so that two
 * prefixes written the same way compare equal.
 */
export async function redisSnapshot(redis: Redis, prefix: string, options: SnapshotOptions): Promise<Record<string, unknown>> {
  const shot: Record<string, unknown> = {};
  for (const key of (await redis.keys(`${prefix}:*`)).sort()) {
    const name = key.slice(prefix.length);
    const type = await redis.type(key);
    if (type === 'hash') {
      const fields = await redis.hgetall(key);
      const times = options.timeFields.map((field) => field in fields);
      for (const field of options.timeFields) delete fields[field];
      shot[name] = { type, fields, times };
    } else if (type === 'list') shot[name] = { type, items: await redis.lrange(key, 0, -1) };
    else if (type === 'zset') shot[name] = { type, items: options.zsetScores ? await redis.zrange(key, 0, -1, 'WITHSCORES') : await redis.zrange(key, 0, -1) };
    else if (type === 'stream') shot[name] = { type, entries: (await redis.xrange(key, '-', '+')).map(([, fields]) => fields) };
    else if (!options.skipStrings?.test(name)) shot[name] = { type, value: await redis.get(key) };
  }
  return shot;
}
