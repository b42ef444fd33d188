// The one private redis-server the whole benchmark runs on, configured as
// docker-compose runs it (append-only file on, fsync every second, noeviction),
// except that AOF rewrites happen only between measurements, never during one.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freePort } from '../../test/helpers/free-port.js';
import { RedisServer } from '../../test/helpers/redis-server.js';
import { sleep } from './log.js';

export interface BenchRedis {
  server: RedisServer;
  url: string;
  client: Redis;
  pid: number;
  version: string;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'replyflow-bench-redis-'));
  const args = [
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--auto-aof-rewrite-percentage', '0',
    '--maxmemory-policy', 'noeviction',
  ];
  const server = new RedisServer(await freePort(), dir, args);
  try {
    await server.start();
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const client = server.client();
  const info = parseInfo(await client.info('server'));
  return { server, url: server.url, client, pid: Number(info.process_id), version: info.redis_version ?? 'unknown' };
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

export async function usedMemory(client: Redis): Promise<number> {
  return Number(parseInfo(await client.info('memory')).used_memory);
}

export interface CommandStat {
  calls: number;
  usec: number;
}

/** `INFO commandstats`: calls per command (commands run by Lua scripts included). */
export async function commandStats(client: Redis): Promise<Record<string, CommandStat>> {
  const stats: Record<string, CommandStat> = {};
  for (const [key, value] of Object.entries(parseInfo(await client.info('commandstats')))) {
    const calls = /calls=(\d+)/.exec(value);
    const usec = /usec=(\d+)/.exec(value);
    stats[key.replace(/^cmdstat_/, '')] = { calls: Number(calls?.[1] ?? 0), usec: Number(usec?.[1] ?? 0) };
  }
  return stats;
}

/** Shrinks the append-only file now, so its rewrite never lands inside a measurement. */
export async function rewriteAof(client: Redis): Promise<void> {
  await client.bgrewriteaof().catch(() => {}); // "already in progress" is fine
  for (;;) {
    const info = parseInfo(await client.info('persistence'));
    if (info.aof_rewrite_in_progress === '0' && info.aof_rewrite_scheduled === '0') return;
    await sleep(50);
  }
}

/** Empties Redis between runs whose processes are all stopped. */
export async function flushAll(client: Redis): Promise<void> {
  await client.flushall();
  await rewriteAof(client);
}

/**
 * Deletes every key except BullMQ's queue `meta` hashes and the shard layout
 * (record and shard stamps), for runs whose processes keep running: they wrote
 * those at start and never write them again.
 */
const KEPT_KEYS = /:(meta|owner|layouts)$/;

export async function deleteDataKeys(client: Redis): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 5000);
    cursor = next;
    const doomed = keys.filter((key) => !KEPT_KEYS.test(key));
    for (let i = 0; i < doomed.length; i += 1000) deleted += await client.del(...doomed.slice(i, i + 1000));
  } while (cursor !== '0');
  await rewriteAof(client);
  return deleted;
}
