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
    // Headers as one array to writeHead: where no header was set before (every
    // 2xx), Node writes them as given, without its headers object.
    const text = JSON.stringify(body);
    res.writeHead(status, ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(text))]);
    res.end(text);
    const start = res.locals.webhookStart as number | undefined;
    if (start !== undefined && outcome) {
      metrics.requests.inc({ outcome });
      metrics.duration.observe((performance.now() - start) / 1000);
    }
  };
}
