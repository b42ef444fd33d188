import express, { type NextFunction, type Request, type Response } from 'express';

export type BodyReader = (req: Request, res: Response, done: NextFunction) => void;

/**
 * Reads a webhook's body into `req.body` as a Buffer, whatever its type: the
 * size check comes first in the contract's order, and the signature is
 * computed on raw bytes.
 *
 * A body that says its length, within the limit, and is not compressed (every
 * Notifyer webhook) is read straight off the request: Node's parser already
 * holds it to that length. That costs the ingest about a tenth less CPU a
 * webhook than express.raw, whose general path (charset, inflate, length
 * checks, listeners set and removed, an async resource for the callback) was
 * the largest cost of the route after Node's own HTTP work. Every other body
 * (chunked, compressed, too large) goes to express.raw, which inflates it and
 * answers 413 for what grows past the limit.
 */
export function webhookBodyReader(limitBytes: number): BodyReader {
  const general = express.raw({ type: () => true, limit: limitBytes });
  return (req, res, done) => {
    const { headers } = req;
    const length = Number(headers['content-length']);
    if (headers['content-encoding'] !== undefined || headers['transfer-encoding'] !== undefined || !(length <= limitBytes)) {
      general(req, res, done);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => void chunks.push(chunk));
    req.on('end', () => {
      req.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      done();
    });
    // A client gone mid-body gets no answer (its socket is closed) and the
    // request goes no further: with no 'error' listener Node emits none.
  };
}
