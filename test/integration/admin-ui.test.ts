import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEAD_LETTER_QUEUE, EVENTS_QUEUE, type WorkflowJobData } from '@replyflow/shared';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { chromium, type Browser } from 'playwright-core';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { freePort } from '../helpers/free-port.js';
import { get } from '../helpers/http.js';
import { startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { repoRoot } from '../helpers/repo-root.js';
import { waitUntil } from '../helpers/wait.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PASSWORD = 'pw';
const PREFIX = 'replyflow';
const SCREENSHOT = join(repoRoot, 'docs', 'admin-ui.png');

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
let nextTime = 1_870_000_000;
const freshEvent = () => withMessageTime(loadFixture('incoming-text').json, nextTime++);

/**
 * The TCP ports a process listens on, from /proc: its socket inodes, matched
 * with the listening sockets of /proc/net/tcp and tcp6. Asking the process,
 * not the port: another test may take a free port between the pick and the check.
 */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
      return /^socket:\[(\d+)\]$/.exec(target)?.slice(1) ?? [];
    }),
  );
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) =>
    readFileSync(table, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      // local_address is HEX_IP:HEX_PORT, state 0A is LISTEN, the inode is the tenth field.
      .filter((fields) => fields[3] === '0A' && inodes.has(fields[9] ?? ''))
      .map((fields) => parseInt(fields[1]!.split(':')[1]!, 16)),
  );
}

