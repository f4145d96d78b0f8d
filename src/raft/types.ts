/**
 * The data the consensus core takes in and hands out. Everything here is plain
 * data (no classes) so that it can be copied, logged, encoded on the wire and
 * compared in tests.
 */

/** A member's name, e.g. "n1". Stable across restarts. */
export type NodeId = string;

/**
 * `command`: a client's proposal; `noop`: the empty entry a new leader appends
 * so that it can commit entries of earlier terms (Raft paper, §5.4.2);
 * `config`: a new cluster configuration (membership), in force on a node as
 * soon as the node appends it (dissertation §4.1).
 */
export type EntryKind = 'command' | 'noop' | 'config';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** What a node must remember across a crash for the protocol to stay safe. */
export interface HardState {
  readonly term: number;
  readonly votedFor: NodeId | null;
  /** Not needed for safety, but saves re-learning on restart. */
  readonly commit: number;
}

/**
 * Membership is data (handed in by storage, changed by config entries, carried
 * in snapshots), never a constant of the code. Voters elect and count towards
 * commit; learners receive the log and snapshots but do neither. Addresses
 * are the caller's (the core never reads them): they travel with the
 * configuration so that every node's address book follows it.
 */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly addresses?: Readonly<Record<NodeId, string>>;
  /**
   * Every id removed from the cluster so far. A removed id never becomes a
   * member again: its old process, a late message of it or a copy of its disk
   * could still speak for it, and a member added under it would start from an
   * empty log that replays configurations listing it as a voter. A machine
   * that replaces a removed member joins under a new id (as etcd's removed
   * member ids).
   */
  readonly removed?: readonly NodeId[];
}

/** One membership change: single-server changes, one at a time (dissertation §4.1, §4.4). */
export type ConfigChange =
  | { readonly type: 'add-learner'; readonly id: NodeId; readonly address: string }
  | { readonly type: 'promote'; readonly id: NodeId }
  | { readonly type: 'remove'; readonly id: NodeId };

/**
 * What the core knows of a snapshot: the state machine's state after applying
 * every entry up to `index` (whose term is `term`), and the configuration in
 * force there. The state itself is the caller's: the core never sees it.
 */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly config: ClusterConfig;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

interface MessageHeader {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's current term (for a pre-vote request: the term it would campaign in). */
  readonly term: number;
}

/** What only a leader sends (appends, heartbeats, snapshots). */
interface LeaderMessage extends MessageHeader {
  /**
   * Set when the sending leader's latest configuration lists the receiver as
   * a learner. A node that knows no configuration (an empty data dir waiting
   * to be added) takes a leader's messages only with it (see RaftCore.step).
   */
  readonly toLearner?: true;
}

export interface VoteRequest extends MessageHeader {
  readonly type: 'VoteRequest';
  /** A pre-vote asks "would you vote for me?" without anyone changing term (dissertation §9.6). */
  readonly preVote: boolean;
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Sent because the leader handed over leadership: voters ignore their leader lease. */
  readonly leadershipTransfer: boolean;
}

