/**
 * A fake raftlog node for testing clients: a grpc-js server of the RaftLog
 * service (proto/raftlog/v1/client.proto) on 127.0.0.1 with a port the OS
 * picks, backed by an in-memory key-value store that several fakes can share
 * (a "cluster" whose every node serves every call, as followers forward to
 * the leader).
 *
 * Each fake counts the calls it receives and can be scripted, per method, to
 * answer the next calls with an error status, answer late, never answer, or
 * crash (drop every connection) when a call arrives.
 *
 * The cluster's log can be compacted (FakeCluster.compact): ReadLog from
 * before the first index held then answers OUT_OF_RANGE as a node does, with
 * the first index in the message and in the trailing metadata, and Status
 * reports that first index and the snapshot's.
 *
 * Each fake also serves the membership service raftlog.v1.Cluster
 * (proto/raftlog/v1/cluster.proto) over the cluster's configuration, with
 * the rules of a node: members join as learners only, a learner is promoted
 * only once its match index (FakeCluster.matchIndexes, set by the test) is
 * within `promotionLag` of the last index, the last voter cannot go. Every
 * fake answers as the leader would, as a follower relays the leader's answer.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  RAFTLOG_METHODS,
  type RaftLogMethodName,
  type RaftLogMethods,
  type WireLogEntryKind,
} from '../../src/api/client-api.js';
import { CLUSTER_METHODS, type ClusterMethodName, type ClusterMethods, type WireMember } from '../../src/api/cluster-api.js';
import { clusterService } from '../../src/client/cluster-proto.js';
import { FIRST_INDEX_METADATA_KEY } from '../../src/client/errors.js';
import { raftLogService } from '../../src/client/proto.js';

/** Every method a fake serves: the client API's and the membership service's. */
type FakeMethods = RaftLogMethods & ClusterMethods;
export type FakeMethodName = RaftLogMethodName | ClusterMethodName;
const FAKE_METHODS: readonly FakeMethodName[] = [...RAFTLOG_METHODS, ...CLUSTER_METHODS];

/** What a fake does with one call. */
export type FakeAction =
  /** Answer with this error status and trailing metadata (nothing is applied). */
  | { readonly kind: 'fail'; readonly code: grpc.status; readonly details?: string; readonly trailers?: Readonly<Record<string, string>> }
  /** Carry out the call after `ms` milliseconds, then answer (so a write may commit after the client gave up). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Never answer (the call stays open until the client gives up or the fake stops). */
  | { readonly kind: 'hang' }
  /** Crash: drop every connection at once, after applying the write first if `applied`. */
  | { readonly kind: 'crash'; readonly applied: boolean };

/** The replicated state every fake of one cluster serves. */
export class FakeCluster {
  readonly data = new Map<string, Buffer>();
  readonly records: Buffer[] = [];
  lastIndex = 0;
  term = 1;
  leader = 'n1';
  /** The voters, in the order they joined (every fake started on the cluster is one). */
  members: string[] = [];
  learners: string[] = [];
  /** Each member's address; a fake registers its own endpoint. */
  readonly addresses = new Map<string, string>();
  /** The index of the entry that set the configuration (0: the initial one). */
  configIndex = 0;
  /** How far each member's log matches the leader's; a member not listed is caught up (the last index). */
  readonly matchIndexes = new Map<string, number>();
  /** A learner is promoted only when its match index is at most this far below the last index. */
  promotionLag = 10;
  /** The first index ReadLog still serves; entries before it count as compacted. */
  firstIndex = 1;
  /** The index of the latest snapshot (0: none), as Status reports it. */
  snapshotIndex = 0;

  /** Every committed entry, as ReadLog serves it. */
  readonly log: { index: number; term: number; kind: WireLogEntryKind; record: Buffer; key: Buffer }[] = [];

  /** Commits one entry and returns its position. */
  commit(kind: WireLogEntryKind, payload: { record?: Uint8Array; key?: Uint8Array } = {}): { index: number; term: number } {
    this.lastIndex += 1;
    const empty = Buffer.alloc(0);
    this.log.push({
      index: this.lastIndex,
      term: this.term,
      kind,
      record: payload.record === undefined ? empty : Buffer.from(payload.record),
      key: payload.key === undefined ? empty : Buffer.from(payload.key),
    });
    return { index: this.lastIndex, term: this.term };
  }

