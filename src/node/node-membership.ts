/**
 * The node's side of membership changes: turning the core's refusals into
 * gRPC statuses a person understands, and the view of the configuration the
 * Cluster service and Status report.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ClusterConfig, NodeId, ProposeResult, RaftStatus } from '../raft/types.js';
import { ClusterGrpcClient, type MemberListReply } from './cluster-proto.js';
import { ClientError, NotLeaderError, unavailable } from './errors.js';

export interface MembershipView {
  /** The configuration in force on this node (its latest, committed or not). */
  readonly config: ClusterConfig;
  /** Where it was appended (0: the bootstrap configuration). */
  readonly configIndex: number;
  /** configIndex <= this node's commit index. */
  readonly committed: boolean;
  readonly leader: NodeId | null;
  /** Only on the leader: each other member's match index. */
  readonly progress: readonly { readonly id: NodeId; readonly matchIndex: number }[] | null;
}

export function membershipView(status: RaftStatus): MembershipView {
  return {
    config: status.config,
    configIndex: status.configIndex,
    committed: status.configIndex <= status.commitIndex,
    leader: status.leader,
    progress: status.progress?.map((p) => ({ id: p.id, matchIndex: p.matchIndex })) ?? null,
  };
}

/** The error for a change the core would not take. */
export function refusalError(result: Extract<ProposeResult, { accepted: false }>, node: NodeId, term: number): ClientError {
  switch (result.reason) {
    case 'not-leader':
      return new NotLeaderError(node, term, result.leader);
    case 'invalid-config-change':
      return new ClientError(grpc.status.INVALID_ARGUMENT, result.message);
    case 'learner-behind':
    case 'config-change-pending':
    case 'quorum-at-risk':
      return new ClientError(grpc.status.FAILED_PRECONDITION, result.message);
    case 'too-large':
      return new ClientError(grpc.status.INVALID_ARGUMENT, result.message);
    case 'backlog-full':
      return new ClientError(grpc.status.RESOURCE_EXHAUSTED, result.message);
    case 'leader-not-ready':
    case 'transfer-in-progress':
      return unavailable(result.message);
  }
}

/** What a joining node learns from the cluster it joins. */
export interface DiscoveredCluster {
  readonly clusterId: string;
  readonly clusterName: string;
  /** Every member's address (client and peer traffic share a port). */
  readonly addresses: ReadonlyMap<NodeId, string>;
}

const DISCOVERY_ATTEMPT_MS = 3_000;
const DISCOVERY_LIMIT_MS = 60_000;

/**
 * Asks the join endpoints, in turn, for the cluster's members (MemberList,
 * which a follower forwards to the leader) until one answers; gives up after
 * a minute with every endpoint's error.
 */
export async function discoverCluster(
  endpoints: readonly string[],
  self: NodeId,
  logger: Logger,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): Promise<DiscoveredCluster> {
  const started = Date.now();
  const failures = new Map<string, string>();
  for (let round = 0; Date.now() - started < DISCOVERY_LIMIT_MS; round++) {
    for (const endpoint of endpoints) {
      const client = new ClusterGrpcClient(endpoint, credentials);
      try {
        const reply = await new Promise<MemberListReply>((resolve, reject) => {
          type Unary = (
            request: object,
            options: grpc.CallOptions,
            callback: (error: grpc.ServiceError | null, reply: MemberListReply) => void,
          ) => void;
          const call = (client as unknown as { memberList: Unary }).memberList;
          call.call(client, {}, { deadline: Date.now() + DISCOVERY_ATTEMPT_MS }, (error, answer) =>
            error !== null ? reject(error) : resolve(answer),
          );
        });
        const addresses = new Map<NodeId, string>();
        for (const member of reply.members) if (member.address !== '') addresses.set(member.id, member.address);
        if (addresses.has(self)) logger.info({ event: 'join', endpoint }, `${self} is already a member of the cluster it joins`);
        logger.info(
          { event: 'join-discovered', endpoint, clusterId: reply.clusterId, clusterName: reply.clusterName, members: [...addresses.keys()] },
          `joining cluster ${reply.clusterName} (${reply.clusterId}) of ${[...addresses.keys()].join(', ')}; waiting to be added`,
        );
        return { clusterId: reply.clusterId, clusterName: reply.clusterName, addresses };
      } catch (error) {
        failures.set(endpoint, (error as Error).message);
      } finally {
        client.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * 2 ** round)));
  }
  throw new Error(
    `node ${self} could not join: no endpoint answered MemberList within ${DISCOVERY_LIMIT_MS / 1000} s (${[...failures]
      .map(([endpoint, message]) => `${endpoint}: ${message}`)
      .join('; ')})`,
  );
}
