// Starts the processes under test as separate Node processes, their output in
// a log file (not piped into this process, which would spend its CPU reading it).
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasExited, kill, spawnTracked, terminate, type ExitStatus } from '../../test/helpers/child.js';
import { NODE_OPTIONS } from '../../scripts/node-options.mjs';
import { repoRoot } from '../../test/helpers/repo-root.js';
import { sleep } from './log.js';

export const benchDir = join(repoRoot, 'bench');
export const resultsDir = join(benchDir, 'results');
/** Scratch files (logs, generated scripts, compiled baselines): git-ignored. */
export const tmpDir = join(resultsDir, 'tmp');
export const profilesDir = join(resultsDir, 'profiles');

export const appMain = (name: 'ingest' | 'worker'): string => join(repoRoot, 'apps', name, 'dist', 'main.js');

const STOP_GRACE_MS = 15_000;
let started = 0;

export interface NodeProcessOptions {
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** A line of output that says the process is ready. */
  ready: RegExp;
  readyTimeoutMs?: number;
}

export class NodeProcess {
  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return !hasExited(this.child);
  }

  output(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Polls the log file for a line matching `pattern`; returns the line. */
  async waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.output().split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (!this.running) throw new Error(`${this.name} exited before printing ${pattern}:\n${tail(this.output())}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${pattern} within ${timeoutMs} ms:\n${tail(this.output())}`);
      await sleep(25);
    }
  }

  /** SIGTERM (graceful: a --cpu-prof profile is written on exit), SIGKILL after a grace period. */
  stop(): Promise<ExitStatus> {
    return terminate(this.child, STOP_GRACE_MS);
  }

  kill(): Promise<ExitStatus> {
    return kill(this.child);
  }
}

function tail(text: string, lines = 20): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Only what a process needs: the developer's shell settings must not leak into a measurement. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NODE_ENV: 'production' };
  for (const key of ['PATH', 'HOME'] as const) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

export async function startNode(name: string, script: string, env: Record<string, string>, options: NodeProcessOptions): Promise<NodeProcess> {
  mkdirSync(join(tmpDir, 'logs'), { recursive: true });
  const logFile = join(tmpDir, 'logs', `${String(++started).padStart(3, '0')}-${name}.log`);
  const fd = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = await spawnTracked(process.execPath, [...(options.nodeArgs ?? []), script], {
      cwd: repoRoot,
      env: { ...baseEnv(), ...env },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const proc = new NodeProcess(name, child, logFile);
  try {
    await proc.waitForLine(options.ready, options.readyTimeoutMs ?? 30_000);
  } catch (error) {
    await proc.kill();
    throw error;
  }
  return proc;
}

/** replyflow's ingest or worker, from its build output, as it ships: with the V8 settings `npm start` and the image give it. */
export function startApp(name: 'ingest' | 'worker', env: Record<string, string>, nodeArgs: string[] = []): Promise<NodeProcess> {
  return startNode(name, appMain(name), { NODE_OPTIONS, ...env }, { ready: name === 'ingest' ? /ingest listening/ : /worker started/, nodeArgs });
}