  /**
   * Takes a snapshot at `snapshotIndex` and compacts every entry before
   * `firstIndex`, as a node does. The snapshot defaults to the last compacted
   * entry; a node keeping a window of entries after its snapshot has it higher.
   */
  compact(firstIndex: number, snapshotIndex = firstIndex - 1): void {
    if (firstIndex < this.firstIndex || firstIndex > this.lastIndex + 1) {
      throw new Error(`fake cluster: cannot compact up to ${firstIndex}; it holds ${this.firstIndex}..${this.lastIndex}`);
    }
    if (snapshotIndex < Math.max(firstIndex - 1, this.snapshotIndex) || snapshotIndex > this.lastIndex) {
      throw new Error(
        `fake cluster: a snapshot at ${snapshotIndex} must cover the compacted entries before ${firstIndex}, ` +
          `not go back from the snapshot at ${this.snapshotIndex}, and not pass the last index ${this.lastIndex}`,
      );
    }
    this.firstIndex = firstIndex;
    this.snapshotIndex = snapshotIndex;
  }

  /** The configuration member by member, voters first; match indexes as the leader reports them, or 0 for any other node. */
  membersAsSeenBy(node: string): WireMember<number>[] {
    const member = (id: string, role: string) => ({
      id,
      address: this.addresses.get(id) ?? '',
      role,
      matchIndex: node === this.leader ? (this.matchIndexes.get(id) ?? this.lastIndex) : 0,
    });
    return [...this.members.map((id) => member(id, 'voter')), ...this.learners.map((id) => member(id, 'learner'))];
  }

