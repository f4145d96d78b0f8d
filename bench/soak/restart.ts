/**
 * Restart time of one node under load: a graceful stop, a fresh process with
 * the same flags, and the time until it has applied everything it had seen
 * committed before it went down: what an operator waits for in a rolling
 * restart, and what grows with the log's history when a node replays all of it.
 */
import * as grpc from '@grpc/grpc-js';
import { RaftLogGrpcClient, type StatusReply } from '../../src/node/client-proto.js';
import { sleep } from '../cluster/client.js';
import { now } from '../cluster/load.js';
import type { SpawnedTarget } from '../cluster/target.js';

export interface RestartResult {
  readonly node: string;
  /** Seconds since the soak started, at the stop. */
  readonly t_s: number;
  /** The commit index the node reported just before the stop: what it must apply again to count as back. */
  readonly commit_before: number;
  /** Its last log index then: the history a node without snapshots replays on start. */
  readonly last_log_before: number;
  /** SIGTERM → the process exited (SIGKILL after 10 s). */
  readonly stop_ms: number;
  /** Spawn → the first Status answer: process start, storage open, gRPC bound. */
  readonly up_ms: number | null;
  /** Spawn → a Status answer with applied index >= commit_before. This is "restart time". */
  readonly caught_up_ms: number | null;
  readonly error?: string;
}

/** Status probes while the node comes back; their interval bounds the resolution of up_ms and caught_up_ms. */
const PROBE_MS = 20;
const CATCH_UP_DEADLINE_MS = 120_000;

type StatusCall = (
  request: Record<string, never>,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply?: StatusReply) => void,
) => grpc.ClientUnaryCall;

/**
 * A channel of its own that retries the connection every few ms: the shared
 * clients back off up to 500 ms after a refused connect, which would be
 * billed to the node's restart time.
 */
function statusProbe(endpoint: string): { status(timeoutMs: number): Promise<StatusReply>; close(): void } {
  const client = new RaftLogGrpcClient(endpoint, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': 10,
    'grpc.max_reconnect_backoff_ms': PROBE_MS,
  });
  const call = (client as unknown as { status: StatusCall }).status.bind(client);
  return {
    status: (timeoutMs) =>
      new Promise((resolve, reject) => {
        call({}, { deadline: Date.now() + timeoutMs }, (error, reply) => {
          if (error !== null) reject(error);
          else if (reply === undefined) reject(new Error(`empty Status reply from ${endpoint}`));
          else resolve(reply);
        });
      }),
    close: () => client.close(),
  };
}

/** Stops `node` with SIGTERM, starts it again with the same flags, and times its way back. */
export async function restartNode(target: SpawnedTarget, node: string, startedAt: number): Promise<RestartResult> {
  const probe = statusProbe(target.cluster.address(node));
  try {
    const before = await probe.status(2_000);
    const t_s = Math.round((now() - startedAt) / 100) / 10;
    const t0 = now();
    await target.cluster.stop(node, 10_000);
    const stop_ms = Math.round(now() - t0);
    const spawnedAt = now();
    target.cluster.startNode(node);
    let up_ms: number | null = null;
    let last = 'no answer';
    while (now() - spawnedAt < CATCH_UP_DEADLINE_MS) {
      if (!target.cluster.isRunning(node)) {
        return result(null, `exited during restart; see ${target.cluster.dir}/${node}.log`);
      }
      try {
        const s = await probe.status(1_000);
        const t = Math.round(now() - spawnedAt);
        up_ms ??= t;
        if (s.appliedIndex >= before.commitIndex) return result(t);
        last = `applied ${s.appliedIndex}, commit ${s.commitIndex}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(PROBE_MS);
    }
    return result(null, `not caught up to ${before.commitIndex} within ${CATCH_UP_DEADLINE_MS} ms (last: ${last})`);

    function result(caught_up_ms: number | null, error?: string): RestartResult {
      return {
        node,
        t_s,
        commit_before: before.commitIndex,
        last_log_before: before.lastLogIndex,
        stop_ms,
        up_ms,
        caught_up_ms,
        ...(error === undefined ? {} : { error }),
      };
    }
  } finally {
    probe.close();
  }
}
