import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defineBatchedScript, doneKey, jobKey, laneKey, luaKey, phoneMemoryKey, seqKey, workflowJobId } from '@replyflow/shared';
import type { Redis } from 'ioredis';
import { useRedisServer } from '../helpers/redis-server.js';

// Adds ARGV[1] to the counter KEYS[1]; 'nil' answers nothing, 'pair' a nested reply.
const LUA = `
if ARGV[1] == 'nil' then return nil end
if ARGV[1] == 'pair' then return {KEYS[1], {ARGV[2]}} end
return redis.call('INCRBY', KEYS[1], ARGV[1])`;

async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats');
  return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

describe('batched scripts', () => {
  const redis = useRedisServer();

  test('calls made in one turn share one script call, and each gets its own answer', async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedAdd', LUA);
    await run('g', ['warm'], ['1']); // loads the script
    const before = await scriptCalls(redis.client);
    const answers = await Promise.all([
      run('g', ['a'], ['2']),
      run('g', ['a'], ['3']),
      run('g', ['b'], ['nil']),
      run('g', ['c'], ['pair', 'x']),
    ]);
    assert.deepEqual(answers, [2, 5, null, ['c', ['x']]]);
    assert.equal((await scriptCalls(redis.client)) - before, 1);
  });

  test('an error answers its own call alone, and later calls in the batch still run', async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedAdd', LUA);
    await redis.client.set('not-a-number', 'text');
    const [first, failed, last] = await Promise.allSettled([run('g', ['d'], ['1']), run('g', ['not-a-number'], ['1']), run('g', ['d'], ['1'])]);
    assert.deepEqual(first, { status: 'fulfilled', value: 1 });
    assert.equal(failed.status, 'rejected');
    assert.match(String((failed as PromiseRejectedResult).reason), /not an integer/);
    assert.deepEqual(last, { status: 'fulfilled', value: 2 });
  });

  test('groups never share a script call, and a big batch is split', async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedAdd', LUA);
    await run('g', ['warm'], ['1']);
    let before = await scriptCalls(redis.client);
    await Promise.all([run('one', ['e'], ['1']), run('two', ['f'], ['1']), run('one', ['e'], ['1'])]);
    assert.equal((await scriptCalls(redis.client)) - before, 2);
    assert.equal(await redis.client.get('e'), '2');

    before = await scriptCalls(redis.client);
    const sums = await Promise.all(Array.from({ length: 150 }, () => run('g', ['h'], ['1'])));
    assert.deepEqual(sums, Array.from({ length: 150 }, (_, i) => i + 1), 'answers in call order');
    assert.equal((await scriptCalls(redis.client)) - before, 10, '150 calls in batches of at most 16');
  });

  test("a group's shared keys and arguments go once per script call; each call sees them around its own", async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedShared', `return {table.concat(KEYS, ','), table.concat(ARGV, ',')}`);
    const shared = { keys: ['s1', 's2'], args: ['tail'] };
    await run('g', ['warm'], ['x'], shared);
    const before = await scriptCalls(redis.client);
    const answers = await Promise.all([run('g', ['own1'], ['a', 'b'], shared), run('g', ['own2'], ['c'], shared), run('h', ['k'], ['only'])]);
    assert.deepEqual(answers, [
      ['s1,s2,own1', 'a,b,tail'],
      ['s1,s2,own2', 'c,tail'],
      ['k', 'only'],
    ]);
    assert.equal((await scriptCalls(redis.client)) - before, 2, 'one script call per group');
  });

  test("batches of different scripts waiting on one connection go out in one socket write", async () => {
    const client = redis.server.client();
    try {
      const add = defineBatchedScript(client, 'testBatchedAdd', LUA);
      const addAgain = defineBatchedScript(client, 'testBatchedAddAgain', LUA);
      await Promise.all([add('g', ['warm'], ['1']), addAgain('g', ['warm'], ['1'])]); // loads both scripts
      const socket = client.stream as unknown as { _write: (...args: unknown[]) => void; _writev: (chunks: unknown[], cb: unknown) => void };
      const writes: number[] = [];
      const write = socket._write.bind(socket);
      const writev = socket._writev.bind(socket);
      socket._write = (...args) => (writes.push(1), write(...args));
      socket._writev = (chunks, cb) => (writes.push(chunks.length), writev(chunks, cb));
      const answers = await Promise.all([add('g', ['one-write'], ['1']), addAgain('g', ['one-write'], ['2']), add('h', ['one-write-too'], ['3'])]);
      assert.deepEqual(answers, [1, 3, 3]);
      assert.deepEqual(writes, [3], 'three script calls (two scripts, two groups) in one write');
    } finally {
      client.disconnect();
    }
  });

  test('keys and arguments arrive as they were sent, whatever text they hold', async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedEcho', `return {KEYS, ARGV}`);
    const texts = ['"quoted"', 'back\\slash', 'line\nbreak', 'emoji 🎉 and é', '{"json":[1,"x"]}', '', '12345678901234567890', 'x'.repeat(10_000)];
    const answers = await Promise.all(texts.map((text, i) => run('g', [`key:${i}`, text], [text, String(i)])));
    texts.forEach((text, i) => assert.deepEqual(answers[i], [[`key:${i}`, text], [text, String(i)]], JSON.stringify(text.slice(0, 20))));
  });

  test('a script call that fails whole rejects every call it carried', async () => {
    const run = defineBatchedScript(redis.client, 'testBatchedBroken', 'return (');
    const results = await Promise.allSettled([run('g', [], []), run('g', [], [])]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.match(String((results[0] as PromiseRejectedResult).reason), /Error compiling script/);
  });

  test('luaKey: a script makes the same key as the function that names it', async () => {
    const parts = ['replyflow:{s1}', 'forward', '447700900123', 'a"quoted\\part'];
    const cases: [string, string][] = [
      [luaKey(doneKey, 'a', 'd'), doneKey(parts[0]!, parts[3]!)],
      [luaKey(laneKey, 'a', 'b', 'c'), laneKey(parts[0]!, parts[1]!, parts[2]!)],
      [luaKey(jobKey, 'a', 'b', 'd'), jobKey(parts[0]!, parts[1]!, parts[3]!)],
      [luaKey(phoneMemoryKey, 'a', 'c'), phoneMemoryKey(parts[0]!, parts[2]!)],
      [luaKey(workflowJobId, 'b', 'd'), workflowJobId(parts[1]!, parts[3]!)],
      [luaKey(seqKey, 'a'), seqKey(parts[0]!)],
      [luaKey((p: string) => `${p}'s "key"`, 'a'), `${parts[0]}'s "key"`],
    ];
    for (const [expression, expected] of cases) {
      const made = await redis.client.eval(`local a, b, c, d = ARGV[1], ARGV[2], ARGV[3], ARGV[4] return ${expression}`, 0, ...parts);
      assert.equal(made, expected, expression);
    }
  });
});
