import { createRequire } from 'node:module';
import { defineBatchedScript, doneKey, laneKey, seqKey, shardOwnerKey, EVENTS_QUEUE, type RedisClient, type SharedPart } from '@replyflow/shared';
import { QueueKeys } from 'bullmq';

export const DUPLICATE = -1;
export const FENCED = -2;

// BullMQ's own script for adding a job, as the installed version ships it:
// the job it writes is exactly what Queue.add writes (enqueue-script.test.ts
// compares the two), so a BullMQ upgrade that changes it fails that test.
const require = createRequire(import.meta.url);
const { addStandardJob } = require('bullmq/dist/cjs/scripts/addStandardJob-9.js') as { addStandardJob: { content: string; keys: number } };

const JOB_NAME = 'event';

// Runs before BullMQ's script, in the same call, so that checking for a
// duplicate, taking the phone's next place and adding the job are one atomic
// step and one round trip. The shard must belong to our shard count
// (layouts.ts). Known: done record or job present. Otherwise the event gets the
// shard's next acceptance number, its place in the phone's lane, and that number
// in its job data (the data arrives without it: `{` + the other fields).
// BullMQ's packed arguments are built here rather than by the caller: a call of
// strings only is written by ioredis as one string, where two msgpack buffers
// cost it a buffer per argument and a copy of the whole batch. They hold what
// Queue.add packs for these options; the nil arguments Queue.add packs read as
// nil alike. The options are a msgpack map written out (0x84: four entries,
// then each key and value: attempts 0, jobId, removeOnComplete true,
// removeOnFail false) because the job stores them as JSON in the order they
// were packed, and a Lua table would pack them in an order of its own.
// What every event of a shard has in common is sent once per batch (the shared
// part, redis-script.ts): its keys come first, its arguments last.
// KEYS 1-9: BullMQ's, 10 sequence, 11 owner (shared); 12 done record, 13 job, 14 lane.
// ARGV 1: the job data without seq, 2 event id, 3 the time (ms); 4 our shard
// count, 5 the queue's key prefix (shared). ARGV 1-3 then become BullMQ's.
const CLAIM_PREFIX = `
if redis.call('GET', KEYS[11]) ~= ARGV[4] then return ${FENCED} end
if redis.call('EXISTS', KEYS[12], KEYS[13]) > 0 then return ${DUPLICATE} end
local data, eventId, now = ARGV[1], ARGV[2], ARGV[3]
local claimedSeq = redis.call('ZSCORE', KEYS[14], eventId)
if not claimedSeq then
  claimedSeq = redis.call('INCR', KEYS[10])
  redis.call('ZADD', KEYS[14], claimedSeq, eventId)
end
ARGV[1] = cmsgpack.pack({ARGV[5], eventId, '${JOB_NAME}', tonumber(now)})
ARGV[2] = '{"seq":' .. claimedSeq .. ',' .. string.sub(data, 2)
ARGV[3] = '\\132\\168attempts\\0\\165jobId' .. cmsgpack.pack(eventId) .. '\\176removeOnComplete\\195\\172removeOnFail\\194'
`;

/** The event's job data as JSON, without `seq` (the script adds it). */
export type JobDataJson = string;

export type EnqueueScript = (shardPrefix: string, shardCount: number, eventId: string, phone: string, data: JobDataJson) => Promise<string | number>;

/** Claim and add in one script: returns the job id, DUPLICATE or FENCED. */
export function defineEnqueueScript(redis: RedisClient): EnqueueScript {
  const run = defineBatchedScript(redis, 'replyflowEnqueueEvents', CLAIM_PREFIX + addStandardJob.content);
  const shards = new Map<string, { group: string; shared: SharedPart; keyPrefix: string }>();
  // The shard count is among the shared arguments, so it names the group too:
  // calls made under another count never share a script call.
  const shardOf = (shardPrefix: string, shardCount: number) => {
    const group = `${shardPrefix} ${shardCount}`;
    let shard = shards.get(group);
    if (!shard) {
      const k = new QueueKeys(shardPrefix).getKeys(EVENTS_QUEUE);
      const keys = [k.wait!, k.paused!, k.meta!, k.id!, k.completed!, k.delayed!, k.active!, k.events!, k.marker!, seqKey(shardPrefix), shardOwnerKey(shardPrefix)];
      shard = { group, shared: { keys, args: [String(shardCount), k['']!] }, keyPrefix: k['']! };
      shards.set(group, shard);
    }
    return shard;
  };
  return (shardPrefix, shardCount, eventId, phone, data) => {
    const { group, shared, keyPrefix } = shardOf(shardPrefix, shardCount);
    const keys = [doneKey(shardPrefix, eventId), `${keyPrefix}${eventId}`, laneKey(shardPrefix, EVENTS_QUEUE, phone)];
    return run(group, keys, [data, eventId, String(Date.now())], shared) as Promise<string | number>;
  };
}
