/**
 * What the client's calls resolve to: plain objects with numbers for log
 * indexes and terms, Uint8Array for bytes, null for what is absent, and the
 * endpoint that answered.
 */
import type { RaftLogError } from './errors.js';
import type { ReadConsistency } from './options.js';

/** Where a write took effect. */
export interface WriteResult {
  /** Index of the log entry that carried the write. */
  readonly index: number;
  /** Term in which it was committed. */
  readonly term: number;
  /** Node id of the leader that committed it (null if the reply did not say). */
  readonly leader: string | null;
  /** The endpoint that answered. */
  readonly endpoint: string;
  /**
   * The cluster had applied this write before, under the same producer stamp
   * (a retry of an exactly-once write whose earlier answer was lost): the
   * result is the first application's, and nothing was applied now. Always
   * false without `exactlyOnce`.
   */
  readonly duplicate: boolean;
}

export type PutResult = WriteResult;
export type AppendResult = WriteResult;

export interface DeleteResult extends WriteResult {
  /** Whether the key existed before the delete. */
  readonly existed: boolean;
}

export interface CompareAndSwapResult extends WriteResult {
  /** Whether the swap happened. */
  readonly succeeded: boolean;
  /** Whether the key exists after the operation. */
  readonly found: boolean;
  /** The key's value after the operation; null when the key is absent. */
  readonly current: Uint8Array | null;
}

