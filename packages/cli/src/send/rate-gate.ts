const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * What R+1 starts span beyond a second. The receiver counts arrivals, not
 * starts, and the first request of a connection arrives a few ms later than
 * the rest (its connection is opened first): starts exactly 1/R s apart let
 * R+1 arrive within 995 ms.
 */
const ARRIVAL_JITTER_MS = 20;

/**
 * At most `perSecond` starts in any second, and arrivals too: each start waits
 * until (1000 + ARRIVAL_JITTER_MS)/perSecond ms after the previous one actually
 * started. Spacing from the actual start (not a precomputed schedule) means a
 * late timer can never bunch two starts together, and requests go out evenly
 * rather than in bursts.
 */
export class RateGate {
  private readonly intervalMs: number;
  private nextAt = Number.NEGATIVE_INFINITY;
  private turn: Promise<void> = Promise.resolve();

  constructor(
    perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.intervalMs = (1000 + ARRIVAL_JITTER_MS) / perSecond;
  }

  /** Resolves when the caller may start; callers are let through one at a time, in call order. */
  wait(): Promise<void> {
    const mine = this.turn.then(async () => {
      // Node truncates fractional timeouts, so one sleep can end just short of the mark.
      for (let delay = this.nextAt - this.now(); delay > 0; delay = this.nextAt - this.now()) await sleep(Math.ceil(delay));
      this.nextAt = this.now() + this.intervalMs;
    });
    this.turn = mine;
    return mine;
  }
}
