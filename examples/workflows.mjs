// A user workflow module: run the worker with WORKFLOWS=examples/workflows.mjs.
// Events labelled "vip" are posted to VIP_URL, one step each, retried and
// dead-lettered like the built-in workflows, in order per phone.
import { defineWorkflow, PermanentError } from '@replyflow/workflow';

const vipUrl = process.env.VIP_URL;

export default defineWorkflow({
  name: 'vip-alert',
  match: (event) => event.direction === 'incoming' && event.labels.some((label) => label.toLowerCase() === 'vip'),
  run: async (event, step) => {
    if (!vipUrl) throw new PermanentError('VIP_URL is not set');
    await step.run('alert', async () => {
      const response = await fetch(vipUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ phone: event.phone, text: event.text, firstContact: event.firstContact }),
      });
      if (response.status >= 400 && response.status < 500) throw new PermanentError(`VIP_URL answered ${response.status}`);
      if (!response.ok) throw new Error(`VIP_URL answered ${response.status}`);
      return { status: response.status };
    });
  },
});
