const started = Date.now();

/** One progress line, so a long run shows it is alive: `[bench 01:23] ...`. */
export function progress(message: string): void {
  const s = Math.floor((Date.now() - started) / 1000);
  const stamp = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  process.stdout.write(`[bench ${stamp}] ${message}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