export interface VoteResponse extends MessageHeader {
  readonly type: 'VoteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

export interface AppendRequest extends LeaderMessage {
  readonly type: 'AppendRequest';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly leaderCommit: number;
  /**
   * Set on an append without entries that the leader sends a follower in
   * replicate state with no append in flight when its commit index moves: a
   * success would only repeat the match index the leader knows, so it is not
   * answered (a rejection is).
   */
  readonly commitOnly?: true;
}

export interface AppendResponse extends MessageHeader {
  readonly type: 'AppendResponse';
  readonly success: boolean;
  /** On success: the highest index known to match the leader's log. */
  readonly matchIndex: number;
  /** On rejection: the prevLogIndex of the request that was rejected. */
  readonly rejectedIndex: number;
  /**
   * On rejection, a hint for fast backtracking: the follower's largest index at
   * or below the rejected one whose term is at most the leader's prevLogTerm,
   * and that entry's term. The leader can skip every index above it.
   */
  readonly hintIndex: number;
  readonly hintTerm: number;
}

export interface Heartbeat extends LeaderMessage {
  readonly type: 'Heartbeat';
  /** min(leader commit, follower's match index): never ahead of what the follower holds. */
  readonly leaderCommit: number;
  /** Set when the heartbeat round also confirms leadership for pending reads. */
  readonly readContext: number | null;
}

export interface HeartbeatResponse extends MessageHeader {
  readonly type: 'HeartbeatResponse';
  readonly readContext: number | null;
}

/** The leader tells a caught-up follower to start an election now (dissertation §3.10). */
export interface TimeoutNow extends MessageHeader {
  readonly type: 'TimeoutNow';
}

/** A follower asks its leader for a read index on behalf of its clients. */
export interface ReadIndexRequest extends MessageHeader {
  readonly type: 'ReadIndexRequest';
  readonly requestIds: readonly string[];
}

export interface ReadIndexResponse extends MessageHeader {
  readonly type: 'ReadIndexResponse';
  readonly requestIds: readonly string[];
  readonly index: number;
}

/**
 * The leader's log no longer holds what a follower lacks: the caller sends
 * the follower its latest snapshot, `snapshot`, as a stream of its own, and
 * reports the outcome with `reportSnapshot`. The receiving caller steps this
 * same message into its core once the whole snapshot has arrived intact.
 */
export interface InstallSnapshot extends LeaderMessage {
  readonly type: 'InstallSnapshot';
  readonly snapshot: SnapshotMeta;
}

export type Message =
  | InstallSnapshot
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse;

export type MessageType = Message['type'];

/** A read that is now safe to serve from the local state machine. */
export interface ReadReady {
  readonly requestId: string;
  /** The local state machine has applied at least up to this index. */
  readonly index: number;
}

export interface ReadFailed {
  readonly requestId: string;
  readonly reason: string;
}

export interface RoleChange {
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  /** Why it changed, for the operator's log ("won election with 2/3 votes", ...). */
  readonly reason: string;
}

/**
 * One batch of work for the caller, in this order:
 * 0. `earlyMessages` may be sent at once, before or during step 1;
 * 1. write `snapshot` (if not null), `hardState` (if not null) and `entries`
 *    in one atomic, fsync'd write. A snapshot replaces the whole log;
 *    `entries` then replace the log from `entries[0].index` onward (a
 *    conflicting suffix is deleted in the same write). Later outputs may be
 *    taken while this write is in progress: writes complete in the order
 *    their outputs were taken;
 * 2. send `messages` once this write and every earlier one completed (they
 *    may report what the writes stored), then report `persisted(output)`;
 * 3. apply `committed` to the state machine, after the earlier outputs'
 *    committed entries. This need not wait for the write (committed entries
 *    are durable on a majority already), except that a `snapshot` restores
 *    the state machine first: its output's entries, and later outputs', are
 *    applied only once the snapshot is installed;
 * 4. serve `readsReady`, fail `readsFailed`, right after step 3.
 * OutputRunner carries this out for every caller.
 */
export interface RaftOutput {
  /** A snapshot received from the leader, to install: it is always newer than anything applied. */
  readonly snapshot: SnapshotMeta | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  /**
   * A leader's appends, heartbeats and TimeoutNow, when its term and vote are
   * already durable: they report nothing this output stores, so the leader
   * may replicate entries while it writes them itself (Raft dissertation
   * §10.2.1). It counts its own copy towards a commit only once stored.
   * Sending them after step 1, with `messages`, is correct too.
   */
  readonly earlyMessages: readonly Message[];
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readsReady: readonly ReadReady[];
  readonly readsFailed: readonly ReadFailed[];
  readonly roleChange: RoleChange | null;
}

export type ProposeRejection =
  | 'not-leader'
  | 'transfer-in-progress'
  | 'too-large'
  /** The leader's proposed, uncommitted entries are at maxUncommittedBytes: nothing was appended; retry later. */
  | 'backlog-full'
  /** A configuration change is appended and not yet committed: one at a time. */
  | 'config-change-pending'
  /** The leader has not yet committed an entry of its own term (the dissertation's correction to §4.1). */
  | 'leader-not-ready'
  /** The change makes no sense for this configuration (adding a member twice, removing the last voter, ...). */
  | 'invalid-config-change'
  /** A learner too far behind the leader to be promoted yet. */
  | 'learner-behind'
  /** Removing this voter would leave too few reachable voters for a quorum. */
  | 'quorum-at-risk';

export type ProposeResult =
  | { readonly accepted: true; readonly index: number; readonly term: number }
  | {
      readonly accepted: false;
      readonly reason: ProposeRejection;
      readonly leader: NodeId | null;
      readonly message: string;
    };

export type ReadIndexResult = { readonly accepted: true } | { readonly accepted: false; readonly reason: 'no-leader'; readonly message: string };

export type TransferResult =
  | { readonly accepted: true }
  | {
      readonly accepted: false;
      readonly reason: 'not-leader' | 'unknown-node' | 'already-leader';
      readonly leader: NodeId | null;
      readonly message: string;
    };

export interface FollowerProgress {
  readonly id: NodeId;
  readonly matchIndex: number;
  readonly nextIndex: number;
  /** snapshot: the follower is being sent a snapshot (up to `pendingSnapshot`) and gets no appends meanwhile. */
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly pendingSnapshot: number;
  readonly inflight: number;
  readonly recentlyActive: boolean;
}

/** The part of RaftStatus a caller reads after every output: no arrays built, nothing copied. */
export interface RaftBrief {
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly config: ClusterConfig;
  readonly configIndex: number;
  readonly member: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly votedFor: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** The index of the latest snapshot in storage (0: none). */
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** The configuration in force on this node (its latest config entry, committed or not) and where it was appended (0: the initial one). */
  readonly config: ClusterConfig;
  readonly configIndex: number;
  /** This node is in the configuration in force (as a voter or a learner). */
  readonly member: boolean;
  /** Only on a leader. */
  readonly progress: readonly FollowerProgress[] | null;
  readonly transferringTo: NodeId | null;
}
