import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnTracked, waitForExit } from './child.js';
import { repoRoot } from './repo-root.js';
import { waitUntil } from './wait.js';

/** The built CLI: `npm run build` first. */
export const CLI = join(repoRoot, 'packages', 'cli', 'dist', 'main.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliRunOptions {
  /** How long the run may take before the test fails; 15 s unless told. */
  timeoutMs?: number;
}

/** The built CLI from the repository root with only the environment it is given (plus PATH and HOME). */
function spawnCli(args: string[], env: Record<string, string>): Promise<ChildProcess> {
  return spawnTracked(process.execPath, [CLI, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the built CLI to its end: its exit code, all it printed, and how long it took. */
export async function runCli(args: string[], env: Record<string, string>, opts: CliRunOptions = {}): Promise<CliRun> {
  const started = Date.now();
  const child = await spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise((resolve) => child.once('close', resolve));
  const { code } = await waitForExit(child, opts.timeoutMs ?? 15_000);
  await closed;
  return { code, stdout, stderr, ms: Date.now() - started };
}

export interface RunningEmulator {
  url: string;
  child: ChildProcess;
  /** Every line it has printed so far, stdout and stderr. */
  lines: string[];
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
}

/** `replyflow emulator --port 0 ...`, resolved once it says where it listens. Stop it with terminate(emulator.child, ...). */
export async function startEmulator(args: string[] = []): Promise<RunningEmulator> {
  const child = await spawnCli(['emulator', '--port', '0', ...args], {});
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => lines.push(line));
  const waitForLine = (pattern: RegExp, timeoutMs: number) =>
    waitUntil(() => lines.find((line) => pattern.test(line)), timeoutMs, () => `no line matching ${pattern}:\n${lines.join('\n')}`);
  const first = await waitForLine(/listening on/, 10_000);
  return { url: /http:\/\/127\.0\.0\.1:\d+/.exec(first)![0], child, lines, waitForLine };
}