  digest(): string {
    const hash = createHash('sha256');
    for (const [key, value] of [...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      hash.update(key).update(value);
    }
    for (const record of this.records) hash.update(record);
    return hash.digest('hex');
  }
}

interface FakeFailure {
  readonly error: grpc.status;
  readonly details: string;
  readonly trailers?: Readonly<Record<string, string>>;
}

type Handler<M extends FakeMethodName> = (request: FakeMethods[M]['request']) => FakeMethods[M]['outgoingReply'] | FakeFailure;

export interface FakeServerOptions {
  /** This node's id (default "n1"). */
  readonly node?: string;
  /** The state to serve; fakes given the same cluster serve the same data. */
  readonly cluster?: FakeCluster;
  /** Bind to this port on 127.0.0.1 (default 0: any free port). */
  readonly port?: number;
}

export class FakeRaftLogServer {
  readonly node: string;
  readonly cluster: FakeCluster;
  /** Calls received, per method, whatever the fake then did with them. */
  readonly calls: Record<FakeMethodName, number> = {
    Put: 0,
    Get: 0,
    Delete: 0,
    CompareAndSwap: 0,
    Append: 0,
    // Not served by the fake: its tests use the client library's default, one unary call per write.
    Calls: 0,
    Status: 0,
    ReadLog: 0,
    // Not served by the fake (gRPC answers UNIMPLEMENTED); counted for completeness.
    Subscribe: 0,
    CommitPosition: 0,
    DeleteConsumer: 0,
    Consumers: 0,
    RegisterProducer: 0,
    MemberList: 0,
    MemberAdd: 0,
    MemberPromote: 0,
    MemberRemove: 0,
    // Not served by the fake either: leadership transfers are tested against real nodes.
    TransferLeadership: 0,
  };
  /** Every request received, in order, with the metadata it came with. */
  readonly received: { method: FakeMethodName; request: unknown; metadata: grpc.Metadata }[] = [];
  private readonly scripts = new Map<FakeMethodName, FakeAction[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private server: grpc.Server;
  private stopped = false;

  private constructor(
    server: grpc.Server,
    readonly port: number,
    options: FakeServerOptions,
  ) {
    this.server = server;
    this.node = options.node ?? 'n1';
    this.cluster = options.cluster ?? new FakeCluster();
    if (!this.cluster.members.includes(this.node)) this.cluster.members.push(this.node);
    this.cluster.addresses.set(this.node, `127.0.0.1:${port}`);
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeRaftLogServer> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error === null ? resolve(bound) : reject(error),
      );
    });
    const fake = new FakeRaftLogServer(server, port, options);
    server.addService(raftLogService, fake.implementation());
    server.addService(clusterService, fake.clusterImplementation());
    return fake;
  }

  /** host:port to hand to a client. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** All calls received, every method together. */
  get totalCalls(): number {
    return Object.values(this.calls).reduce((sum, count) => sum + count, 0);
  }

  /** The next `times` calls of `method` (or of every method, '*') get `action`, after anything already scripted. */
  script(method: FakeMethodName | '*', action: FakeAction, times = 1): this {
    for (const name of method === '*' ? FAKE_METHODS : [method]) {
      const queue = this.scripts.get(name) ?? [];
      for (let i = 0; i < times; i++) queue.push(action);
      this.scripts.set(name, queue);
    }
    return this;
  }

  /** The next `times` calls of `method` are answered UNAVAILABLE, as a node with no leader does. */
  unavailable(method: FakeMethodName | '*', times = 1): this {
    return this.script(method, { kind: 'fail', code: grpc.status.UNAVAILABLE, details: 'no leader is known' }, times);
  }

  /** Every call from now on is answered UNAVAILABLE (until reset()). */
  alwaysUnavailable(): this {
    return this.unavailable('*', 1_000_000);
  }

  /** Forgets every scripted action. */
  reset(): this {
    this.scripts.clear();
    return this;
  }

  /** Stops at once: open calls are cancelled, connections dropped. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.server.forceShutdown();
  }

  private implementation(): grpc.UntypedServiceImplementation {
    return {
      Put: this.unary('Put', (request) => this.put(request)),
      Get: this.unary('Get', (request) => this.get(request)),
      Delete: this.unary('Delete', (request) => this.delete(request)),
      CompareAndSwap: this.unary('CompareAndSwap', (request) => this.compareAndSwap(request)),
      Append: this.unary('Append', (request) => this.append(request)),
      Status: this.unary('Status', () => this.status()),
      ReadLog: this.unary('ReadLog', (request) => this.readLog(request)),
    };
  }

  private clusterImplementation(): grpc.UntypedServiceImplementation {
    return {
      MemberList: this.unary('MemberList', () => this.memberList()),
      MemberAdd: this.unary('MemberAdd', (request) => this.memberAdd(request)),
      MemberPromote: this.unary('MemberPromote', (request) => this.memberPromote(request)),
      MemberRemove: this.unary('MemberRemove', (request) => this.memberRemove(request)),
    };
  }

  private unary<M extends FakeMethodName>(
    method: M,
    handle: Handler<M>,
  ): grpc.handleUnaryCall<FakeMethods[M]['request'], FakeMethods[M]['outgoingReply']> {
    return (call, callback) => {
      this.calls[method] += 1;
      this.received.push({ method, request: call.request, metadata: call.metadata });
      const answer = () => {
        const result = handle(call.request);
        if ('error' in result) callback({ code: result.error, details: result.details, metadata: metadataOf(result.trailers) });
        else callback(null, result);
      };
      const action = this.scripts.get(method)?.shift();
      switch (action?.kind) {
        case undefined:
          answer();
          break;
        case 'fail':
          callback({ code: action.code, details: action.details ?? grpc.status[action.code], metadata: metadataOf(action.trailers) });
          break;
        case 'delay': {
          const timer = setTimeout(() => {
            this.timers.delete(timer);
            answer();
          }, action.ms);
          this.timers.add(timer);
          break;
        }
        case 'hang':
          break;
        case 'crash':
          if (action.applied) handle(call.request);
          void this.stop();
          break;
      }
    };
  }

  private put(request: RaftLogMethods['Put']['request']) {
    const invalid = checkKey(request.key) ?? checkSize('value', request.value);
    if (invalid !== null) return invalid;
    this.cluster.data.set(keyOf(request.key), Buffer.from(request.value));
    return { position: this.cluster.commit('LOG_ENTRY_KIND_PUT', { key: request.key }), leader: this.cluster.leader };
  }

  private get(request: RaftLogMethods['Get']['request']) {
    const invalid = checkKey(request.key);
    if (invalid !== null) return invalid;
    const value = this.cluster.data.get(keyOf(request.key));
    return {
      found: value !== undefined,
      value: value ?? Buffer.alloc(0),
      readIndex: this.cluster.lastIndex,
      leader: request.consistency === 'READ_CONSISTENCY_LOCAL' ? '' : this.cluster.leader,
    };
  }

  private delete(request: RaftLogMethods['Delete']['request']) {
    const invalid = checkKey(request.key);
    if (invalid !== null) return invalid;
    const existed = this.cluster.data.delete(keyOf(request.key));
    return { position: this.cluster.commit('LOG_ENTRY_KIND_DELETE', { key: request.key }), leader: this.cluster.leader, existed };
  }

  private compareAndSwap(request: RaftLogMethods['CompareAndSwap']['request']) {
    const invalid = checkKey(request.key) ?? checkSize('expected', request.expected) ?? checkSize('value', request.value);
    if (invalid !== null) return invalid;
    const key = keyOf(request.key);
    const current = this.cluster.data.get(key);
    const succeeded = request.expectAbsent ? current === undefined : current !== undefined && current.equals(Buffer.from(request.expected));
    if (succeeded) this.cluster.data.set(key, Buffer.from(request.value));
    const after = this.cluster.data.get(key);
    return {
      position: this.cluster.commit('LOG_ENTRY_KIND_COMPARE_AND_SWAP', { key: request.key }),
      leader: this.cluster.leader,
      succeeded,
      found: after !== undefined,
      current: after ?? Buffer.alloc(0),
    };
  }

  private append(request: RaftLogMethods['Append']['request']) {
    const invalid = checkSize('record', request.record);
    if (invalid !== null) return invalid;
    this.cluster.records.push(Buffer.from(request.record));
    return { position: this.cluster.commit('LOG_ENTRY_KIND_APPEND', { record: request.record }), leader: this.cluster.leader };
  }

  private readLog(request: RaftLogMethods['ReadLog']['request']): RaftLogMethods['ReadLog']['outgoingReply'] | FakeFailure {
    const from = Math.max(1, Number(request.fromIndex));
    const first = this.cluster.firstIndex;
    if (from < first) {
      return {
        error: grpc.status.OUT_OF_RANGE,
        details: `node ${this.node}: cannot read from index ${from}: entries before ${first} were compacted into a snapshot; the log starts at ${first}`,
        trailers: { [FIRST_INDEX_METADATA_KEY]: String(first) },
      };
    }
    const max = request.maxEntries === 0 ? 1000 : Math.min(request.maxEntries, 1000);
    return {
      entries: this.cluster.log.slice(from - 1, from - 1 + max),
      commitIndex: this.cluster.lastIndex,
      node: this.node,
    };
  }

  private memberList(): ClusterMethods['MemberList']['outgoingReply'] {
    const { cluster } = this;
    return {
      members: cluster.membersAsSeenBy(cluster.leader),
      configIndex: cluster.configIndex,
      committed: true,
      leader: cluster.leader,
      clusterId: '0123456789abcdef',
      clusterName: 'fake',
      commitIndex: cluster.lastIndex,
    };
  }

  private memberAdd(request: ClusterMethods['MemberAdd']['request']): ClusterMethods['MemberAdd']['outgoingReply'] | FakeFailure {
    const { cluster } = this;
    if (request.id === '' || request.address === '') return { error: grpc.status.INVALID_ARGUMENT, details: 'member id and address are required' };
    if (!request.learner) {
      return {
        error: grpc.status.INVALID_ARGUMENT,
        details: `adding ${request.id} as a voter directly is not supported: add it as a learner, then promote it`,
      };
    }
    if (cluster.members.includes(request.id) || cluster.learners.includes(request.id)) {
      return { error: grpc.status.INVALID_ARGUMENT, details: `${request.id} is already a member` };
    }
    cluster.learners.push(request.id);
    cluster.addresses.set(request.id, request.address);
    cluster.matchIndexes.set(request.id, 0);
    return this.configChanged();
  }

  private memberPromote(request: ClusterMethods['MemberPromote']['request']): ClusterMethods['MemberPromote']['outgoingReply'] | FakeFailure {
    const { cluster } = this;
    if (!cluster.learners.includes(request.id)) {
      return { error: grpc.status.INVALID_ARGUMENT, details: `${request.id} is not a learner of this cluster` };
    }
    const match = cluster.matchIndexes.get(request.id) ?? cluster.lastIndex;
    const behind = cluster.lastIndex - match;
    if (behind > cluster.promotionLag) {
      return {
        error: grpc.status.FAILED_PRECONDITION,
        details: `learner ${request.id} is ${behind} entries behind the leader (match index ${match}, last index ${cluster.lastIndex}); promote it once it is within ${cluster.promotionLag}`,
      };
    }
    cluster.learners = cluster.learners.filter((id) => id !== request.id);
    cluster.members.push(request.id);
    return this.configChanged();
  }

  private memberRemove(request: ClusterMethods['MemberRemove']['request']): ClusterMethods['MemberRemove']['outgoingReply'] | FakeFailure {
    const { cluster } = this;
    if (!cluster.members.includes(request.id) && !cluster.learners.includes(request.id)) {
      return { error: grpc.status.INVALID_ARGUMENT, details: `${request.id} is not a member of this cluster` };
    }
    if (cluster.members.length === 1 && cluster.members[0] === request.id) {
      return { error: grpc.status.INVALID_ARGUMENT, details: `${request.id} is the last voter` };
    }
    cluster.members = cluster.members.filter((id) => id !== request.id);
    cluster.learners = cluster.learners.filter((id) => id !== request.id);
    cluster.addresses.delete(request.id);
    cluster.matchIndexes.delete(request.id);
    return this.configChanged();
  }

  /** Commits the configuration entry of a change and answers with the new configuration. */
  private configChanged(): ClusterMethods['MemberAdd']['outgoingReply'] {
    const { cluster } = this;
    const { index } = cluster.commit('LOG_ENTRY_KIND_NO_COMMAND');
    cluster.configIndex = index;
    return { members: cluster.membersAsSeenBy(cluster.leader), index, leader: cluster.leader };
  }

  private status() {
    const { cluster } = this;
    return {
      node: this.node,
      role: cluster.leader === this.node ? 'leader' : 'follower',
      term: cluster.term,
      leader: cluster.leader,
      commitIndex: cluster.lastIndex,
      appliedIndex: cluster.lastIndex,
      lastLogIndex: cluster.lastIndex,
      members: [...cluster.members],
      digest: cluster.digest(),
      firstLogIndex: cluster.firstIndex,
      snapshotIndex: cluster.snapshotIndex,
      memberStatus: cluster.membersAsSeenBy(this.node),
      // The fake keeps match indexes only (memberStatus), no replication state.
      progress: [],
    };
  }
}

