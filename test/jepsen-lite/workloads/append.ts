import type { WriteReply } from '../../../src/node/client-proto.js';
import { ProducerClients, RETRY_DEADLINE_FACTOR } from './producer-clients.js';
import { type Outcome, outcomeOfClientError, runWorkers, type WorkloadOptions } from './worker-pool.js';

export interface AppendOptions extends WorkloadOptions {
  /**
   * Append through the client library with exactlyOnce (producer-clients.ts):
   * a write whose outcome was unknown is retried with the same stamp until
   * its deadline (RETRY_DEADLINE_FACTOR × opTimeoutMs), so the log must
   * still hold every record at most once.
   */
  readonly retries: boolean;
  /** With retries: how the library sends the appends (unary calls, or a Calls stream per node). */
  readonly writeTransport?: 'unary' | 'calls';
}

/** Clients append unique integers to the log; the final logs are read afterwards by the log checker. */
export async function runAppendWorkload(options: AppendOptions): Promise<void> {
  let next = 1;
  const clients = options.retries
    ? new ProducerClients(options.cluster, options.opTimeoutMs * RETRY_DEADLINE_FACTOR, options.writeTransport ?? 'calls')
    : null;
  try {
    await runWorkers(options, (worker) => {
      const value = next++;
      return {
        f: 'append',
        key: null,
        value,
        call: async (): Promise<Outcome> => {
          if (clients !== null) {
            const client = clients.of(worker.index, worker.node, options.nodes());
            try {
              const result = await client.append(String(value));
              const node = clients.nodeAt(result.endpoint);
              return {
                type: 'ok',
                value,
                index: result.index,
                ...(node === undefined || node === worker.node ? {} : { node }),
                ...(result.duplicate ? { duplicate: true } : {}),
              };
            } catch (error) {
              return outcomeOfClientError(error, value);
            }
          }
          const reply = await options.cluster.call<WriteReply>(worker.node, 'append', { record: Buffer.from(String(value)) }, options.opTimeoutMs);
          return { type: 'ok', value, index: reply.position.index };
        },
      };
    });
  } finally {
    clients?.closeAll();
  }
}
