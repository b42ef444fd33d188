import { randomBytes } from 'node:crypto';

// randomBytes goes into OpenSSL on every call, a visible cost per event; one
// 4 KiB draw serves 512 span ids.
let spanIdPool = Buffer.alloc(0);
let spanIdOffset = 0;

/** A W3C trace-context span id: 16 random hex digits. */
export function newSpanId(): string {
  if (spanIdOffset + 8 > spanIdPool.length) {
    spanIdPool = randomBytes(4096);
    spanIdOffset = 0;
  }
  spanIdOffset += 8;
  return spanIdPool.toString('hex', spanIdOffset - 8, spanIdOffset);
}
