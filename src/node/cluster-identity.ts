/**
 * Cluster and member identity (issue 10), and the admission check every peer
 * message passes before it can reach Raft.
 *
 * - Cluster id: 16 hex digits, recorded in every member's data directory when
 *   the directory is created and carried in every peer message. A new
 *   cluster's founding members each compute it on their own, so it is derived
 *   from what they share: the cluster's name (--cluster, the role of etcd's
 *   --initial-cluster-token) and the founding member ids (--peers).
 *   Addresses are left out on purpose: a node's --peers says how *it* reaches
 *   each peer, which differs from node to node behind proxies or NAT (the
 *   jepsen-lite harness gives every node its own proxy addresses), and
 *   founders must agree. So, as in etcd, two clusters founded with the same
 *   name and member ids get the same id: give each cluster its own --cluster
 *   (`npm start` does: `local-<random>`, new again with --fresh).
 * - Member id and incarnation: a data directory is bound to the --id it was
 *   created with (src/log/level-storage.ts refuses another), and gets a random
 *   incarnation then, which tells apart two directories claiming one id.
 *
 * What a receiver refuses (gRPC status, details naming what the sender
 * claimed; never the receiver's cluster name, cluster id, or the incarnation
 * it knows a member by, which are what an outsider would need to forge
 * messages that pass this check):
 * - another cluster name or id: FAILED_PRECONDITION; none at all: INVALID_ARGUMENT;
 * - a sender id that is not a member as the receiver knows it: FAILED_PRECONDITION;
 * - a sender whose incarnation differs from the one it heard from that id
 *   less than `quietMs` ago: FAILED_PRECONDITION, "two processes claim to be
 *   n3". Once the old incarnation has been silent for `quietMs`, the new one
 *   is taken (with a warning): a member restarted on a wiped or replaced data
 *   directory is let back in, as today. Detected: two live processes with one
 *   id that both talk to the same receiver. Not detected: a duplicate that
 *   only talks to nodes the original does not talk to (e.g. two followers:
 *   followers exchange nothing until an election), and anything across a
 *   receiver's restart (it remembers incarnations in memory only).
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';
import { RefusalLog } from './refusal-log.js';

/** What a node says about itself in every peer message. */
export interface PeerIdentity {
  /** 16 lowercase hex digits, from the node's data directory. */
  readonly clusterId: string;
  /** 16 lowercase hex digits, from the node's data directory. */
  readonly incarnation: string;
}

/** What a message claims about its sender, as it came off the wire (absent fields are ''). */
export interface PeerClaim {
  readonly from: NodeId;
  readonly cluster: string;
  readonly clusterId?: string | undefined;
  readonly memberIncarnation?: string | undefined;
}

/** A refusal to answer with: the gRPC status and what to tell the sender. */
export interface Refusal {
  readonly code: grpc.status;
  readonly details: string;
  /** Trailers for the sender; REFUSAL_METADATA_KEY says what it can act on. */
  readonly metadata?: grpc.Metadata;
}

/**
 * The trailer with which a receiver tells a sender why it was refused, where
 * the sender acts on it: NOT_A_MEMBER means the receiver's configuration (in
 * force and last committed) does not list the sender, which for a node once
 * a member means its removal committed.
 */
export const REFUSAL_METADATA_KEY = 'raftlog-refusal';
export const NOT_A_MEMBER = 'not-a-member';

const HEX16 = /^[0-9a-f]{16}$/;

/**
 * The cluster id a new cluster's founding members all arrive at: the first 64
 * bits of SHA-256 over the cluster's name and the sorted founding member ids.
 */
export function deriveClusterId(clusterName: string, founders: Iterable<NodeId>): string {
  const ids = [...new Set(founders)].sort();
  if (clusterName === '') throw new RangeError('deriveClusterId: the cluster name is empty');
  if (ids.length === 0) throw new RangeError(`deriveClusterId: cluster "${clusterName}" has no founding members`);
  // JSON keeps the fields apart: no name or id can be mistaken for a separator.
  return createHash('sha256')
    .update(JSON.stringify(['raftlog cluster id v1', clusterName, ids]))
    .digest('hex')
    .slice(0, 16);
}

/** How long an incarnation must have been silent before another one of the same member id is taken. */
export const DEFAULT_INCARNATION_QUIET_MS = 5_000;

export interface PeerAdmissionOptions {
  readonly self: NodeId;
  /** The cluster's name (--cluster). */
  readonly cluster: string;
  /** This node's cluster id, from its data directory. */
  readonly clusterId: string;
  /** Whether `id` is a member as this node knows it now (asked for every message: membership may change). */
  readonly isKnownMember: (id: NodeId) => boolean;
  /** Default DEFAULT_INCARNATION_QUIET_MS. */
  readonly quietMs?: number;
  /** Milliseconds on a monotonic clock; default performance.now. */
  readonly now?: () => number;
  readonly logger: Logger;
}

interface Heard {
  incarnation: string;
  at: number;
}

/**
 * Decides whether a peer message may reach Raft, for the Raft message stream
 * and the snapshot transfer alike (one instance per node, shared, so both
 * see the same incarnations).
 */
export class PeerAdmission {
  readonly self: NodeId;
  readonly cluster: string;
  readonly clusterId: string;
  private readonly isKnownMember: (id: NodeId) => boolean;
  private readonly quietMs: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly heard = new Map<NodeId, Heard>();
  private readonly events: RefusalLog;

