const REDRAW_MS = 80;
const BAR_WIDTH = 30;

/**
 * One self-redrawing line on stderr, only on a terminal, so stdout stays
 * clean for --json and pipes. Small enough that a dependency would cost more
 * to audit than this costs to read.
 */
export class ProgressBar {
  private lastDraw = 0;

  private constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream,
  ) {}

  /** A bar when stderr is a terminal; otherwise nothing is drawn. */
  static onTerminal(total: number, stream: NodeJS.WriteStream = process.stderr): ProgressBar | undefined {
    return stream.isTTY ? new ProgressBar(total, stream) : undefined;
  }

  update(done: number, detail: string): void {
    const now = Date.now();
    if (done < this.total && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const filled = Math.round((done / this.total) * BAR_WIDTH);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${this.total}  ${detail}`;
    this.stream.write(`\r${line.slice(0, Math.max(10, (this.stream.columns || 80) - 1))}\x1b[K`);
  }

  /** Wipes the bar, so the summary starts on a clean line. */
  finish(): void {
    this.stream.write('\r\x1b[K');
  }
}
