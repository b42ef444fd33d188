// CPU and memory from /proc (Linux), so a figure can be read per process and
// the machine's other load (other engineers' tests) can be reported beside it.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const TICKS_PER_SECOND = 100; // CLK_TCK on Linux

interface PidTimes {
  /** utime + stime of the process (all threads), seconds. */
  own: number;
  /** cutime + cstime: children that exited and were reaped, seconds. */
  reapedChildren: number;
}

function pidTimes(pid: number | 'self'): PidTimes | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields after it are space-separated.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const at = (n: number) => Number(fields[n - 3]);
    return { own: (at(14) + at(15)) / TICKS_PER_SECOND, reapedChildren: (at(16) + at(17)) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds a live process has used so far (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  return pidTimes(pid)?.own ?? 0;
}

/** Resident set size in bytes (0 when the process is gone). */
export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, ...values] = line.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number) as number[];
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / TICKS_PER_SECOND;
}

export interface CpuWindowResult {
  seconds: number;
  /** CPU seconds of each named process over the window. */
  processes: Record<string, number>;
  /** CPU seconds of the benchmark's children that exited during the window (wrk). */
  exitedChildren: number;
  /** Cores kept busy by this benchmark (its processes, itself, and children that exited, e.g. wrk). */
  benchCores: number;
  /** Cores kept busy by everything else on the machine: the noise. */
  otherCores: number;
}

/**
 * Measures, over a window, the CPU each named process used and how busy the
 * rest of the machine was. Named processes must still run when the window ends.
 */
export class CpuWindow {
  private readonly startedAt = performance.now();
  private readonly machineStart = machineBusySeconds();
  private readonly selfStart = pidTimes('self');
  private readonly pids: Record<string, number>;
  private readonly processStart: Record<string, number>;

  constructor(pids: Record<string, number>) {
    this.pids = pids;
    this.processStart = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  }

  stop(): CpuWindowResult {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const machine = machineBusySeconds() - this.machineStart;
    const self = pidTimes('self');
    const processes: Record<string, number> = {};
    let ours = 0;
    let exitedChildren = 0;
    for (const [name, pid] of Object.entries(this.pids)) {
      processes[name] = Math.max(0, cpuSeconds(pid) - (this.processStart[name] ?? 0));
      ours += processes[name];
    }
    if (self && this.selfStart) {
      exitedChildren = self.reapedChildren - this.selfStart.reapedChildren;
      ours += self.own - this.selfStart.own + exitedChildren;
    }
    return { seconds, processes, exitedChildren, benchCores: ours / seconds, otherCores: Math.max(0, machine - ours) / seconds };
  }
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  node: string;
  platform: string;
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadavg: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
