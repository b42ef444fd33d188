// Worker throughput with per-phone ordering constraining the work (events
// spread over few phones) versus not (every event its own phone), same run,
// same machine. Usage: node --import tsx bench/ordering.ts [events] [phones]
import { signatureHeader } from '@replyflow/shared';
import { freePort } from '../test/helpers/free-port.js';
import { post } from '../test/helpers/http.js';
import { loadFixture } from '../test/helpers/fixtures.js';
import { startProcess } from '../test/helpers/processes.js';
import { startReceiver } from '../test/helpers/receiver.js';
import { startRedis } from '../test/helpers/redis-server.js';

const events = Number(process.argv[2] ?? 3000);
const phones = Number(process.argv[3] ?? 50);
const SECRET = 'bench-secret';

async function run(label: string, phoneCount: number): Promise<number> {
  const redis = await startRedis({ appendonly: false });
  const receiver = await startReceiver();
  const port = await freePort();
  const env = { REDIS_URL: redis.url, HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
  const ingest = await startProcess('ingest', { ...env, PORT: String(port), METRICS_PORT: '0', WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'info' });
  try {
    const base = loadFixture('incoming-text').json;
    const url = `http://127.0.0.1:${port}/webhooks/notifyer`;
    for (let sent = 0; sent < events; sent += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, events - sent) }, (_, i) => {
          const n = sent + i;
          const body = JSON.stringify({ ...base, phone_number: `44${String(n % phoneCount).padStart(10, '0')}`, user_last_message_time: 1_700_000_000 + n });
          return post(url, body, { 'content-type': 'application/json', 'x-webhook-signature': signatureHeader('token', body, SECRET) });
        }),
      );
    }
    const started = Date.now();
    const worker = await startProcess('worker', { ...env, METRICS_PORT: '0', FORWARD_URL: receiver.url, LOG_LEVEL: 'info' });
    await receiver.waitFor(events, 300_000);
    const rate = events / ((Date.now() - started) / 1000);
    console.log(`${label.padEnd(28)} ${events} events over ${String(phoneCount).padStart(5)} phones: ${rate.toFixed(0)} events/s`);
    await worker.stop();
    return rate;
  } finally {
    await ingest.stop();
    await receiver.close();
    await redis.cleanup();
  }
}

const ordered = await run('ordering constrains', phones);
const unordered = await run('ordering never waits', events);
console.log(`ratio ordered/unordered: ${(ordered / unordered).toFixed(2)}`);
