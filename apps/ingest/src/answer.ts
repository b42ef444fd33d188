import type { IngestOutcome, ingestMetrics } from '@replyflow/shared';
import type { Response } from 'express';

export type Answer = (res: Response, status: number, body: unknown, outcome?: IngestOutcome) => void;

/**
 * The one place answers are written. Requests to the webhook path (marked with
 * a start time by `timeWebhook`) are counted under their outcome. Once
 * `stopping`, each answer closes its connection.
 */
export function createAnswer(metrics: ReturnType<typeof ingestMetrics>, stopping: () => boolean = () => false): Answer {
  return (res, status, body, outcome) => {
    if (stopping()) res.setHeader('connection', 'close');
    // Node's own response calls: Express's res.json does the same with more
    // steps (content-type lookup, ETag and freshness checks) that these answers
    // never need, and the webhook path is where every microsecond counts.
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
    const start = res.locals.webhookStart as bigint | undefined;
    if (start !== undefined && outcome) {
      metrics.requests.inc({ outcome });
      metrics.duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
    }
  };
}