  constructor(options: PeerAdmissionOptions) {
    if (!HEX16.test(options.clusterId))
      throw new RangeError(`PeerAdmission of ${options.self}: cluster id "${options.clusterId}" is not 16 lowercase hex digits`);
    this.self = options.self;
    this.cluster = options.cluster;
    this.clusterId = options.clusterId;
    this.isKnownMember = options.isKnownMember;
    this.quietMs = options.quietMs ?? DEFAULT_INCARNATION_QUIET_MS;
    this.now = options.now ?? (() => performance.now());
    this.log = options.logger.child({ component: 'peer-admission' });
    this.events = new RefusalLog(this.log);
  }

  /**
   * Null when a message from `claim.from` with these credentials may be
   * delivered (and then remembers its incarnation); otherwise why not. `what`
   * names the message in the details ("batch", "snapshot offer", ...);
   * `fromLeader` says whether it is a leader's traffic, asked only of a
   * sender this node does not know as a member.
   */
  check<C extends PeerClaim>(claim: C, what: string, fromLeader: (claim: C) => boolean = notFromLeader): Refusal | null {
    const { from } = claim;
    const clusterId = claim.clusterId ?? '';
    const incarnation = claim.memberIncarnation ?? '';
    // A sender of another name is of another cluster, member id or not; one of our name but an id we do not
    // know is first of all not a member (a node started with a --peers of its own gets a cluster id of its own).
    if (claim.cluster !== this.cluster) return this.otherCluster(claim, what);
    // A leader's traffic is taken from any node of this cluster (dissertation §4.1: servers do not consult
    // their configuration for incoming requests): a node whose configuration is older than its leader's (a
    // learner fed a snapshot taken before the leader itself was added) must let that leader bring it up to
    // date. The core rejects a stale leader by its term. Anything else from a non-member is refused, which
    // is how a removed node learns that its removal committed.
    if (!this.isKnownMember(from) && !fromLeader(claim)) {
      const metadata = new grpc.Metadata();
      metadata.set(REFUSAL_METADATA_KEY, NOT_A_MEMBER);
      return withMetadata(metadata, {
        code: grpc.status.FAILED_PRECONDITION,
        details:
          `${from} is not a member of the cluster as node ${this.self} knows it` +
          `${clusterId !== '' && clusterId !== this.clusterId ? ` (it claims cluster id ${clusterId})` : ''}: ` +
          `a node must be added to the cluster before it takes part (or its --id is wrong)`,
      });
    }
    if (clusterId !== '' && clusterId !== this.clusterId) return this.otherCluster(claim, what);
    if (!HEX16.test(clusterId)) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        details: `${what} from ${from} carries no valid cluster id (got "${clusterId}"): node ${this.self} only takes messages that name their cluster id`,
      };
    }
    if (!HEX16.test(incarnation)) {
      return { code: grpc.status.INVALID_ARGUMENT, details: `${what} from ${from} carries no valid member incarnation (got "${incarnation}")` };
    }
    return this.checkIncarnation(from, incarnation);
  }

  // Refusals are made only when refusing: check() runs for every batch, and its accepting path allocates nothing.
  private otherCluster(claim: PeerClaim, what: string): Refusal {
    const clusterId = claim.clusterId ?? '';
    return {
      code: grpc.status.FAILED_PRECONDITION,
      details:
        `${claim.from} sent a ${what} for cluster "${claim.cluster}" (cluster id ${clusterId === '' ? 'none' : clusterId}), which is not node ${this.self}'s: ` +
        `${claim.from}'s data directory or flags belong to another cluster, or its peer list points at the wrong one`,
    };
  }

  private checkIncarnation(from: NodeId, incarnation: string): Refusal | null {
    // Not remembered: the transport refuses anything that claims to come from this node itself.
    if (from === this.self) return null;
    const now = this.now();
    const known = this.heard.get(from);
    if (known === undefined) {
      this.heard.set(from, { incarnation, at: now });
      return null;
    }
    if (known.incarnation === incarnation) {
      known.at = now;
      return null;
    }
    const silentMs = now - known.at;
    if (silentMs >= this.quietMs) {
      this.log.warn(
        { event: 'member-incarnation-changed', member: from, previous: known.incarnation, incarnation, silentMs: Math.round(silentMs) },
        `${from} is back with another data directory (incarnation ${known.incarnation} -> ${incarnation}): its data was wiped or replaced`,
      );
      this.heard.set(from, { incarnation, at: now });
      this.events.clear(from);
      return null;
    }
    // Details stay the same from one refusal to the next, so the sender logs them once.
    const details =
      `two processes claim to be ${from}: node ${this.self} hears from ${from} with another member incarnation than ${incarnation} ` +
      `(another data directory); the newcomer is refused while the other one keeps talking ` +
      `(taken once it has been silent for ${this.quietMs} ms)`;
    this.events.warn(
      from,
      incarnation,
      { event: 'duplicate-member', member: from, heard: known.incarnation, refused: incarnation, heardMsAgo: Math.round(silentMs) },
      `two processes claim to be ${from}`,
    );
    return { code: grpc.status.FAILED_PRECONDITION, details };
  }
}

function notFromLeader(): boolean {
  return false;
}

function withMetadata(metadata: grpc.Metadata, refusal: Refusal): Refusal {
  return { ...refusal, metadata };
}
