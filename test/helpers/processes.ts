import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { kill, spawnTracked, terminate, waitForExit, type ExitStatus } from './child.js';
import { get, parseJson } from './http.js';
import { repoRoot } from './repo-root.js';
import { waitUntil } from './wait.js';

export type AppName = 'ingest' | 'worker';
export type LogRecord = Record<string, unknown>;
/** A regex is tested against every raw output line; a predicate only sees lines that are JSON objects. */
export type LogMatch = RegExp | ((log: LogRecord) => boolean);

export interface StartOptions {
  readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;
const READY_MSG = /listening|started/;

const isReady = (log: LogRecord): boolean => typeof log.msg === 'string' && READY_MSG.test(log.msg);

export class AppProcess {
  /** stdout and stderr lines, interleaved in arrival order. */
  readonly lines: string[] = [];
  private outputClosed = false;
  private readonly closed: Promise<void>;

  constructor(
    readonly name: AppName,
    private readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.lines.push(line));
    }
    // 'close' (not 'exit') comes after the last output line was read.
    this.closed = new Promise((resolve) =>
      child.once('close', () => {
        this.outputClosed = true;
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  logs(): LogRecord[] {
    return this.lines.map(parseLogLine).filter((log): log is LogRecord => log !== undefined);
  }

  /** Resolves with the first matching line, already printed or yet to come (a non-JSON line as { msg: line }). */
  waitForLog(match: LogMatch, timeoutMs: number): Promise<LogRecord> {
    const wanted = match instanceof RegExp ? String(match) : match.name || 'the awaited line';
    let seen = 0;
    return waitUntil(
      () => {
        for (; seen < this.lines.length; seen++) {
          const line = this.lines[seen] as string;
          const log = parseLogLine(line);
          if (match instanceof RegExp ? match.test(line) : log !== undefined && match(log)) return log ?? { msg: line };
        }
        if (this.outputClosed) throw new Error(`${this.name} exited before logging ${wanted}:\n${this.output()}`);
        return undefined;
      },
      timeoutMs,
      () => `${this.name} did not log ${wanted}:\n${this.output()}`,
      25,
    );
  }

  /** Resolves once the process has exited and its last output line has been read. */
  waitForExit(timeoutMs: number): Promise<ExitStatus> {
    return this.withOutput(waitForExit(this.child, timeoutMs));
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  kill(): Promise<ExitStatus> {
    return this.withOutput(kill(this.child));
  }

  stop(): Promise<ExitStatus> {
    return this.withOutput(terminate(this.child, STOP_GRACE_MS));
  }

  /** Logs are written in batches: a test reads them only after the last line is in. */
  private async withOutput(exit: Promise<ExitStatus>): Promise<ExitStatus> {
    const status = await exit;
    await this.closed;
    return status;
  }

  output(): string {
    return this.lines.join('\n');
  }
}

/** Starts apps/<name>/dist/main.js and resolves once it logs that it is listening or started. */
export async function startProcess(
  name: AppName,
  env: Record<string, string>,
  opts: StartOptions = {},
): Promise<AppProcess> {
  const app = new AppProcess(name, await spawnApp(name, env));
  try {
    await app.waitForLog(isReady, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  } catch (err) {
    await app.kill();
    throw err;
  }
  return app;
}

/** Runs an app that is expected to exit by itself (a configuration error), without waiting for readiness. */
export async function runToExit(
  name: AppName,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = await spawnApp(name, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise((resolve) => child.once('close', resolve));
  try {
    const { code } = await waitForExit(child, timeoutMs);
    await closed;
    return { code, stdout, stderr };
  } catch (err) {
    await kill(child);
    throw new Error(`${name} did not exit within ${timeoutMs} ms:\n${stdout}${stderr}`, { cause: err });
  }
}

/** Polls until GET url answers 200. */
export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  let last = 'no answer yet';
  await waitUntil(
    async () => {
      try {
        const res = await get(url, {}, 1_000);
        last = `status ${res.status}`;
        return res.status === 200 || undefined;
      } catch (err) {
        last = (err as Error).message;
        return undefined;
      }
    },
    timeoutMs,
    () => `GET ${url} never answered 200 (last: ${last})`,
    100,
  );
}

async function spawnApp(name: AppName, env: Record<string, string>): Promise<ChildProcess> {
  const main = join(repoRoot, 'apps', name, 'dist', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  return spawnTracked(process.execPath, [main], {
    cwd: repoRoot,
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

// Only what a process needs to run: settings from the developer's shell (REDIS_URL, WEBHOOK_SECRET,
// FORWARD_URL, ...) must never leak into a test.
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NODE_ENV: 'test', LOG_LEVEL: 'info' };
  for (const key of ['PATH', 'HOME'] as const) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

function parseLogLine(line: string): LogRecord | undefined {
  const value = parseJson(line);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as LogRecord) : undefined;
}
