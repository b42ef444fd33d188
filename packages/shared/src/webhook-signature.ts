import { createHmac, hash, timingSafeEqual } from 'node:crypto';

export type SignatureMode = 'token' | 'hmac-sha256' | 'none';

const sha256 = (value: string): Buffer => hash('sha256', value, 'buffer');

/**
 * Notifyer's X-Webhook-Signature carries the secret itself. Hashing both sides
 * first gives equal-length buffers, so the comparison time reveals neither the
 * secret nor its length.
 */
function tokenMatches(header: string, secrets: readonly string[]): boolean {
  const presented = sha256(header);
  let matched = false;
  for (const digest of secretDigests(secrets)) matched = timingSafeEqual(presented, digest) || matched;
  return matched;
}

/** The secrets' digests, computed once per set of secrets (a reload makes a new set) rather than for every webhook. */
const digestsOf = new WeakMap<readonly string[], Buffer[]>();
function secretDigests(secrets: readonly string[]): Buffer[] {
  let digests = digestsOf.get(secrets);
  if (!digests) {
    digests = secrets.map(sha256);
    digestsOf.set(secrets, digests);
  }
  return digests;
}

/** Accepts hex, base64 or base64url, optionally prefixed `sha256=`. */
function decodeDigest(header: string): Buffer | undefined {
  const value = header.startsWith('sha256=') ? header.slice(7) : header;
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) return Buffer.from(value, 'base64');
  return undefined;
}

function hmacMatches(header: string, body: Buffer, secrets: readonly string[]): boolean {
  const presented = decodeDigest(header.trim());
  if (!presented) return false;
  let matched = false;
  for (const secret of secrets) matched = timingSafeEqual(presented, signHmacSha256(body, secret)) || matched;
  return matched;
}

export function signHmacSha256(body: string | Buffer, secret: string): Buffer {
  return createHmac('sha256', secret).update(body).digest();
}

/** The header value a sender puts in X-Webhook-Signature for `body`. */
export function signatureHeader(mode: Exclude<SignatureMode, 'none'>, body: string | Buffer, secret: string): string {
  return mode === 'token' ? secret : signHmacSha256(body, secret).toString('hex');
}

/** True when the header proves the body came from a holder of one of `secrets`. */
export function verifySignature(
  mode: SignatureMode,
  header: string | undefined,
  body: Buffer,
  secrets: readonly string[],
): boolean {
  if (mode === 'none') return true;
  if (!header || secrets.length === 0) return false;
  return mode === 'token' ? tokenMatches(header, secrets) : hmacMatches(header, body, secrets);
}
