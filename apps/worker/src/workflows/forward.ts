import { newSpanId } from '@replyflow/shared';
import { defineWorkflow, type RateLimit, type Workflow, type WorkflowEvent } from '@replyflow/workflow';
import { Webhook } from 'standardwebhooks';
import type { Agent } from 'undici';
import { postJson } from '../engine/http-post.js';

export interface ForwardOptions {
  url: string;
  secret: string | undefined;
  timeoutMs: number;
  agent: Agent;
  rateLimit: RateLimit | undefined;
}

/** The body of section 5 of the contract. */
export function forwardBody(event: WorkflowEvent): string {
  return JSON.stringify({
    id: event.id,
    type: event.direction === 'incoming' ? 'message.received' : 'message.sent',
    receivedAt: new Date(event.receivedAt).toISOString(),
    data: {
      phone: event.phone,
      direction: event.direction,
      messageTime: event.messageTime,
      messageType: event.messageType,
      text: event.text,
      labels: event.labels,
      lastMessages: event.lastMessages,
      raw: event.raw,
    },
  });
}

export const FORWARD_WORKFLOW = 'forward';

/** POSTs every event to FORWARD_URL, signed the Standard Webhooks way when FORWARD_SECRET is set. */
export function forwardWorkflow(options: ForwardOptions): Workflow {
  const signer = options.secret ? new Webhook(options.secret) : undefined;
  const post = (event: WorkflowEvent) => {
    const body = forwardBody(event);
    const now = new Date();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      // One trace per event, one span per attempt.
      traceparent: `00-${event.traceId}-${newSpanId()}-01`,
    };
    if (signer) headers['webhook-signature'] = signer.sign(event.id, now, body);
    return postJson(options.agent, options.url, headers, body, options.timeoutMs);
  };
  return defineWorkflow({
    name: FORWARD_WORKFLOW,
    rateLimit: options.rateLimit,
    run: (event, step) => step.run('post', () => post(event)),
  });
}
