/**
 * From the replies as @grpc/proto-loader hands them out (64-bit integers as
 * decimal strings, bytes as Buffers, "" for an absent string) to the results
 * the client's calls resolve to. Each takes the endpoint that answered.
 */

import type {
  CommitPositionReply,
  CompareAndSwapReply,
  ConsumerInfo,
  ConsumersReply,
  DeleteConsumerReply,
  DeleteReply,
  GetReply,
  LogEntry,
  LogPosition,
  ReadLogReply,
  StatusReply,
  FollowerProgress as WireFollowerProgress,
  KeyChange as WireKeyChange,
  WireLogEntryKind,
  WriteReply,
} from '../api/client-api.js';
import type { MemberChangeReply, MemberListReply, TransferLeadershipReply, WireMember } from '../api/cluster-api.js';
import type { ReadConsistency } from './options.js';
import type {
  ClusterMember,
  CommitPositionResult,
  CompareAndSwapResult,
  ConsumerList,
  ConsumerStatus,
  DeleteConsumerResult,
  DeleteResult,
  EntryPosition,
  FollowerProgress,
  GetResult,
  KeyChange,
  LeadershipTransfer,
  LogEntryKind,
  LogPage,
  LogRecord,
  MemberChange,
  MemberList,
  NodeStatus,
  SubscribedEntry,
  SubscribedEntryKind,
  WriteResult,
} from './results.js';

/** The leader a reply names; null when it names none. */
export function replyLeader(reply: { readonly leader: string }): string | null {
  return orNull(reply.leader);
}

export function writeResult(reply: WriteReply, endpoint: string): WriteResult {
  return {
    index: toNumber(reply.position?.index ?? 0),
    term: toNumber(reply.position?.term ?? 0),
    leader: orNull(reply.leader),
    endpoint,
    duplicate: reply.duplicate ?? false,
  };
}

export function deleteResult(reply: DeleteReply, endpoint: string): DeleteResult {
  return { ...writeResult(reply, endpoint), existed: reply.existed };
}

export function compareAndSwapResult(reply: CompareAndSwapReply, endpoint: string): CompareAndSwapResult {
  return {
    ...writeResult(reply, endpoint),
    succeeded: reply.succeeded,
    found: reply.found,
    current: reply.found ? bytes(reply.current) : null,
  };
}

export function getResult(reply: GetReply, consistency: ReadConsistency, endpoint: string): GetResult {
  return {
    found: reply.found,
    value: reply.found ? bytes(reply.value) : null,
    readIndex: toNumber(reply.readIndex),
    leader: orNull(reply.leader),
    consistency,
    endpoint,
  };
}

export function nodeStatus(reply: StatusReply, endpoint: string): NodeStatus {
  return {
    endpoint,
    node: reply.node,
    role: reply.role,
    term: toNumber(reply.term),
    leader: orNull(reply.leader),
    commitIndex: toNumber(reply.commitIndex),
    appliedIndex: toNumber(reply.appliedIndex),
    lastLogIndex: toNumber(reply.lastLogIndex),
    firstLogIndex: toNumber(reply.firstLogIndex),
    snapshotIndex: toNumber(reply.snapshotIndex),
    members: [...reply.members],
    digest: reply.digest,
    memberStatus: reply.memberStatus.map(clusterMember),
    progress: reply.progress.map(followerProgress),
  };
}

function followerProgress(follower: WireFollowerProgress): FollowerProgress {
  return {
    id: follower.id,
    matchIndex: toNumber(follower.matchIndex),
    nextIndex: toNumber(follower.nextIndex),
    state: follower.state,
    pendingSnapshotIndex: toNumber(follower.pendingSnapshotIndex),
    inflight: follower.inflight,
    recentlyActive: follower.recentlyActive,
  };
}

export function logPage(reply: ReadLogReply, endpoint: string): LogPage {
  return {
    endpoint,
    node: reply.node,
    commitIndex: toNumber(reply.commitIndex),
    entries: reply.entries.map(logRecord),
  };
}

const LOG_ENTRY_KINDS: Partial<Record<string, LogEntryKind>> = {
  LOG_ENTRY_KIND_APPEND: 'append',
  LOG_ENTRY_KIND_PUT: 'put',
  LOG_ENTRY_KIND_DELETE: 'delete',
  LOG_ENTRY_KIND_COMPARE_AND_SWAP: 'cas',
  LOG_ENTRY_KIND_NO_COMMAND: 'no-command',
};

/** An entry of a kind this client does not know (a newer node's) reads as 'no-command'. */
function logRecord(entry: LogEntry): LogRecord {
  const kind = LOG_ENTRY_KINDS[entry.kind] ?? 'no-command';
  return {
    index: toNumber(entry.index),
    term: toNumber(entry.term),
    kind,
    record: kind === 'append' ? bytes(entry.record) : null,
    key: kind === 'put' || kind === 'delete' || kind === 'cas' ? bytes(entry.key) : null,
  };
}

/** Each entry kind a subscriber can see, and its name on the wire. */
export const WIRE_KINDS: Readonly<Record<SubscribedEntryKind, WireLogEntryKind>> = {
  append: 'LOG_ENTRY_KIND_APPEND',
  put: 'LOG_ENTRY_KIND_PUT',
  delete: 'LOG_ENTRY_KIND_DELETE',
  cas: 'LOG_ENTRY_KIND_COMPARE_AND_SWAP',
  'no-command': 'LOG_ENTRY_KIND_NO_COMMAND',
  'commit-position': 'LOG_ENTRY_KIND_COMMIT_POSITION',
  'delete-consumer': 'LOG_ENTRY_KIND_DELETE_CONSUMER',
  'register-producer': 'LOG_ENTRY_KIND_REGISTER_PRODUCER',
};

