import { createRequire } from 'node:module';
import { defineBatchedScript, doneKey, laneKey, seqKey, shardOwnerKey, EVENTS_QUEUE, type RedisClient } from '@replyflow/shared';
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
// KEYS 1-9: BullMQ's; 10 done record, 11 job, 12 lane, 13 sequence, 14 owner.
// ARGV 2: the job data without seq; 4 event id, 5 our shard count, 6 the queue's key prefix, 7 the time (ms).
const CLAIM_PREFIX = `
if redis.call('GET', KEYS[14]) ~= ARGV[5] then return ${FENCED} end
if redis.call('EXISTS', KEYS[10], KEYS[11]) > 0 then return ${DUPLICATE} end
local claimedSeq = redis.call('ZSCORE', KEYS[12], ARGV[4])
if not claimedSeq then
  claimedSeq = redis.call('INCR', KEYS[13])
  redis.call('ZADD', KEYS[12], claimedSeq, ARGV[4])
end
ARGV[1] = cmsgpack.pack({ARGV[6], ARGV[4], '${JOB_NAME}', tonumber(ARGV[7])})
ARGV[2] = '{"seq":' .. claimedSeq .. ',' .. string.sub(ARGV[2], 2)
ARGV[3] = '\\132\\168attempts\\0\\165jobId' .. cmsgpack.pack(ARGV[4]) .. '\\176removeOnComplete\\195\\172removeOnFail\\194'
`;

/** The event's job data as JSON, without `seq` (the script adds it). */
export type JobDataJson = string;

export type EnqueueScript = (shardPrefix: string, shardCount: number, eventId: string, phone: string, data: JobDataJson) => Promise<string | number>;

/** Claim and add in one script: returns the job id, DUPLICATE or FENCED. */
export function defineEnqueueScript(redis: RedisClient): EnqueueScript {
  const run = defineBatchedScript(redis, 'replyflowEnqueueEvents', CLAIM_PREFIX + addStandardJob.content);
  const queues = new Map<string, { keys: string[]; keyPrefix: string }>();
  const queueOf = (shardPrefix: string) => {
    let queue = queues.get(shardPrefix);
    if (!queue) {
      const k = new QueueKeys(shardPrefix).getKeys(EVENTS_QUEUE);
      queue = { keys: [k.wait!, k.paused!, k.meta!, k.id!, k.completed!, k.delayed!, k.active!, k.events!, k.marker!], keyPrefix: k['']! };
      queues.set(shardPrefix, queue);
    }
    return queue;
  };
  return (shardPrefix, shardCount, eventId, phone, data) => {
    const { keys, keyPrefix } = queueOf(shardPrefix);
    const ours = [doneKey(shardPrefix, eventId), `${keyPrefix}${eventId}`, laneKey(shardPrefix, EVENTS_QUEUE, phone), seqKey(shardPrefix), shardOwnerKey(shardPrefix)];
    return run(shardPrefix, [...keys, ...ours], ['', data, '', eventId, String(shardCount), keyPrefix, String(Date.now())]) as Promise<string | number>;
  };
}
