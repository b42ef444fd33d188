import type { IngestOutcome } from '@replyflow/shared';

/** An answer of the contract's status table: the status, the `error` code and a human message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: IngestOutcome | 'not_found',
    message: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

interface BodyParserError {
  type?: string;
  status?: number;
}

/** body-parser reports its own failures with a `type`; map the ones the contract names. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  const { type, status } = (error ?? {}) as BodyParserError;
  if (type === 'entity.too.large') {
    return new HttpError(413, 'payload_too_large', 'the request body is larger than BODY_LIMIT');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new HttpError(415, 'unsupported_media_type', 'unsupported content encoding');
  }
  if (type === 'request.aborted' || type === 'request.size.invalid') {
    return new HttpError(400, 'invalid_json', 'the request body was incomplete');
  }
  // A body that does not inflate (Content-Encoding: gzip on plain bytes) comes as a bare 400;
  // a 500 would have the sender retry it forever.
  if (status === 400) {
    return new HttpError(400, 'invalid_json', 'the request body could not be decoded as its Content-Encoding says');
  }
  return new HttpError(500, 'internal_error', 'internal error');
}