const SUBSCRIBED_ENTRY_KINDS: Partial<Record<string, SubscribedEntryKind>> = Object.fromEntries(
  Object.entries(WIRE_KINDS).map(([kind, wire]) => [wire, kind as SubscribedEntryKind]),
);

/**
 * An entry of a Subscribe reply. In the 'changes' view the node sends the
 * key changes and leaves the command's own fields empty, so those read as
 * null rather than as empty bytes. An entry of a kind this client does not
 * know (a newer node's) reads as 'no-command', as in readLog.
 */
export function subscribedEntry(entry: LogEntry, view: 'commands' | 'changes'): SubscribedEntry {
  const kind = SUBSCRIBED_ENTRY_KINDS[entry.kind] ?? 'no-command';
  const commands = view === 'commands';
  const writesKey = kind === 'put' || kind === 'delete' || kind === 'cas';
  const carriesValue = commands && (kind === 'put' || kind === 'cas');
  const consumerCommand = kind === 'commit-position' || kind === 'delete-consumer';
  const stamp = commands ? (entry.producer ?? null) : null;
  const proposedAtMs = toNumber(entry.proposedAtMs ?? 0);
  return {
    index: toNumber(entry.index),
    term: toNumber(entry.term),
    kind,
    record: commands && kind === 'append' ? bytes(entry.record) : null,
    key: writesKey ? bytes(entry.key) : null,
    value: carriesValue && entry.value !== undefined ? bytes(entry.value) : null,
    expected: commands && kind === 'cas' && entry.expectAbsent !== true && entry.expected !== undefined ? bytes(entry.expected) : null,
    consumer: consumerCommand ? (entry.consumer ?? '') : null,
    position: kind === 'commit-position' ? toNumber(entry.position ?? 0) : null,
    producer: stamp === null || toNumber(stamp.producerId) === 0 ? null : { id: toNumber(stamp.producerId), sequence: toNumber(stamp.sequence) },
    changes: (entry.changes ?? []).map(keyChange),
    proposedAtMs: proposedAtMs === 0 ? null : proposedAtMs,
  };
}

function keyChange(change: WireKeyChange): KeyChange {
  return {
    key: bytes(change.key),
    before: change.foundBefore ? bytes(change.before) : null,
    after: change.deleted ? null : bytes(change.after),
  };
}

export function commitPositionResult(reply: CommitPositionReply, endpoint: string): CommitPositionResult {
  return { position: toNumber(reply.position), entry: entryPosition(reply.entry), leader: orNull(reply.leader), endpoint };
}

export function deleteConsumerResult(reply: DeleteConsumerReply, endpoint: string): DeleteConsumerResult {
  return { existed: reply.existed, entry: entryPosition(reply.entry), leader: orNull(reply.leader), endpoint };
}

export function consumerList(reply: ConsumersReply, endpoint: string): ConsumerList {
  return {
    consumers: reply.consumers.map(consumerStatus),
    commitIndex: toNumber(reply.commitIndex),
    readIndex: toNumber(reply.readIndex),
    node: reply.node,
    endpoint,
  };
}

function consumerStatus(consumer: ConsumerInfo): ConsumerStatus {
  return {
    name: consumer.name,
    position: toNumber(consumer.position),
    lag: toNumber(consumer.lag),
    committedAtMs: toNumber(consumer.committedAtMs),
    msSinceCommit: toNumber(consumer.msSinceCommit),
    commitEntryIndex: toNumber(consumer.commitEntryIndex),
  };
}

function entryPosition(position: LogPosition | null): EntryPosition {
  return { index: toNumber(position?.index ?? 0), term: toNumber(position?.term ?? 0) };
}

export function memberList(reply: MemberListReply, endpoint: string): MemberList {
  return {
    members: reply.members.map(clusterMember),
    configIndex: toNumber(reply.configIndex),
    committed: reply.committed,
    leader: orNull(reply.leader),
    commitIndex: toNumber(reply.commitIndex),
    clusterId: reply.clusterId,
    clusterName: reply.clusterName,
    endpoint,
  };
}

export function memberChange(reply: MemberChangeReply, endpoint: string): MemberChange {
  return {
    members: reply.members.map(clusterMember),
    index: toNumber(reply.index),
    leader: orNull(reply.leader),
    endpoint,
  };
}

export function leadershipTransfer(reply: TransferLeadershipReply, endpoint: string): LeadershipTransfer {
  return { leader: reply.leader, term: toNumber(reply.term), previousLeader: reply.previousLeader, endpoint };
}

function clusterMember(member: WireMember): ClusterMember {
  return { id: member.id, address: member.address, role: member.role, matchIndex: toNumber(member.matchIndex) };
}

function orNull(text: string): string | null {
  return text === '' ? null : text;
}

/** A 64-bit index or term from the wire (a decimal string). Raft indexes stay far below 2^53. */
export function toNumber(value: string | number): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A plain Uint8Array view of bytes from the wire (which arrive as Buffers). */
function bytes(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
