import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Every child a helper spawns, so a crashed or failed test run leaves no orphan behind.
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Spawns and resolves once the OS has started the child; rejects with the spawn error (e.g. ENOENT). */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): Promise<ChildProcess> {
  const child = spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    child.once('spawn', () => resolve(child));
    child.once('error', (err) => {
      running.delete(child);
      reject(err);
    });
  });
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function exited(child: ChildProcess): Promise<ExitStatus> {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pid ${child.pid} still running after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([exited(child), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then SIGKILL when the child has not exited within graceMs. */
export async function terminate(child: ChildProcess, graceMs: number): Promise<ExitStatus> {
  if (hasExited(child)) return exited(child);
  child.kill('SIGTERM');
  // A stopped (SIGSTOP) process only acts on SIGTERM once it runs again.
  child.kill('SIGCONT');
  try {
    return await waitForExit(child, graceMs);
  } catch {
    return kill(child);
  }
}

export function kill(child: ChildProcess): Promise<ExitStatus> {
  if (!hasExited(child)) child.kill('SIGKILL');
  return exited(child);
}
