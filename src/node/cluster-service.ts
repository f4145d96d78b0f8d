/**
 * The membership API (raftlog.v1.Cluster, proto/raftlog/v1/cluster.proto) on
 * one node. Every call is the leader's to answer: a follower forwards it once
 * to the leader it knows and relays the answer, as it does writes.
 *
 * Adding a voter directly is refused: a member joins as a learner, catches
 * up, and is promoted (single-server changes, dissertation §4.1 and §4.2.1),
 * so that a new, empty member never counts toward commit.
 *
 * TransferLeadership, a planned leadership move, is the leader's to carry
 * out too (leadership-transfer.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { parseEndpoint } from '../client/endpoints.js';
import {
  ClusterGrpcClient,
  type ClusterMethod,
  type MemberAddRequest,
  type MemberChangeReply,
  type MemberIdRequest,
  type MemberListReply,
  type MemberListRequest,
  type TransferLeadershipReply,
  type TransferLeadershipRequest,
} from './cluster-proto.js';
import { invalidArgument, NotLeaderError } from './errors.js';
import { membersOf } from './members.js';
import type { MembershipView } from './node-membership.js';
import type { RaftNode } from './raft-node.js';
import { unaryCalls } from './unary-calls.js';

export { clusterServiceDefinition } from './cluster-proto.js';

/** Node ids as --peers accepts them. */
const NODE_ID = /^[A-Za-z0-9_.-]+$/;
const MAX_NODE_ID_LENGTH = 128;

export function createClusterService(
  getNode: () => RaftNode | null,
  logger: Logger,
  /** How a follower reaches its leader to forward a call (tls-config.ts). */
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
): grpc.UntypedServiceImplementation {
  const unary = unaryCalls<ClusterMethod>({
    getNode,
    logger,
    clientAt: (address) => new ClusterGrpcClient(address, credentials),
  });

  const changed = (node: RaftNode, outcome: { readonly index: number; readonly view: MembershipView }): MemberChangeReply => ({
    members: membersOf(node, outcome.view, node.status().lastIndex),
    index: outcome.index,
    leader: node.id,
  });

  return {
    MemberList: unary<MemberListRequest, MemberListReply>('memberList', async (node) => {
      const view = node.membership();
      const status = node.status();
      // The leader's configuration is the newest there is; a follower's may trail it.
      if (view.leader !== node.id) throw new NotLeaderError(node.id, status.term, view.leader);
      return {
        members: membersOf(node, view, status.lastIndex),
        configIndex: view.configIndex,
        committed: view.committed,
        leader: node.id,
        commitIndex: status.commitIndex,
        clusterId: node.clusterIdentity.clusterId,
        clusterName: node.clusterIdentity.clusterName,
      };
    }),

    MemberAdd: unary<MemberAddRequest, MemberChangeReply>('memberAdd', async (node, request, deadline) => {
      const id = checkMemberId(request.id);
      const address = checkAddress(request.address, id);
      if (!request.learner) {
        throw invalidArgument(
          `adding ${id} as a voter directly is not supported: add it as a learner (learner: true; raftlog member add --learner), ` +
            `let it catch up, then promote it`,
        );
      }
      return changed(node, await node.changeMembership({ type: 'add-learner', id, address }, deadline));
    }),

    MemberPromote: unary<MemberIdRequest, MemberChangeReply>('memberPromote', async (node, request, deadline) => {
      const id = checkMemberId(request.id);
      return changed(node, await node.changeMembership({ type: 'promote', id }, deadline));
    }),

    MemberRemove: unary<MemberIdRequest, MemberChangeReply>('memberRemove', async (node, request, deadline) => {
      const id = checkMemberId(request.id);
      return changed(node, await node.changeMembership({ type: 'remove', id }, deadline));
    }),

    TransferLeadership: unary<TransferLeadershipRequest, TransferLeadershipReply>('transferLeadership', async (node, request, deadline) => {
      const to = request.to === '' ? null : checkMemberId(request.to);
      const moved = await node.transferLeadership(to, deadline);
      return { leader: moved.leader, term: moved.term, previousLeader: moved.previousLeader };
    }),
  };
}

function checkMemberId(id: string): string {
  if (id === '') throw invalidArgument('member id must not be empty');
  if (id.length > MAX_NODE_ID_LENGTH || !NODE_ID.test(id)) {
    throw invalidArgument(
      `member id ${JSON.stringify(id.slice(0, MAX_NODE_ID_LENGTH))} is not a node id (letters, digits, '.', '_', '-'; at most ${MAX_NODE_ID_LENGTH})`,
    );
  }
  return id;
}

function checkAddress(address: string, id: string): string {
  if (address === '') throw invalidArgument(`member ${id} needs an address (host:port)`);
  try {
    const endpoint = parseEndpoint(address);
    if (endpoint.node !== null) throw new Error(`give the id separately, not as "${endpoint.node}="`);
    return endpoint.address;
  } catch (error) {
    throw invalidArgument(`address of member ${id}: ${(error as Error).message}`);
  }
}
