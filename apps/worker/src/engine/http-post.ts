import { Agent, errors, request } from 'undici';
import { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
import { parseRetryAfterMs } from './backoff.js';

export interface PostResult {
  status: number;
}

/**
 * One keep-alive connection pool per worker: Node's global fetch costs a worker
 * about 2.5x its throughput here.
 */
export function createHttpAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
}

/**
 * POSTs and turns the answer into the error class that says what happens next:
 * 2xx resolves; 429 is RetryAfterError; other 4xx PermanentError; 5xx, timeouts
 * and network failures TransientError.
 */
export async function postJson(
  agent: Agent,
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<PostResult> {
  let status: number;
  let retryAfter: string | undefined;
  try {
    const response = await request(url, {
      method: 'POST',
      headers,
      body,
      dispatcher: agent,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = response.statusCode;
    const header = response.headers['retry-after'];
    retryAfter = Array.isArray(header) ? header[0] : header;
    await response.body.dump();
  } catch (error) {
    throw new TransientError(describeNetworkError(error, timeoutMs), undefined, isTimeout(error) ? 'timeout' : 'network');
  }
  if (status >= 200 && status < 300) return { status };
  if (status === 429) {
    throw new RetryAfterError(`HTTP 429 from ${new URL(url).host}`, parseRetryAfterMs(retryAfter) ?? 0, status);
  }
  if (status >= 400 && status < 500) throw new PermanentError(`HTTP ${status} from ${new URL(url).host}`, status);
  throw new TransientError(`HTTP ${status} from ${new URL(url).host}`, status, 'http');
}

function isTimeout(error: unknown): boolean {
  return (
    error instanceof errors.HeadersTimeoutError ||
    error instanceof errors.BodyTimeoutError ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
  );
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (isTimeout(error)) return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  return code ? `network error ${code}` : `network error: ${(error as Error).message}`;
}
