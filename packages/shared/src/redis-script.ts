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

/**
 * The calls one batch carries at most. A full batch goes at once, without
 * waiting for the turn to end, so that Redis runs it while the process reads
 * the next requests: in the ingest, waiting for the end of the turn sent 50
 * webhooks as one batch and left the process idle a quarter of the time while
 * Redis ran it. Sixteen calls still share the cost of a script call.
 */
const BATCH_SIZE = 16;

/** Keys and arguments every call of a group has in common, sent once per script call. */
export interface SharedPart {
  keys: readonly string[];
  args: readonly (string | number)[];
}

const NOTHING_SHARED: SharedPart = { keys: [], args: [] };

interface PendingCall {
  keys: readonly string[];
  args: readonly string[];
  shared: SharedPart;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * Runs `lua` once per call, for every call of one batch (defineBatchedScript
 * below says which calls form one). The script body sees its own KEYS and ARGV
 * and its `return` answers its call; an error in one call answers that call
 * alone. A call sees the shared keys before its own and the shared arguments
 * after its own.
 *
 * Every call's own keys and arguments travel as one JSON argument, decoded by
 * Redis's cjson: ioredis spends about half a microsecond on each argument of
 * a command (flattening, measuring, concatenating), where one JSON text of a
 * batch costs about that per call (the worker's profile). ARGV: the number of
 * shared keys, the JSON array (each call's keys, then its arguments), then
 * the shared arguments. KEYS: the shared keys, or, without any, the first
 * call's first key; KEYS are there to route the call in a cluster, where every
 * key of a group lives in one slot (`group` below).
 */
const batchLua = (lua: string) => `
local function one(KEYS, ARGV)
${lua}
end
local sharedKeys = tonumber(ARGV[1])
local calls = cjson.decode(ARGV[2])
local sharedArgs = #ARGV - 2
local results = {}
for i = 1, #calls / 2 do
  local keys, args = calls[2 * i - 1], calls[2 * i]
  if sharedKeys > 0 then
    local own = keys
    keys = {}
    for j = 1, sharedKeys do keys[j] = KEYS[j] end
    for j = 1, #own do keys[sharedKeys + j] = own[j] end
  end
  local argCount = #args
  for j = 1, sharedArgs do args[argCount + j] = ARGV[2 + j] end
  local ok, result = pcall(one, keys, args)
  if not ok then
    result = type(result) == 'table' and result or {err = tostring(result)}
  elseif result == nil then
    result = false
  end
  results[i] = result
end
return results
`;

/** Batches waiting for the end of the turn, by connection. */
const waitingSends = new Map<Redis | Cluster, (() => void)[]>();

/**
 * Runs `send` at the end of the turn, with every other batch that waits on the
 * same connection, in one socket write: a write on a loopback socket cost the
 * worker about 5 µs (the kernel hands the bytes to Redis in that call), and
 * its turn and finishing scripts each sent a small batch per turn. A cluster's
 * commands go to several sockets, each written as its own.
 */
function sendAtTurnEnd(redis: Redis | Cluster, send: () => void): void {
  let sends = waitingSends.get(redis);
  if (sends) {
    sends.push(send);
    return;
  }
  waitingSends.set(redis, (sends = [send]));
  setImmediate(() => {
    waitingSends.delete(redis);
    const socket = 'stream' in redis ? redis.stream : undefined;
    socket?.cork();
    try {
      for (const waiting of sends) waiting();
    } finally {
      socket?.uncork();
    }
  });
}

/**
 * One call: its group, its own keys and arguments, and what it has in common
 * with every call of its group (the first call's shared part stands for all).
 */
export type BatchedScript = (group: string, keys: readonly string[], args: readonly string[], shared?: SharedPart) => Promise<unknown>;

/**
 * A script whose calls are gathered while the event loop turns and sent
 * together, at the end of the turn or as soon as BATCH_SIZE are waiting: under
 * load, many webhooks finish their checks in one turn, and one script call for
 * a batch of them costs ioredis less than one call each (Redis's cost is the
 * commands the script runs, which a batch does not change). On an
 * auto-pipelined connection, ioredis holds a batch back while the previous one
 * runs, so the batches of a busy process belong on a connection without it.
 * `group` names the calls that may share a script call: in a cluster, all of
 * a script call's keys must live in one slot.
 */
export function defineBatchedScript(redis: Redis | Cluster, name: string, lua: string): BatchedScript {
  const run = defineScript(redis, name, batchLua(lua));
  let pending = new Map<string, PendingCall[]>();
  let scheduled = false;

  const send = (calls: PendingCall[]) => {
    const { shared } = calls[0]!;
    const own: (readonly string[])[] = [];
    for (const call of calls) own.push(call.keys, call.args);
    const keys = shared.keys.length > 0 ? shared.keys : calls[0]!.keys.slice(0, 1);
    const args: (string | number)[] = [shared.keys.length, JSON.stringify(own)];
    for (const arg of shared.args) args.push(arg);
    run(keys, args).then(
      (results) => {
        (results as unknown[]).forEach((result, i) => {
          const call = calls[i]!;
          if (result instanceof Error) call.reject(result);
          else call.resolve(result);
        });
      },
      (error: Error) => {
        for (const call of calls) call.reject(error);
      },
    );
  };

  const flush = () => {
    scheduled = false;
    const groups = pending;
    pending = new Map();
    for (const calls of groups.values()) send(calls);
  };

  return (group, keys, args, shared = NOTHING_SHARED) =>
    new Promise((resolve, reject) => {
      let calls = pending.get(group);
      if (!scheduled) {
        scheduled = true;
        sendAtTurnEnd(redis, flush);
      }
      if (!calls) pending.set(group, (calls = []));
      calls.push({ keys, args, shared, resolve, reject });
      if (calls.length === BATCH_SIZE) {
        pending.delete(group);
        send(calls);
      }
    });
}

/**
 * A key as a Lua expression, built from the function that names it
 * everywhere else, so that a script can make the keys it is not sent (an
 * argument of a batched call costs both ioredis and Redis's JSON decoder by
 * its length): `luaKey(doneKey, 'P', 'id')` is `P .. ":done:" .. id`. Each
 * argument after the first names a Lua variable that holds that part.
 */
export function luaKey<Parts extends string[]>(key: (...parts: Parts) => string, ...variables: Parts): string {
  const template = key(...(variables.map((_, i) => `\u0001${i}\u0001`) as Parts));
  return template
    .split(/\u0001(\d+)\u0001/)
    .map((piece, i) => (i % 2 === 1 ? variables[Number(piece)] : piece && JSON.stringify(piece)))
    .filter(Boolean)
    .join(' .. ');
}
