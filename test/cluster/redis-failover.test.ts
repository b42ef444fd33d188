import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signatureHeader } from '@replyflow/shared';
import { freePort } from '../helpers/free-port.js';
import { post } from '../helpers/http.js';
import { loadFixture } from '../helpers/fixtures.js';
import { startProcess, type AppProcess } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { sleep } from '../helpers/wait.js';

const SECRET = 'failover-secret';
const base = loadFixture('incoming-text').json;

/**
 * Sends events while a master is killed with kill -9 and a replica takes over,
 * retrying 503s as Notifyer would; then drains them to a receiver and counts
 * acknowledged events that never arrived.
 */
async function failoverRun(ackReplicas: number): Promise<{ acknowledged: number; lost: number; p50: number; p99: number }> {
  const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
  const receiver = await startReceiver();
  const apps: AppProcess[] = [];
  let ingestDied: Promise<never> | undefined;
  try {
    const env = { ...cluster.env(), QUEUE_SHARDS: '3', HOST: '127.0.0.1', JOB_LOCK_MS: '3000' };
    const port = await freePort();
    const ingest = await startProcess('ingest', { ...env, PORT: String(port), METRICS_PORT: '0', WEBHOOK_SECRET: SECRET, REDIS_ACK_REPLICAS: String(ackReplicas) });
    apps.push(ingest);
    // An ingest that dies during the failover fails the run with its last lines, rather than leaving
    // the clients to retry every event 400 times (seen once in CI: the run hung until its timeout).
    let ingestGone = false;
    ingestDied = ingest.waitForExit(3_600_000).then(
      (status) => {
        ingestGone = true;
        return Promise.reject(new Error(`the ingest exited during the run (${JSON.stringify(status)}):\n${ingest.output().split('\n').slice(-30).join('\n')}`));
      },
      () => new Promise<never>(() => {}),
    );
    const url = `http://127.0.0.1:${port}/webhooks/notifyer`;
    const acknowledged = new Set<string>();
    const latencies: number[] = [];
    const total = Number(process.env.FAILOVER_EVENTS ?? 2_000);
    let next = 0;
    const victim = cluster.liveMasters()[0]!;
    const client = async () => {
      while (next < total && !ingestGone) {
        const n = next++;
        const body = JSON.stringify({ ...base, phone_number: `4477015${String(n % 90).padStart(5, '0')}`, user_last_message_time: 1_880_000_000 + n + ackReplicas * 100_000 });
        for (let tries = 0; tries < 400 && !ingestGone; tries++) {
          const started = performance.now();
          const res = await post(url, body, { 'content-type': 'application/json', 'x-webhook-signature': signatureHeader('token', body, SECRET) }).catch(() => undefined);
          if (res && (res.status === 202 || res.status === 200)) {
            latencies.push(performance.now() - started);
            acknowledged.add(res.json.id);
            break;
          }
          await sleep(50);
        }
        if (n === total / 2) {
          await cluster.killNode(victim.port);
          killed();
        }
      }
    };
    let killed!: () => void;
    const victimKilled = new Promise<void>((resolve) => (killed = resolve));
    const restarted = (async () => {
      await victimKilled;
      // With REDIS_ACK_REPLICAS the promoted master needs a replica before it
      // can acknowledge again: the killed node comes back as one, as an operator would bring it.
      await cluster.waitForFailover(victim.port);
      await cluster.restartNode(victim.port);
    })();
    await Promise.race([Promise.all([...Array.from({ length: 16 }, client), restarted]), ingestDied]);
    apps.push(await startProcess('worker', { ...env, METRICS_PORT: '0', FORWARD_URL: receiver.url }));
    const deadline = Date.now() + 60_000;
    const delivered = () => new Set(receiver.requests.map((r) => r.json.id as string));
    while (Date.now() < deadline && [...acknowledged].some((id) => !delivered().has(id))) await sleep(500);
    await sleep(1_000);
    const arrived = delivered();
    latencies.sort((a, b) => a - b);
    return {
      acknowledged: acknowledged.size,
      lost: [...acknowledged].filter((id) => !arrived.has(id)).length,
      p50: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
      p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    };
  } finally {
    ingestDied?.catch(() => {}); // the kill below ends it
    await Promise.allSettled(apps.map((app) => app.kill()));
    await receiver.close();
    await cluster.cleanup();
  }
}

describe('a master killed during traffic (3 masters, 3 replicas)', () => {
  test('without REDIS_ACK_REPLICAS some acknowledged events may be lost; with it, none are', async () => {
    const plain = await failoverRun(0);
    const acked = await failoverRun(1);
    console.log(`REDIS_ACK_REPLICAS=0: ${plain.acknowledged} acknowledged, ${plain.lost} lost, ingest p50 ${plain.p50.toFixed(1)} ms, p99 ${plain.p99.toFixed(1)} ms`);
    console.log(`REDIS_ACK_REPLICAS=1: ${acked.acknowledged} acknowledged, ${acked.lost} lost, ingest p50 ${acked.p50.toFixed(1)} ms, p99 ${acked.p99.toFixed(1)} ms`);
    assert.equal(acked.acknowledged, Number(process.env.FAILOVER_EVENTS ?? 2_000));
    assert.equal(acked.lost, 0);
  });
});
