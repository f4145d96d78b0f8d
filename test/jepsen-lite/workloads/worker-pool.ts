import * as grpc from '@grpc/grpc-js';
import { RaftLogError, RaftLogFailedPreconditionError, RaftLogInvalidArgumentError, RaftLogUnavailableError } from '../../../src/client/index.js';
import { SeededRandom } from '../../../src/raft/random.js';
import type { ProcessCluster } from '../../support/process-cluster.js';
import type { ClientEvent, OperationF } from '../history.js';
import type { HistoryRecorder } from '../recorder.js';

export interface WorkloadOptions {
  readonly cluster: ProcessCluster;
  readonly recorder: HistoryRecorder;
  /** The members now (the configuration changes under the membership nemesis); asked before every operation. */
  readonly nodes: () => readonly string[];
  readonly concurrency: number;
  /** Target operations per second, all workers together. */
  readonly rate: number;
  /** Every call's deadline. */
  readonly opTimeoutMs: number;
  readonly seed: number;
  /** True once the workload should stop starting operations. */
  readonly stopped: () => boolean;
}

/** What one operation came to, to be written as its completion; `node`: the node that answered, when it was not the one invoked. */
export type Outcome =
  | { readonly type: 'ok'; readonly value: unknown; readonly index?: number; readonly node?: string; readonly duplicate?: boolean }
  | { readonly type: 'fail' | 'info'; readonly value: unknown; readonly error: string };

/**
 * One client worker: it has one operation outstanding, bound to one node,
 * under a process number. It stays with its node while that is a member,
 * down or not, and moves to another when the node leaves the configuration.
 */
export interface Worker {
  readonly index: number;
  node: string;
  readonly random: SeededRandom;
  process: number;
}

/**
 * How a failed call is recorded. Only an answer from the node itself can be
 * definite: UNAVAILABLE (no leader, not proposed, or replaced by another
 * leader's entry) and INVALID_ARGUMENT promise nothing took effect; so does a
 * call that grpc-js never sent for want of a connection. Anything
 * else, including UNAVAILABLE made up by the client library when the
 * connection broke mid-call, may or may not have taken effect.
 */
export function outcomeOfError(error: unknown, value: unknown): Outcome {
  const status = error as Partial<grpc.ServiceError>;
  const code = typeof status.code === 'number' ? status.code : grpc.status.UNKNOWN;
  const answeredByNode = status.metadata instanceof grpc.Metadata && status.metadata.get('content-type').length > 0;
  const message = `${grpc.status[code] ?? code}: ${status.details ?? (error as Error).message ?? String(error)}`;
  // grpc-js says "No connection established" when it had no connection to start the call on: it never left.
  const neverSent = code === grpc.status.UNAVAILABLE && (status.details ?? '').startsWith('No connection established');
  const definite = neverSent || (answeredByNode && (code === grpc.status.UNAVAILABLE || code === grpc.status.INVALID_ARGUMENT));
  return { type: definite ? 'fail' : 'info', value, error: message };
}

/**
 * How a call made through the client library (RaftLogClient) and failed is
 * recorded. The library has already sorted its failures: unavailable (no
 * node took the call), invalid argument and failed precondition (a node
 * refused it) are definite; indeterminate, and anything unexpected, may or
 * may not have taken effect.
 */
export function outcomeOfClientError(error: unknown, value: unknown): Extract<Outcome, { readonly type: 'fail' | 'info' }> {
  const definite =
    error instanceof RaftLogUnavailableError || error instanceof RaftLogInvalidArgumentError || error instanceof RaftLogFailedPreconditionError;
  const message = error instanceof RaftLogError ? `${error.codeName}: ${error.message}` : String((error as Error).message ?? error);
  return { type: definite ? 'fail' : 'info', value, error: message };
}

/**
 * Runs `concurrency` workers until stopped, each doing `operate` in a loop
 * paced to the target rate. An `info` completion crashes the process as in
 * Jepsen: the worker carries on under a new process number, since the old
 * operation may still take effect at any time.
 */
export async function runWorkers(
  options: WorkloadOptions,
  operate: (worker: Worker) => { f: OperationF; key: string | null; value: unknown; call: () => Promise<Outcome> },
): Promise<void> {
  const { concurrency, rate, recorder } = options;
  const meanGapMs = (1000 * concurrency) / rate;
  const bindTo = (index: number, nodes: readonly string[]) => nodes[index % nodes.length] as string;
  const workers: Worker[] = Array.from({ length: concurrency }, (_, index) => ({
    index,
    node: bindTo(index, options.nodes()),
    random: new SeededRandom(options.seed * 7919 + index),
    process: index,
  }));
  await Promise.all(
    workers.map(async (worker) => {
      while (!options.stopped()) {
        const nodes = options.nodes();
        if (nodes.length > 0 && !nodes.includes(worker.node)) worker.node = bindTo(worker.index, nodes);
        const op = operate(worker);
        const invocation: ClientEvent = recorder.invoke(worker.process, op.f, op.key, op.f === 'read' ? null : op.value, worker.node);
        const outcome = await op.call().catch((error: unknown) => outcomeOfError(error, op.value));
        recorder.complete(
          invocation,
          outcome.type,
          outcome.value,
          outcome.type === 'ok'
            ? {
                ...(outcome.index === undefined ? {} : { index: outcome.index }),
                ...(outcome.node === undefined ? {} : { node: outcome.node }),
                ...(outcome.duplicate === true ? { duplicate: true } : {}),
              }
            : { error: outcome.error },
        );
        if (outcome.type === 'info') worker.process += concurrency;
        // Exponential gaps with the target mean: arrivals stay irregular, as real clients are.
        const gap = -Math.log(1 - worker.random.next()) * meanGapMs;
        await new Promise((resolve) => setTimeout(resolve, Math.min(gap, meanGapMs * 5)));
      }
    }),
  );
}
