import type { IngestOutcome, ingestMetrics } from '@replyflow/shared';
import type { Response } from 'express';

export type Answer = (res: Response, status: number, body: unknown, outcome?: IngestOutcome) => void;

/**
 * The one place answers are written. Requests to the webhook path (marked with
 * a start time by `timeWebhook`) are counted under their outcome.
 */
export function createAnswer(metrics: ReturnType<typeof ingestMetrics>): Answer {
  return (res, status, body, outcome) => {
    res.status(status).json(body);
    const start = res.locals.webhookStart as bigint | undefined;
    if (start !== undefined && outcome) {
      metrics.requests.inc({ outcome });
      metrics.duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
    }
  };
}