describe('queue dashboard on ADMIN_PORT (contract section 1)', () => {
  let p: Pipeline;
  let adminUrl: string;
  let connection: ConnectionOptions;

  before(async () => {
    const adminPort = await freePort();
    // A forward that answers 400 is permanent: the event lands on the dead-letter queue at once.
    p = await startPipeline({ ingestEnv: { ADMIN_PASSWORD: PASSWORD, ADMIN_PORT: String(adminPort) }, receiver: () => ({ status: 400 }) });
    adminUrl = `http://127.0.0.1:${adminPort}`;
    connection = { host: '127.0.0.1', port: p.redis.port, maxRetriesPerRequest: null };
  });
  after(() => p?.stop());

  test('answers 401 with WWW-Authenticate on every path without the right credentials, 200 with them', async () => {
    for (const path of ['/', '/api/queues', '/static/favicon.ico', '/no-such-page']) {
      const res = await get(`${adminUrl}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.headers['www-authenticate'], 'Basic realm="replyflow"', path);
      assert.equal(res.json.error, 'unauthorized');
    }
    for (const authorization of [basic('admin', 'wrong'), basic('admin', `${PASSWORD}x`), basic('root', PASSWORD), 'Bearer pw', 'Basic !!!']) {
      const res = await get(`${adminUrl}/`, { authorization });
      assert.equal(res.status, 401, authorization);
      assert.equal(res.headers['www-authenticate'], 'Basic realm="replyflow"');
    }
    const page = await get(`${adminUrl}/`, { authorization: basic('admin', PASSWORD) });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /text\/html/);
    const api = await get(`${adminUrl}/api/queues`, { authorization: basic('admin', PASSWORD) });
    assert.equal(api.status, 200);
    const names = (api.json.queues as { name: string }[]).map((queue) => queue.name);
    assert.ok(names.includes(EVENTS_QUEUE) && names.includes(DEAD_LETTER_QUEUE), names.join(', '));
  });

  test('is not listening without ADMIN_PASSWORD', async () => {
    const adminPort = await freePort();
    const plain = await startPipeline({ worker: false, ingestEnv: { ADMIN_PORT: String(adminPort) } });
    try {
      const listening = await plain.ingest.waitForLog((log) => log.msg === 'ingest listening', 1_000);
      assert.equal(listening.adminPort, null);
      const ports = listeningPorts(plain.ingest.pid);
      const webhookPort = Number(new URL(plain.webhookUrl).port);
      assert.ok(ports.includes(webhookPort), `the ingest's own port ${webhookPort} is among ${ports.join(', ')}`);
      assert.ok(!ports.includes(adminPort), `the ingest listens on ADMIN_PORT ${adminPort}`);
    } finally {
      await plain.stop();
    }
  });

  test('in a browser: lists the queues and retries a failed forward job', async (t) => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install the Debian package chromium (apt-get install -y chromium; .ci/run does it)`,
    );

    // A real dead letter, made by the real worker.
    const deadLetters = new Queue(DEAD_LETTER_QUEUE, { connection, prefix: PREFIX });
    t.after(() => deadLetters.close());
    assert.equal((await p.send(freshEvent())).status, 202);
    await waitUntil(
      async () => ((await deadLetters.getJobCounts('waiting')).waiting === 1 ? true : undefined),
      15_000,
      () => 'the event never reached the dead-letter queue',
      100,
    );
    // The real worker dead-letters any job BullMQ fails and would race this test's consumer, so it
    // stops here; BullMQ's failed state is made the way a worker reaches it: a processor that throws.
    await p.worker!.stop();
    const waitingEvent = await p.send(freshEvent());
    assert.equal(waitingEvent.status, 202);

    const forward = new Queue<WorkflowJobData>('forward', { connection, prefix: PREFIX });
    t.after(() => forward.close());
    let runs = 0;
    const consumer = new Worker<WorkflowJobData>(
      'forward',
      async () => {
        runs += 1;
        if (runs === 1) throw new Error('receiver answered 503');
      },
      { connection, prefix: PREFIX },
    );
    t.after(() => consumer.close());
    const eventId = waitingEvent.json.id as string;
    const jobId = `forward.${eventId}`;
    await forward.add(
      'forward',
      { eventId, workflow: 'forward', receivedAt: Date.now(), traceId: '0'.repeat(32), payload: freshEvent(), seq: 1, lane: 'test', firstContact: false },
      { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false },
    );
    await waitUntil(async () => ((await forward.getJobState(jobId)) === 'failed' ? true : undefined), 10_000, () => `${jobId} never failed`);

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    t.after(() => browser.close());

    // Without credentials Chromium gets the 401 challenge; Playwright, having none to give, ends the navigation.
    const anonymous = await browser.newContext();
    const anonymousPage = await anonymous.newPage();
    const challenged = anonymousPage.waitForResponse((res) => res.url() === `${adminUrl}/`);
    await anonymousPage.goto(adminUrl).catch((error: Error) => assert.match(error.message, /ERR_INVALID_AUTH_CREDENTIALS/));
    const refused = await challenged;
    assert.equal(refused.status(), 401);
    assert.equal(await refused.headerValue('www-authenticate'), 'Basic realm="replyflow"');
    await anonymous.close();

    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: PASSWORD }, viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const opened = await page.goto(adminUrl);
    assert.equal(opened?.status(), 200);
    const menu = page.locator('#bull-board-sidebar');
    for (const name of [EVENTS_QUEUE, 'forward', DEAD_LETTER_QUEUE]) {
      // A queue whose worker started after the ingest appears with the next queue list, polled every few seconds.
      await menu.getByRole('link', { name, exact: true }).waitFor({ timeout: 20_000 });
    }
    // The overview card's "Failed 1" flag links to the queue's failed jobs.
    const failedFlag = page.locator('main a[href$="/queue/forward?status=failed"]');
    await failedFlag.waitFor();
    await page.waitForLoadState('networkidle');
    const shots = await mkdtemp(join(tmpdir(), 'replyflow-admin-ui-'));
    await mkdir(join(repoRoot, 'docs'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    await copyFile(SCREENSHOT, join(shots, 'admin-ui.png'));

    await failedFlag.click();
    await page.getByRole('link', { name: jobId }).click();
    await page.waitForURL(new RegExp(`/queue/forward/${jobId}`));
    // bull-board's job actions are icon buttons whose label only shows as a tooltip; the dialog names the action.
    await page.locator('button:has(svg.lucide-refresh-cw)').filter({ hasNotText: /retry all/i }).click();
    const confirm = page.getByRole('alertdialog');
    assert.match(await confirm.innerText(), /retry this job/i);
    await confirm.getByRole('button', { name: 'Confirm' }).click();
    await confirm.waitFor({ state: 'hidden' });

    const state = await waitUntil(
      async () => {
        const current = await forward.getJobState(jobId);
        return current === 'failed' ? undefined : current;
      },
      10_000,
      () => `${jobId} is still failed after Retry`,
    );
    assert.notEqual(state, 'failed');
    await waitUntil(async () => ((await forward.getJobState(jobId)) === 'completed' ? true : undefined), 10_000, () => `${jobId} did not run again`);
    assert.equal(runs, 2);
    await page.screenshot({ path: join(shots, 'admin-ui-retried.png') });
    t.diagnostic(`screenshots: ${SCREENSHOT}, ${shots}`);
  });
});
