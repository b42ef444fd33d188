/** One request's outcome: the HTTP status, or `error` when there was no answer. */
export type SendOutcome = { status: number; latencyMs: number } | { status: 'error'; reason: string };

/** What `send --json` prints (contract section 9), and nothing more. */
export interface SendSummary {
  sent: number;
  status: Record<string, number>;
  latencyMs: { p50: number | null; p99: number | null };
}

export class SendStats {
  sent = 0;
  readonly status = new Map<string, number>([['error', 0]]);
  /** Of answered requests only: a refused connection has no latency worth averaging in. */
  readonly latencies: number[] = [];
  firstError: string | undefined;

  add(outcome: SendOutcome): void {
    this.sent++;
    const key = String(outcome.status);
    this.status.set(key, (this.status.get(key) ?? 0) + 1);
    if (outcome.status === 'error') this.firstError ??= outcome.reason;
    else this.latencies.push(outcome.latencyMs);
  }

  /** Requests without a 2xx answer, no answer included. */
  get failed(): number {
    let failed = 0;
    for (const [key, count] of this.status) if (!/^2\d\d$/.test(key)) failed += count;
    return failed;
  }

  /** Nearest-rank percentile in ms, rounded to 0.01; null before any answer. */
  percentile(p: number): number | null {
    if (this.latencies.length === 0) return null;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
    return Math.round(value * 100) / 100;
  }

  summary(): SendSummary {
    // Integer-like keys come first in ascending order in a JS object, then `error`.
    const status: Record<string, number> = {};
    for (const key of [...this.status.keys()].sort()) status[key] = this.status.get(key)!;
    return { sent: this.sent, status, latencyMs: { p50: this.percentile(50), p99: this.percentile(99) } };
  }
}
