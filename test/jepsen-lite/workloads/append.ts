import type { WriteReply } from '../../../src/node/client-proto.js';
import { runWorkers, type Outcome, type WorkloadOptions } from './worker-pool.js';

/** Clients append unique integers to the log; the final logs are read afterwards by the log checker. */
export async function runAppendWorkload(options: WorkloadOptions): Promise<void> {
  let next = 1;
  await runWorkers(options, (worker) => {
    const value = next++;
    return {
      f: 'append',
      key: null,
      value,
      call: async (): Promise<Outcome> => {
        const reply = await options.cluster.call<WriteReply>(
          worker.node,
          'append',
          { record: Buffer.from(String(value)) },
          options.opTimeoutMs,
        );
        return { type: 'ok', value, index: reply.position.index };
      },
    };
  });
}
