import type { IncomingMessage, ServerResponse } from 'node:http';

const BODY_LIMIT = 1024 * 1024;

/**
 * An error answer in the shape Notifyer's API (a Xano backend) gives:
 * `{"code": "ERROR_CODE_…", "message": "…", "payload": …}`.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly payload: unknown = '',
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path pattern's capture groups. */
  params: string[];
  /** The body as JSON; an empty body is `{}`. */
  readBody(): Promise<unknown>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: RegExp;
  handle(context: RouteContext): Promise<void> | void;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new HttpError(413, 'ERROR_CODE_INPUT_ERROR', 'Request body is too large.');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'ERROR_CODE_INPUT_ERROR', 'Unable to parse the request body as JSON.');
  }
}