function metadataOf(trailers: Readonly<Record<string, string>> = {}): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return metadata;
}

function keyOf(key: Uint8Array): string {
  return Buffer.from(key).toString('hex');
}

function checkKey(key: Uint8Array): { error: grpc.status; details: string } | null {
  if (key.length === 0) return { error: grpc.status.INVALID_ARGUMENT, details: 'key is empty' };
  if (key.length > MAX_KEY_BYTES) return { error: grpc.status.INVALID_ARGUMENT, details: 'key is over 4096 bytes' };
  return null;
}

function checkSize(what: string, bytes: Uint8Array): { error: grpc.status; details: string } | null {
  return bytes.length > MAX_VALUE_BYTES ? { error: grpc.status.INVALID_ARGUMENT, details: `${what} is over 1 MiB` } : null;
}

/** Starts `count` fakes sharing one cluster, nodes n1..n<count>; n1 leads unless told otherwise. */
export async function startFakeCluster(count: number, leader = 'n1'): Promise<FakeRaftLogServer[]> {
  const cluster = new FakeCluster();
  cluster.leader = leader;
  const fakes: FakeRaftLogServer[] = [];
  try {
    for (let i = 1; i <= count; i++) fakes.push(await FakeRaftLogServer.start({ node: `n${i}`, cluster }));
  } catch (error) {
    await Promise.all(fakes.map((fake) => fake.stop()));
    throw error;
  }
  return fakes;
}
