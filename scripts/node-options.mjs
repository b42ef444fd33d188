// The V8 settings the ingest and the worker run with, wherever they start:
// `npm start`, the Docker image (its ENV NODE_OPTIONS; a test keeps the two
// equal) and the benchmark.
//
// Semi-spaces of 32 MB, twice Node's default. Under load the ingest holds its
// webhooks in flight while Redis stores them; with the default, a scavenge
// every 21 ms found about 3 MB of them still alive and promoted it to the old
// generation (a mark-compact every 0.6 s). Twice the room halves the copying
// and the old-generation collections: +11% requests/s for the ingest and +3
// to 7% events/s for the worker, in paired runs, for at most 32 MB more memory
// each.
export const NODE_OPTIONS = '--max-semi-space-size=32';

/** NODE_OPTIONS for a child process: ours first, so that the user's own settings win. */
export function withNodeOptions(userOptions) {
  return userOptions ? `${NODE_OPTIONS} ${userOptions}` : NODE_OPTIONS;
}
