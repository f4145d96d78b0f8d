import { RaftLogClient } from '../../../src/client/index.js';
import type { CompareAndSwapReply, GetReply, WriteReply } from '../../../src/node/client-proto.js';
import { COMPARE_FAILED, type OperationF } from '../history.js';
import { type Outcome, outcomeOfClientError, runWorkers, type Worker, type WorkloadOptions } from './worker-pool.js';

export type ReadMode = 'linearizable' | 'local';

export interface RegisterOptions extends WorkloadOptions {
  /** Keys in use at once. */
  readonly keys: number;
  /**
   * A key is retired after this many operations and a fresh one takes its
   * place. Short per-key histories keep the linearizability search small even
   * in long runs with many indeterminate operations (Jepsen's "independent" keys).
   */
  readonly opsPerKey: number;
  /** `local` reads this node's state without asking the leader: fast and possibly stale, never linearizable under partitions. */
  readonly readMode: ReadMode;
  /**
   * How reads travel: `calls` (the default), through the client library
   * (readTransport 'calls', the worker's node alone) as a message on the
   * node's Calls stream, as the library sends Gets by default; `unary`, one
   * raw Get call to the worker's node.
   */
  readonly readTransport?: 'unary' | 'calls';
}

/** Small values, as in Jepsen: collisions make anomalies visible and cas succeed often. */
const VALUES = 5;

/** Clients read, write and compare-and-swap integer registers through the gRPC API. */
export async function runRegisterWorkload(options: RegisterOptions): Promise<void> {
  const { cluster, opTimeoutMs } = options;
  const encode = (value: number) => Buffer.from(String(value));
  // One library client per node, for reads on its Calls stream; replaced (and the old one closed) when the node's
  // address changes under the membership nemesis.
  const readers = new Map<string, { readonly address: string; readonly client: RaftLogClient }>();
  let closing = false;
  const readerOf = (node: string): RaftLogClient => {
    if (closing) throw new Error(`register workload: no reads after the workload ended (node ${node})`);
    const address = cluster.address(node);
    const held = readers.get(node);
    if (held?.address === address) return held.client;
    held?.client.close();
    const client = new RaftLogClient({
      endpoints: [address],
      readTransport: 'calls',
      deadlineMs: opTimeoutMs,
      connectTimeoutMs: 500,
      discoverLeader: false,
      followMembership: false,
    });
    readers.set(node, { address, client });
    return client;
  };

  try {
    await runRegisterWorkers(options, encode, options.readTransport === 'unary' ? null : readerOf);
  } finally {
    closing = true;
    for (const { client } of readers.values()) client.close();
  }
}

function runRegisterWorkers(
  options: RegisterOptions,
  encode: (value: number) => Buffer,
  readerOf: ((node: string) => RaftLogClient) | null,
): Promise<void> {
  const slots = Array.from({ length: options.keys }, (_, i) => ({ key: i, used: 0 }));
  let nextKey = options.keys;
  const { cluster, opTimeoutMs } = options;
  return runWorkers(options, (worker: Worker) => {
    const slot = slots[worker.random.nextInt(slots.length)] as { key: number; used: number };
    if (slot.used >= options.opsPerKey) {
      slot.key = nextKey++;
      slot.used = 0;
    }
    slot.used++;
    const key = `k${slot.key}`;
    const keyBytes = Buffer.from(key);
    const dice = worker.random.next();
    const f: OperationF = dice < 0.4 ? 'read' : dice < 0.7 ? 'write' : 'cas';
    switch (f) {
      case 'read':
        return {
          f,
          key,
          value: null,
          call: async (): Promise<Outcome> => {
            if (readerOf !== null) {
              try {
                const read = await readerOf(worker.node).get(keyBytes, { consistency: options.readMode });
                return { type: 'ok', value: read.found ? Number(Buffer.from(read.value ?? []).toString()) : null };
              } catch (error) {
                return outcomeOfClientError(error, null);
              }
            }
            const consistency = options.readMode === 'local' ? 'READ_CONSISTENCY_LOCAL' : 'READ_CONSISTENCY_LINEARIZABLE';
            const reply = await cluster.call<GetReply>(worker.node, 'get', { key: keyBytes, consistency }, opTimeoutMs);
            return { type: 'ok', value: reply.found ? Number(Buffer.from(reply.value).toString()) : null };
          },
        };
      case 'write': {
        const value = worker.random.nextInt(VALUES);
        return {
          f,
          key,
          value,
          call: async (): Promise<Outcome> => {
            const reply = await cluster.call<WriteReply>(worker.node, 'put', { key: keyBytes, value: encode(value) }, opTimeoutMs);
            return { type: 'ok', value, index: reply.position.index };
          },
        };
      }
      default: {
        const value = [worker.random.nextInt(VALUES), worker.random.nextInt(VALUES)];
        const [expected, next] = value as [number, number];
        return {
          f,
          key,
          value,
          call: async (): Promise<Outcome> => {
            const reply = await cluster.call<CompareAndSwapReply>(
              worker.node,
              'compareAndSwap',
              { key: keyBytes, expected: encode(expected), expectAbsent: false, value: encode(next) },
              opTimeoutMs,
            );
            return reply.succeeded ? { type: 'ok', value, index: reply.position.index } : { type: 'fail', value, error: COMPARE_FAILED };
          },
        };
      }
    }
  });
}