export interface GetResult {
  readonly found: boolean;
  /** The value; null when the key is absent. */
  readonly value: Uint8Array | null;
  /** The applied index the read was served at. */
  readonly readIndex: number;
  /** Node id of the leader that confirmed the read; null for a local read. */
  readonly leader: string | null;
  readonly consistency: ReadConsistency;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** Where one node stands. */
export interface NodeStatus {
  /** The endpoint that answered. */
  readonly endpoint: string;
  /** The node's id. */
  readonly node: string;
  /** "follower", "pre-candidate", "candidate" or "leader". */
  readonly role: string;
  readonly term: number;
  /** The leader this node knows; null for none. */
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  /**
   * The first index the node's log holds: entries before it were compacted
   * into a snapshot, and readLog from below it throws RaftLogCompactedError.
   * lastLogIndex + 1 when the log is empty; 0 from a node that predates
   * compaction.
   */
  readonly firstLogIndex: number;
  /** The index of the node's latest snapshot; 0 for none. */
  readonly snapshotIndex: number;
  /** Node ids of the voting members. */
  readonly members: readonly string[];
  /** Hex SHA-256 digest of the state machine at appliedIndex. */
  readonly digest: string;
  /**
   * Every member of the configuration in force on the node, voters first,
   * with its role; match indexes only from the leader (0 elsewhere). Empty
   * from a node that predates membership changes.
   */
  readonly memberStatus: readonly ClusterMember[];
  /**
   * From the leader only: each other member's log as the leader tracks it
   * (voters and learners). Empty from any other node, and from a node that
   * predates the field.
   */
  readonly progress: readonly FollowerProgress[];
}

/** One member's log as the leader tracks it (NodeStatus.progress). */
export interface FollowerProgress {
  /** The member's node id. */
  readonly id: string;
  /** Highest log index known to be replicated on it. */
  readonly matchIndex: number;
  /** Index of the next entry the leader sends it. */
  readonly nextIndex: number;
  /** "probe" (the leader looks for where their logs diverge), "replicate" (appends are streamed) or "snapshot" (being sent a snapshot). */
  readonly state: string;
  /** In state "snapshot": the index of the snapshot being sent; 0 otherwise. */
  readonly pendingSnapshotIndex: number;
  /** Appends sent to it and not yet acknowledged. */
  readonly inflight: number;
  /** It answered the leader within the current election timeout. */
  readonly recentlyActive: boolean;
}

/** One member of a cluster configuration. */
export interface ClusterMember {
  readonly id: string;
  /** host:port the member is reached at; empty when the configuration does not record one. */
  readonly address: string;
  /** "voter" (elects, counts toward commit) or "learner" (receives the log only). */
  readonly role: string;
  /**
   * Highest log index known to be replicated on the member, as the leader
   * tracks it (the leader's own: its last index); 0 when a node other than
   * the leader answered.
   */
  readonly matchIndex: number;
}

/** The configuration as the leader sees it (memberList). */
export interface MemberList {
  /** Voters first, then learners. */
  readonly members: readonly ClusterMember[];
  /** Index of the entry that set this configuration; 0 for the one the cluster started with. */
  readonly configIndex: number;
  /** False while a change is under way (the configuration is in force on the leader but not yet committed). */
  readonly committed: boolean;
  /** The leader that answered. */
  readonly leader: string | null;
  /** The leader's commit index, to compare match indexes with. */
  readonly commitIndex: number;
  /** The cluster's id and name (what a joining node must present to its peers). */
  readonly clusterId: string;
  readonly clusterName: string;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** A committed membership change. */
export interface MemberChange {
  /** The configuration after the change, voters first. */
  readonly members: readonly ClusterMember[];
  /** Index of the committed entry that carried the change. */
  readonly index: number;
  /** The leader that committed it (null if the reply did not say). */
  readonly leader: string | null;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** A leadership transfer that finished (RaftLogClient.transferLeadership). */
export interface LeadershipTransfer {
  /** The node that leads now. */
  readonly leader: string;
  /** Its term. */
  readonly term: number;
  /** The node that led when the transfer was asked for; equal to `leader` when the target already led. */
  readonly previousLeader: string;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

export type LogEntryKind = 'append' | 'put' | 'delete' | 'cas' | 'no-command';

/** One committed entry of the log. */
export interface LogRecord {
  readonly index: number;
  readonly term: number;
  readonly kind: LogEntryKind;
  /** The record of an append; null for other kinds. */
  readonly record: Uint8Array | null;
  /** The key of a put, delete or cas; null for other kinds. */
  readonly key: Uint8Array | null;
}

/** A page of one node's committed log. */
export interface LogPage {
  /** The endpoint that answered. */
  readonly endpoint: string;
  readonly node: string;
  /** That node's commit index when it answered. */
  readonly commitIndex: number;
  readonly entries: readonly LogRecord[];
}

/** One endpoint's answer in statusAll(): its status, or why it has none. */
export type EndpointStatus =
  | { readonly endpoint: string; readonly ok: true; readonly status: NodeStatus }
  | { readonly endpoint: string; readonly ok: false; readonly error: RaftLogError };

/**
 * What a subscriber can see an entry carry: the kinds of LogRecord, and the
 * commands of durable consumers and producer sessions.
 */
export type SubscribedEntryKind = LogEntryKind | 'commit-position' | 'delete-consumer' | 'register-producer';

/** One key's change in the 'changes' view of a subscription. */
export interface KeyChange {
  readonly key: Uint8Array;
  /** The value before the entry; null when the key was absent. */
  readonly before: Uint8Array | null;
  /** The value after the entry; null when the entry deleted the key. */
  readonly after: Uint8Array | null;
}

/** A producer session's stamp on a write (see RegisterProducer in client.proto). */
export interface ProducerStampOfEntry {
  readonly id: number;
  readonly sequence: number;
}

/**
 * One committed entry as a subscription delivers it. In the 'changes' view
 * an entry carries its key changes, and the command's own fields (record,
 * value, expected, producer) are not sent: they are null.
 */
export interface SubscribedEntry {
  readonly index: number;
  readonly term: number;
  readonly kind: SubscribedEntryKind;
  /** The record of an append; null for other kinds. */
  readonly record: Uint8Array | null;
  /** The key of a put, delete or cas; null for other kinds. */
  readonly key: Uint8Array | null;
  /** The value a put or cas writes; null for other kinds. */
  readonly value: Uint8Array | null;
  /** The value a cas compares with; null for other kinds, and for a cas that expects the key absent. */
  readonly expected: Uint8Array | null;
  /** The consumer of a commit-position or delete-consumer; null for other kinds. */
  readonly consumer: string | null;
  /** The position a commit-position sets (or tried to set); null for other kinds. */
  readonly position: number | null;
  /** The producer session and sequence number of a producer's write; null otherwise. */
  readonly producer: ProducerStampOfEntry | null;
  /** In the 'changes' view: what the entry did to the key-value state, in order. Empty in the 'commands' view. */
  readonly changes: readonly KeyChange[];
  /** When the leader proposed the entry (ms since the Unix epoch); null when not recorded. */
  readonly proposedAtMs: number | null;
}

/** Where in the log a consumer command took effect. */
export interface EntryPosition {
  readonly index: number;
  readonly term: number;
}

/** A committed consumer position (commitPosition). */
export interface CommitPositionResult {
  /** The consumer's position now. */
  readonly position: number;
  /** The entry that carried the commit. */
  readonly entry: EntryPosition;
  /** The leader that committed it (null if the reply did not say). */
  readonly leader: string | null;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** A committed deletion of a consumer (deleteConsumer). */
export interface DeleteConsumerResult {
  /** Whether the consumer existed. */
  readonly existed: boolean;
  /** The entry that carried the deletion. */
  readonly entry: EntryPosition;
  /** The leader that committed it (null if the reply did not say). */
  readonly leader: string | null;
  /** The endpoint that answered. */
  readonly endpoint: string;
}

/** One durable consumer as consumers() reports it. */
export interface ConsumerStatus {
  readonly name: string;
  /** The last index it committed as processed. */
  readonly position: number;
  /** How far behind the commit index it is (commitIndex - position). */
  readonly lag: number;
  /** When its position was last committed, by the leader's clock (ms since the Unix epoch); 0 if unknown. */
  readonly committedAtMs: number;
  /** How long ago that was, by the answering node's clock. */
  readonly msSinceCommit: number;
  /** Index of the entry that last committed its position. */
  readonly commitEntryIndex: number;
}

/** Every durable consumer (consumers()). */
export interface ConsumerList {
  /** Sorted by name. */
  readonly consumers: readonly ConsumerStatus[];
  /** The commit index lags are measured against. */
  readonly commitIndex: number;
  /** The applied index the consumers were read at. */
  readonly readIndex: number;
  /** The node that answered. */
  readonly node: string;
  /** The endpoint that answered. */
  readonly endpoint: string;
}
