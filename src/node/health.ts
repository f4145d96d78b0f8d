/**
 * The standard gRPC health service (grpc.health.v1.Health, from the
 * grpc-health-check package) on a node's gRPC port. A node is SERVING while
 * it can take part in the cluster's work: it is a member, not stopping, and
 * knows a leader that is alive as far as Raft can tell — itself (a leader cut
 * off from its quorum steps down within an election timeout: CheckQuorum),
 * or a leader it has heard from within the longest election timeout (past
 * it a voter would campaign; a learner never campaigns, and would otherwise
 * keep its stale leader for good). Otherwise NOT_SERVING: starting, in an
 * election, cut off from the leader, removed, or stopping.
 */
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { Logger } from 'pino';
import { RAFTLOG_SERVICE_NAME } from '../api/client-api.js';
import { CLUSTER_SERVICE_NAME } from '../api/cluster-api.js';
import type { NodeVitals } from './metrics.js';

/** The overall status ("") and the services that answer only with a leader behind them. */
export const HEALTH_SERVICES: readonly string[] = ['', RAFTLOG_SERVICE_NAME, CLUSTER_SERVICE_NAME];

/** How often the node's state is looked at: a change shows in Check and Watch within this. */
export const HEALTH_POLL_MS = 100;

export interface HealthVerdict {
  readonly status: Extract<ServingStatus, 'SERVING' | 'NOT_SERVING'>;
  /** Why, for the log line of a change. */
  readonly reason: string;
}

/**
 * SERVING or NOT_SERVING for a node in the state `vitals` (null: still
 * starting). `staleAfterMs`: how long a follower may go without a message
 * from its leader and still count it as known.
 */
export function healthVerdict(vitals: NodeVitals | null, staleAfterMs: number): HealthVerdict {
  const notServing = (reason: string): HealthVerdict => ({ status: 'NOT_SERVING', reason });
  if (vitals === null) return notServing('starting: the log is not loaded yet');
  const { status } = vitals;
  if (vitals.stopped) return notServing('stopping');
  if (vitals.removed) return notServing(`removed from the cluster (term ${status.term})`);
  if (!status.member) return notServing(`not a member of the configuration in force (index ${status.configIndex})`);
  if (status.leader === null) return notServing(`no leader known in term ${status.term} (${status.role})`);
  if (status.leader === status.id) return { status: 'SERVING', reason: `leader in term ${status.term}` };
  if (vitals.leaderSilenceMs === null || vitals.leaderSilenceMs > staleAfterMs) {
    const silence = vitals.leaderSilenceMs === null ? 'never heard from' : `silent for ${Math.round(vitals.leaderSilenceMs)} ms`;
    return notServing(`leader ${status.leader} of term ${status.term} ${silence} (limit ${staleAfterMs} ms)`);
  }
  return { status: 'SERVING', reason: `following ${status.leader} in term ${status.term}` };
}

export interface NodeHealthOptions {
  /** Follower's limit on leader silence: the longest election timeout (2 · electionTicks · tickMs). */
  readonly staleAfterMs: number;
  /** Aborted when the node stops: NOT_SERVING, then open Watch calls end so that the server can shut down. */
  readonly shutdown: AbortSignal;
  readonly logger: Logger;
  readonly pollMs?: number;
}

/**
 * Registers the health service on `server` (NOT_SERVING until the node is up)
 * and keeps it in line with the node's state until `shutdown` aborts.
 */
export class NodeHealth {
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((service) => [service, 'NOT_SERVING'])));
  private readonly watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  private readonly timer: NodeJS.Timeout;
  private current: HealthVerdict = { status: 'NOT_SERVING', reason: 'starting' };

  constructor(
    server: grpc.Server,
    private readonly vitals: () => NodeVitals | null,
    private readonly options: NodeHealthOptions,
  ) {
    // Watch calls are tracked so that a stopping node can end them: an open stream would hold the server's graceful shutdown.
    this.health.addToServer({
      addService: (service, implementation) => {
        const watch = implementation.watch as grpc.handleServerStreamingCall<unknown, unknown>;
        server.addService(
          service as unknown as grpc.ServiceDefinition,
          {
            ...implementation,
            watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
              this.watches.add(call);
              const forget = () => this.watches.delete(call);
              call.once('cancelled', forget);
              call.once('close', forget);
              watch(call);
            },
          } as grpc.UntypedServiceImplementation,
        );
      },
    });
    this.timer = setInterval(() => this.update(), options.pollMs ?? HEALTH_POLL_MS);
    this.timer.unref();
    if (options.shutdown.aborted) this.close();
    else options.shutdown.addEventListener('abort', () => this.close(), { once: true });
  }

  /** The status last reported. */
  get verdict(): HealthVerdict {
    return this.current;
  }

  /** Looks at the node now; reports a change to Check and to every Watch. */
  update(): void {
    this.report(healthVerdict(this.vitals(), this.options.staleAfterMs));
  }

  private report(verdict: HealthVerdict): void {
    if (verdict.status === this.current.status) return;
    this.current = verdict;
    for (const service of HEALTH_SERVICES) this.health.setStatus(service, verdict.status);
    this.options.logger.info({ event: 'health', status: verdict.status, reason: verdict.reason }, `health: ${verdict.status} (${verdict.reason})`);
  }

  private close(): void {
    clearInterval(this.timer);
    this.report({ status: 'NOT_SERVING', reason: 'stopping' });
    for (const call of this.watches) call.end();
    this.watches.clear();
  }
}
