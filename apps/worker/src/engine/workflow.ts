import type { NotifyerEvent } from '@replyflow/shared';

export interface WorkflowContext {
  receivedAt: number;
  traceId: string;
  attempt: number;
}

/**
 * A workflow decides whether an event concerns it (`match`) and does its work
 * (`run`). `run` throws the error class that says what happens next:
 * PermanentError, RetryAfterError or anything else (retried with backoff).
 */
export interface Workflow {
  name: string;
  match: (event: NotifyerEvent) => boolean;
  run: (event: NotifyerEvent, context: WorkflowContext) => Promise<unknown>;
}
