// `npm start`: ingest + one worker (+ a private Redis when none is around) for local use.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { withNodeOptions } from './node-options.mjs';
import { root, setup, SetupError } from './setup.mjs';

const say = (line) => console.log(`start  | ${line}`);

function fail(message) {
  console.error(message);
  process.exit(1);
}

// Answers true when a Redis replies to PING (an auth-protected one replies NOAUTH, which still counts).
function ping(host, port, tls = false, timeoutMs = 500) {
  return new Promise((done) => {
    const socket = tls ? tlsConnect({ host, port, servername: host }) : connect({ host, port });
    let reply = '';
    const finish = (ok) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
    });
    socket.on('error', () => finish(false));
  });
}

function freePort() {
  return new Promise((done, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {}
  }
  return undefined;
}

const redisHelp = [
  '  - install it: sudo apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS),',
  '    then run npm start again with REDIS_URL unset to get a private one;',
  '  - or run one in Docker: docker run -d -p 127.0.0.1:6379:6379 redis:7-alpine;',
  '  - or point REDIS_URL at a Redis you have.',
].join('\n');

async function startPrivateRedis(children) {
  const binary = onPath('redis-server');
  if (!binary) {
    fail(
      'start: no Redis answers on 127.0.0.1:6379 and redis-server is not on PATH.\n' +
        '  Install it with: sudo apt-get install redis-server (Debian/Ubuntu) or brew install redis (macOS),\n' +
        '  or start one with docker run -d -p 127.0.0.1:6379:6379 redis:7-alpine, or set REDIS_URL.',
    );
  }
  const dir = join(root, '.replyflow/redis');
  mkdirSync(dir, { recursive: true });
  // An earlier npm start killed outright leaves its redis-server running on
  // this folder: a second one would write the same append-only file.
  const pidfile = join(dir, 'redis.pid');
  const earlier = livePid(pidfile);
  if (earlier) {
    fail(
      `start: a redis-server from an earlier npm start still runs on .replyflow/redis (pid ${earlier}), with its ingest and worker perhaps.\n` +
        `  Stop it (kill ${earlier}), then run npm start again.`,
    );
  }
  const port = await freePort();
  const logfile = join(dir, 'redis.log');
  const args = [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--logfile', logfile, '--pidfile', pidfile,
    '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '',
  ];
  const redis = spawn(binary, args, { stdio: 'ignore', detached: true });
  children.push({ name: 'redis', proc: redis });
  let exited = false;
  redis.on('exit', () => (exited = true));
  redis.on('error', () => (exited = true));
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && !exited; ) {
    if (await ping('127.0.0.1', port)) return `redis://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!exited) redis.kill('SIGKILL');
  let tail = '';
  try {
    tail = readFileSync(logfile, 'utf8').trimEnd().split('\n').slice(-5).join('\n');
  } catch {}
  fail(`start: the private redis-server did not come up (log: ${logfile})${tail ? `\n${tail}` : ''}`);
}

/** The pid in `file` if that process is alive (redis-server removes its pidfile when it stops cleanly). */
function livePid(file) {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    // pid 0 would ask about our own process group.
    if (!(pid > 0)) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function resolveRedis(children) {
  // A cluster is the user's own business; nothing to check or start.
  if (process.env.REDIS_CLUSTER_NODES) return { url: undefined, note: `cluster ${process.env.REDIS_CLUSTER_NODES}` };
  const configured = process.env.REDIS_URL;
  if (configured) {
    let url;
    try {
      url = new URL(configured);
    } catch {
      fail(`start: REDIS_URL is not a valid URL: ${configured}`);
    }
    if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
      const tls = url.protocol === 'rediss:';
      const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
      if (!(await ping(host, Number(url.port) || 6379, tls, tls ? 2000 : 500))) {
        fail(`start: no Redis answers at REDIS_URL (${redact(url)}). To get one:\n${redisHelp}`);
      }
    }
    return { url: configured, note: redact(url) };
  }
  if (await ping('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', note: 'redis://127.0.0.1:6379 (already running)' };
  const url = await startPrivateRedis(children);
  return { url, note: `${url} (private, data in .replyflow/redis/; stopped with npm start)` };
}

function originOf(url) {
  try {
    return new URL(url).origin;
  } catch {
    return '(FORWARD_URL is not a URL: the worker will say so)';
  }
}

function redact(url) {
  const copy = new URL(url);
  if (copy.password) copy.password = '***';
  return copy.href;
}

function ensureSecret() {
  if ((process.env.SIGNATURE_MODE ?? '').trim() === 'none') return 'none (SIGNATURE_MODE=none: requests are not checked)';
  // As the ingest reads it: a comma-separated list, empty entries dropped.
  if ((process.env.WEBHOOK_SECRET ?? '').split(',').some((entry) => entry.trim() !== '')) return 'from WEBHOOK_SECRET';
  const configured = process.env.WEBHOOK_SECRET_FILE || '.replyflow/webhook-secret';
  const file = isAbsolute(configured) ? configured : resolve(root, configured);
  if (existsSync(file)) return file;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    say(`created a webhook secret in ${file}`);
  } catch (err) {
    if (err.code !== 'EEXIST') fail(`start: could not create the webhook secret file ${file}: ${err.message}`);
  }
  return file;
}

function pipeLines(stream, prefix, out) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`));
}

