import { PermanentError } from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';

/** Where a workflow takes an event: the key of its lane, and its debounce if any. */
export interface WorkflowRoute {
  key: string;
  debounce: { key: string; ms: number } | undefined;
}

/** What a callback throws is permanent: it would throw the same on every retry of the event. */
function callback<T>(name: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw new PermanentError(`${name} threw: ${(error as Error | undefined)?.message ?? String(error)}`);
  }
}

/**
 * The workflow's `match`, `key` and `debounce` (user code) on the event:
 * undefined when it does not match. Throws a PermanentError naming the
 * callback when one throws or returns what the lanes cannot use.
 */
export function routeOf(workflow: Workflow, event: WorkflowEvent): WorkflowRoute | undefined {
  if (!callback('match', () => workflow.match?.(event) ?? true)) return undefined;
  const key = callback('key', () => workflow.key?.(event) ?? event.phone);
  if (typeof key !== 'string' || key === '') throw new PermanentError('key must return a non-empty string');
  const debounce = callback('debounce', () => workflow.debounce?.(event));
  if (debounce && !(typeof debounce.key === 'string' && Number.isFinite(debounce.ms) && debounce.ms >= 0)) {
    throw new PermanentError('debounce must return undefined or { key: string, ms: a number of 0 or more }');
  }
  return { key, debounce };
}