function exitCodeOf(code, signal) {
  if (code !== null) return code;
  const numbers = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (numbers[signal] ?? 1);
}

async function main() {
  if (existsSync(join(root, '.env'))) process.loadEnvFile(join(root, '.env'));

  try {
    setup(root);
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    console.error(err.message);
    process.exit(err.exitCode);
  }

  const children = []; // { name, proc }; redis (if ours) first, stopped last
  // If this script dies on an unexpected error, don't leave detached processes behind.
  process.on('exit', () => {
    for (const { proc } of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  });

  let stopping = false;
  let firstSignalAt = 0;
  const onSignal = () => {
    const now = Date.now();
    if (!stopping) {
      firstSignalAt = now;
      say('stopping (Ctrl-C again to kill everything)');
      void stopAll(0);
      return;
    }
    // Under `npm start` one Ctrl-C arrives twice: from the terminal and forwarded by npm.
    if (now - firstSignalAt < 1000) return;
    say('killing everything');
    for (const { proc } of children) proc.kill('SIGKILL');
    process.exit(130);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal);
  // `npm start` runs us under `sh -c`, which dies of a SIGTERM sent to npm without passing
  // it on; notice the orphaning instead of leaving everything running.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && !stopping) {
      say('the launching process is gone');
      onSignal();
    }
  }, 500).unref();

  const waitExit = ({ proc }) =>
    proc.exitCode !== null || proc.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => proc.once('exit', () => r()));

  let finalCode = 0;
  async function stopAll(code) {
    stopping = true;
    finalCode = code;
    const apps = children.filter((c) => c.name !== 'redis');
    for (const c of apps) c.proc.kill('SIGTERM');
    // Safety net beyond the children's own SHUTDOWN_TIMEOUT_MS.
    const grace = (Number(process.env.SHUTDOWN_TIMEOUT_MS) || 30_000) + 10_000;
    const timer = setTimeout(() => {
      say(`still running after ${grace} ms, killing`);
      finalCode ||= 1;
      for (const { proc } of children) proc.kill('SIGKILL');
    }, grace);
    timer.unref();
    await Promise.all(apps.map(waitExit));
    // Redis goes last, so the children can finish their in-flight work against it.
    for (const c of children.filter((c) => c.name === 'redis')) {
      c.proc.kill('SIGTERM');
      await waitExit(c);
    }
    clearTimeout(timer);
    process.exit(finalCode);
  }

  const redis = await resolveRedis(children);
  if (stopping) return;
  const secret = ensureSecret();

  const env = { ...process.env, NODE_OPTIONS: withNodeOptions(process.env.NODE_OPTIONS) };
  if (redis.url) env.REDIS_URL = redis.url;
  const workerMetricsPort = process.env.WORKER_METRICS_PORT || '9465';

  const privateRedis = children.find((c) => c.name === 'redis');
  privateRedis?.proc.on('exit', (code, signal) => {
    if (stopping) return;
    say(`redis-server exited unexpectedly (${signal ?? `code ${code}`}); stopping`);
    void stopAll(1);
  });

  for (const [name, script, extra] of [
    ['ingest', 'apps/ingest/dist/main.js', {}],
    ['worker', 'apps/worker/dist/main.js', { METRICS_PORT: workerMetricsPort }],
  ]) {
    // Own process group: a terminal Ctrl-C reaches only us, and each child gets exactly one SIGTERM.
    const proc = spawn(process.execPath, [script], {
      cwd: root,
      env: { ...env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const child = { name, proc };
    children.push(child);
    pipeLines(proc.stdout, `${name} | `, process.stdout);
    pipeLines(proc.stderr, `${name} | `, process.stderr);
    proc.on('exit', (code, signal) => {
      if (stopping) return;
      const exitCode = exitCodeOf(code, signal);
      say(`${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the rest`);
      void stopAll(exitCode);
    });
  }

  const port = process.env.PORT || '3000';
  const metricsPort = process.env.METRICS_PORT || '9464';
  const metricsUrl = (p) => (p === '0' ? '(a free port, see its log)' : `http://127.0.0.1:${p}/metrics`);
  const lines = [
    `webhook URL:     http://127.0.0.1:${port}/webhooks/notifyer`,
    `ingest metrics:  ${metricsUrl(metricsPort)}`,
    `worker metrics:  ${metricsUrl(workerMetricsPort)}`,
    `webhook secret:  ${secret}`,
    `redis:           ${redis.note}`,
    process.env.FORWARD_URL
      ? `forwarding to:   ${originOf(process.env.FORWARD_URL)}/… (the rest of FORWARD_URL may hold a token: not shown)`
      : 'forwarding:      off (set FORWARD_URL; until then events are only queued)',
  ];
  if (process.env.ADMIN_PASSWORD) lines.push(`queue dashboard: http://127.0.0.1:${process.env.ADMIN_PORT || '3001'}/`);
  if (privateRedis) lines.push(`for the CLI:     export REDIS_URL=${redis.url}`);
  for (const line of lines) say(line);
}

main().catch((err) => {
  console.error(`start: ${err.stack ?? err}`);
  process.exit(1);
});
