/**
 * A client of the raftlog client API (proto/raftlog/v1/client.proto).
 *
 * Any node serves any call (followers forward to the leader), so each call is
 * sent to one endpoint: the last known leader's when the client knows where
 * it listens, else the endpoint that answered last. When a node says
 * UNAVAILABLE (no leader known) or cannot be reached, the call moves on to the
 * next endpoint after an exponential backoff with full jitter, until the
 * call's deadline.
 *
 * Writes are retried only when they certainly did not take effect: the node
 * answered UNAVAILABLE, or no connection to it was established so nothing was
 * sent. A write that was (or may have been) sent and then timed out, lost its
 * connection or hit an unexpected server failure may or may not have been
 * committed: it fails with RaftLogIndeterminateError and is never retried, as
 * even a repeated Put could undo a later write of another client.
 * Reads (Get, Status) change nothing, so they also move on to the next
 * endpoint after a lost connection.
 *
 * Nodes compact their log into snapshots: readLog() from an index a node no
 * longer holds fails with RaftLogCompactedError, which gives the first index
 * that node still holds (`firstIndex`).
 *
 * Membership changes (memberAdd, memberPromote, memberRemove) follow the
 * rules of writes: retried only when certainly not carried out, and
 * RaftLogIndeterminateError once sent and then lost or timed out (memberList
 * shows whether the change took effect). A change the cluster refuses as
 * things stand (a learner still catching up, another change pending, a
 * removal that would cost the quorum) fails with
 * RaftLogFailedPreconditionError.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { checkKey, checkValue, type Bytes } from './bytes.js';
import { parseEndpoint, parseEndpoints } from './endpoints.js';
import {
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
  StatusCode,
  statusCodeName,
  type AttemptFailure,
  type RaftLogOperation,
} from './errors.js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { clusterMethodDefinition, type MemberChangeReply, type WireMember } from './cluster-proto.js';
import { methodDefinition, type WriteReply } from './proto.js';

export interface RaftLogClientOptions {
  /** The nodes to talk to, "host:port" each, optionally "nodeId=host:port". At least one. */
  readonly endpoints: readonly string[];
  /** Overall time for one call, retries included, in milliseconds. Default 5000. */
  readonly deadlineMs?: number;
  /**
   * How long to wait for a connection to an endpoint before moving on to the
   * next one (nothing has been sent then, so this is safe for writes too).
   * Default 1000 ms.
   */
  readonly connectTimeoutMs?: number;
  /** Backoff between attempts: the n-th retry waits a random time in [0, min(maxMs, initialMs * 2^(n-1))]. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /**
   * When a reply names a leader whose endpoint the client does not know, ask
   * the endpoints whose node id it does not know for their Status in the
   * background, so that later calls go to the leader directly. Default true;
   * a one-shot client (the CLI) turns it off.
   */
  readonly discoverLeader?: boolean;
}

/** Per-call options. */
export interface CallOptions {
  /** Overrides the client's deadlineMs for this call. */
  readonly deadlineMs?: number;
}

export type ReadConsistency = 'linearizable' | 'local';

export interface GetOptions extends CallOptions {
  /** 'linearizable' (default): reflects every write acknowledged before the read began. 'local': whatever the serving node has applied; fast, may be stale. */
  readonly consistency?: ReadConsistency;
}

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

export interface MemberAddOptions extends CallOptions {
  /**
   * Join as a learner: receives the log, neither votes nor counts toward
   * commit, until memberPromote. Nodes refuse false (adding a voter
   * directly) with INVALID_ARGUMENT; it is required so that callers say so.
   */
  readonly learner: boolean;
}

export interface ReadLogOptions extends CallOptions {
  /** Ask this node (host:port) only; by default any node that answers. */
  readonly endpoint?: string;
  /** At most this many entries, 1 to 1000 (default 1000). */
  readonly maxEntries?: number;
}

export type LogEntryKind = 'append' | 'put' | 'delete' | 'cas' | 'no-command';

const LOG_ENTRY_KINDS: Partial<Record<string, LogEntryKind>> = {
  LOG_ENTRY_KIND_APPEND: 'append',
  LOG_ENTRY_KIND_PUT: 'put',
  LOG_ENTRY_KIND_DELETE: 'delete',
  LOG_ENTRY_KIND_COMPARE_AND_SWAP: 'cas',
  LOG_ENTRY_KIND_NO_COMMAND: 'no-command',
};

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

const DEFAULT_DEADLINE_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const DEFAULT_BACKOFF_INITIAL_MS = 25;
const DEFAULT_BACKOFF_MAX_MS = 1000;
/** How often, at most, one endpoint is asked for its node id in the background. */
const DISCOVERY_INTERVAL_MS = 2000;

/** How one call is made and what its reply means. */
interface Operation<Req, Res, T> {
  readonly name: RaftLogOperation;
  readonly method: MethodDefinition<Req, Res>;
  /** Writes are never retried once they may have been sent. */
  readonly write: boolean;
  readonly request: Req;
  readonly deadlineMs: number;
  decode(reply: Res, endpoint: Endpoint): T;
  /** The leader the reply names, if any. */
  leaderOf(reply: Res): string | null;
  /** An error particular to this operation for a status the node answered with; null (or absent) for the general rules. */
  serverError?(failure: CallFailure, attempts: readonly AttemptFailure[]): RaftLogError | null;
}

interface Endpoint {
  readonly address: string;
  /** The node id listening there, given with the endpoint or learned from its Status. */
  node: string | null;
  /** Created on first use. */
  client: grpc.Client | null;
  discovering: boolean;
  nextDiscoveryAt: number;
}

type AttemptOutcome<R> =
  | { readonly ok: true; readonly reply: R }
  | { readonly ok: false; readonly failure: CallFailure };

/** How an attempt failed, as far as the client can tell. */
interface CallFailure {
  readonly endpoint: string;
  readonly code: number;
  readonly details: string;
  /** The node answered with this status (a gRPC trailers-only response), rather than the client seeing the call fail. */
  readonly fromServer: boolean;
  /** Nothing was sent: no connection to the endpoint was established in time. */
  readonly notSent: boolean;
  /** The client was closed while the call was under way. */
  readonly closed: boolean;
  /** The metadata that came with the status (trailers); null when the client made the failure up. */
  readonly trailers: grpc.Metadata | null;
}

export class RaftLogClient {
  private readonly endpoints: Endpoint[];
  /** Endpoints asked for by status(endpoint) that are not among the configured ones. */
  private readonly extraEndpoints = new Map<string, Endpoint>();
  private readonly deadlineMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly discoverLeader: boolean;
  private readonly inFlight = new Set<grpc.ClientUnaryCall>();
  private readonly closing = new AbortController();
  /** Where the next call starts. */
  private preferred: Endpoint;
  private leaderNode: string | null = null;

  constructor(options: RaftLogClientOptions) {
    let specs;
    try {
      specs = parseEndpoints(options.endpoints);
    } catch (error) {
      throw new TypeError(`RaftLogClient: ${(error as Error).message}`);
    }
    this.endpoints = specs.map((spec) => newEndpoint(spec.address, spec.node));
    this.preferred = this.endpoints[0] as Endpoint;
    this.deadlineMs = positive('deadlineMs', options.deadlineMs ?? DEFAULT_DEADLINE_MS);
    this.connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.backoffInitialMs = positive('backoff.initialMs', options.backoff?.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS);
    this.backoffMaxMs = positive('backoff.maxMs', options.backoff?.maxMs ?? DEFAULT_BACKOFF_MAX_MS);
    this.discoverLeader = options.discoverLeader ?? true;
  }

  /** The configured endpoints (host:port), in order. */
  get endpointAddresses(): readonly string[] {
    return this.endpoints.map((endpoint) => endpoint.address);
  }

  /** The leader named by the latest reply, and its endpoint when the client knows it. */
  get knownLeader(): { readonly node: string; readonly endpoint: string | null } | null {
    if (this.leaderNode === null) return null;
    return { node: this.leaderNode, endpoint: this.endpointOfNode(this.leaderNode)?.address ?? null };
  }

  /** Sets key to value. */
  async put(key: Bytes, value: Bytes, options: CallOptions = {}): Promise<PutResult> {
    const op = 'put';
    return await this.run({
      name: op,
      method: methodDefinition('Put'),
      write: true,
      request: { key: checkKey(op, key), value: checkValue(op, 'value', value) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => writeResult(reply, endpoint),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /** Reads a key: linearizable unless `consistency: 'local'` is asked for. */
  async get(key: Bytes, options: GetOptions = {}): Promise<GetResult> {
    const op = 'get';
    const consistency = options.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'local') {
      throw invalidOption(op, `consistency must be 'linearizable' or 'local', got ${String(consistency)}`);
    }
    return await this.run({
      name: op,
      method: methodDefinition('Get'),
      write: false,
      request: {
        key: checkKey(op, key),
        consistency: consistency === 'local' ? 'READ_CONSISTENCY_LOCAL' : 'READ_CONSISTENCY_LINEARIZABLE',
      },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => ({
        found: reply.found,
        value: reply.found ? bytes(reply.value) : null,
        readIndex: toNumber(reply.readIndex),
        leader: orNull(reply.leader),
        consistency,
        endpoint: endpoint.address,
      }),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /** Removes a key (a no-op write when it is absent: `existed` says which). */
  async delete(key: Bytes, options: CallOptions = {}): Promise<DeleteResult> {
    const op = 'delete';
    return await this.run({
      name: op,
      method: methodDefinition('Delete'),
      write: true,
      request: { key: checkKey(op, key) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => ({ ...writeResult(reply, endpoint), existed: reply.existed }),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /**
   * Sets key to value only if it currently holds `expected`, or, with
   * `expected` null, only if it is absent. `succeeded` says whether it did;
   * `current` is the value after the operation either way.
   */
  async compareAndSwap(key: Bytes, expected: Bytes | null, value: Bytes, options: CallOptions = {}): Promise<CompareAndSwapResult> {
    const op = 'compareAndSwap';
    return await this.run({
      name: op,
      method: methodDefinition('CompareAndSwap'),
      write: true,
      request: {
        key: checkKey(op, key),
        expected: expected === null ? new Uint8Array(0) : checkValue(op, 'expected value', expected),
        expectAbsent: expected === null,
        value: checkValue(op, 'value', value),
      },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => ({
        ...writeResult(reply, endpoint),
        succeeded: reply.succeeded,
        found: reply.found,
        current: reply.found ? bytes(reply.current) : null,
      }),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /** Appends an opaque record to the log. */
  async append(record: Bytes, options: CallOptions = {}): Promise<AppendResult> {
    const op = 'append';
    return await this.run({
      name: op,
      method: methodDefinition('Append'),
      write: true,
      request: { record: checkValue(op, 'record', record) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => writeResult(reply, endpoint),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /**
   * Where a node stands. With an endpoint (host:port), asks that node only
   * (no other endpoint is tried); without one, any node that answers.
   */
  async status(endpoint?: string, options: CallOptions = {}): Promise<NodeStatus> {
    const op = 'status';
    const only = this.onlyEndpoint(op, endpoint);
    return await this.run(
      {
        name: op,
        method: methodDefinition('Status'),
        write: false,
        request: {},
        deadlineMs: this.callDeadline(op, options),
        decode: (reply, at) => {
          this.learnNode(at, reply.node);
          return {
            endpoint: at.address,
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
          };
        },
        leaderOf: (reply) => orNull(reply.leader),
      },
      only,
    );
  }

  /**
   * Committed entries of one node's log from `fromIndex` on (a page of at
   * most `maxEntries`, 1000 at most). The log as that node has committed it:
   * with an endpoint, that node only; without one, any node that answers.
   * To follow the log, ask again from the last index returned plus one.
   *
   * Nodes compact old entries into snapshots. When the node that answers no
   * longer holds `fromIndex`, this throws RaftLogCompactedError (gRPC
   * OUT_OF_RANGE) with `firstIndex`, the first index it still holds; reading
   * from there works. It is not retried on other nodes.
   */
  async readLog(fromIndex: number, options: ReadLogOptions = {}): Promise<LogPage> {
    const op = 'readLog';
    if (!Number.isSafeInteger(fromIndex) || fromIndex < 1) throw invalidOption(op, `fromIndex must be a positive integer, got ${fromIndex}`);
    const maxEntries = options.maxEntries ?? 1000;
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 1000) {
      throw invalidOption(op, `maxEntries must be an integer from 1 to 1000, got ${maxEntries}`);
    }
    const only = this.onlyEndpoint(op, options.endpoint);
    return await this.run(
      {
        name: op,
        method: methodDefinition('ReadLog'),
        write: false,
        request: { fromIndex, maxEntries },
        deadlineMs: this.callDeadline(op, options),
        decode: (reply, at) => {
          this.learnNode(at, reply.node);
          return {
            endpoint: at.address,
            node: reply.node,
            commitIndex: toNumber(reply.commitIndex),
            entries: reply.entries.map((entry) => {
              const kind = LOG_ENTRY_KINDS[entry.kind] ?? 'no-command';
              return {
                index: toNumber(entry.index),
                term: toNumber(entry.term),
                kind,
                record: kind === 'append' ? bytes(entry.record) : null,
                key: kind === 'put' || kind === 'delete' || kind === 'cas' ? bytes(entry.key) : null,
              };
            }),
          };
        },
        leaderOf: () => null,
        serverError: (failure, attempts) => compactedError(fromIndex, failure, attempts),
      },
      only,
    );
  }

  /** The cluster's members as the leader sees them (any node forwards the call to the leader). */
  async memberList(options: CallOptions = {}): Promise<MemberList> {
    const op = 'memberList';
    return await this.run({
      name: op,
      method: clusterMethodDefinition('MemberList'),
      write: false,
      request: {},
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => ({
        members: reply.members.map(clusterMember),
        configIndex: toNumber(reply.configIndex),
        committed: reply.committed,
        leader: orNull(reply.leader),
        commitIndex: toNumber(reply.commitIndex),
        clusterId: reply.clusterId,
        clusterName: reply.clusterName,
        endpoint: endpoint.address,
      }),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /**
   * Adds a member that listens at `address` (host:port). It must join as a
   * learner (`{ learner: true }`); promote it with memberPromote once it has
   * caught up. Resolves once the change is committed.
   */
  async memberAdd(id: string, address: string, options: MemberAddOptions): Promise<MemberChange> {
    const op = 'memberAdd';
    const member = checkMemberId(op, id);
    let normalised: string;
    try {
      const endpoint = parseEndpoint(address);
      if (endpoint.node !== null) throw new Error(`address "${address}" names a node id; give the id separately`);
      normalised = endpoint.address;
    } catch (error) {
      throw invalidOption(op, (error as Error).message);
    }
    if (typeof options.learner !== 'boolean') throw invalidOption(op, 'options.learner must be true or false');
    return await this.memberChange(op, clusterMethodDefinition('MemberAdd'), { id: member, address: normalised, learner: options.learner }, options);
  }

  /** Makes learner `id` a voter. Refused (RaftLogFailedPreconditionError, saying how far behind) until it has caught up with the leader. */
  async memberPromote(id: string, options: CallOptions = {}): Promise<MemberChange> {
    const op = 'memberPromote';
    return await this.memberChange(op, clusterMethodDefinition('MemberPromote'), { id: checkMemberId(op, id) }, options);
  }

  /** Removes member `id`, voter or learner. Refused when it would leave the voters without a quorum, or no voter at all. */
  async memberRemove(id: string, options: CallOptions = {}): Promise<MemberChange> {
    const op = 'memberRemove';
    return await this.memberChange(op, clusterMethodDefinition('MemberRemove'), { id: checkMemberId(op, id) }, options);
  }

  private async memberChange<Req>(
    op: RaftLogOperation,
    method: MethodDefinition<Req, MemberChangeReply>,
    request: Req,
    options: CallOptions,
  ): Promise<MemberChange> {
    return await this.run({
      name: op,
      method,
      write: true,
      request,
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => ({
        members: reply.members.map(clusterMember),
        index: toNumber(reply.index),
        leader: orNull(reply.leader),
        endpoint: endpoint.address,
      }),
      leaderOf: (reply) => orNull(reply.leader),
    });
  }

  /** Every configured endpoint's status, asked in parallel; an endpoint that fails has its error instead. */
  async statusAll(options: CallOptions = {}): Promise<EndpointStatus[]> {
    if (this.closed) throw closedError('status');
    return await Promise.all(
      this.endpoints.map(async (endpoint): Promise<EndpointStatus> => {
        try {
          return { endpoint: endpoint.address, ok: true, status: await this.status(endpoint.address, options) };
        } catch (error) {
          if (!(error instanceof RaftLogError)) throw error;
          return { endpoint: endpoint.address, ok: false, error };
        }
      }),
    );
  }

  /** Cancels calls under way (their promises reject) and closes every connection. The client cannot be used afterwards. */
  close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    for (const call of this.inFlight) call.cancel();
    this.inFlight.clear();
    for (const endpoint of [...this.endpoints, ...this.extraEndpoints.values()]) {
      endpoint.client?.close();
    }
  }

  private get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private callDeadline(operation: RaftLogOperation, options: CallOptions): number {
    const deadlineMs = options.deadlineMs ?? this.deadlineMs;
    if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) {
      throw invalidOption(operation, `deadlineMs must be a positive number of milliseconds, got ${String(deadlineMs)}`);
    }
    return deadlineMs;
  }

  /** Runs a call with failover and backoff; with `only`, on that endpoint alone, once. */
  /** The one endpoint a call names (host:port), or undefined to let any endpoint answer. */
  private onlyEndpoint(op: RaftLogOperation, endpoint: string | undefined): Endpoint | undefined {
    if (endpoint === undefined) return undefined;
    let address: string;
    try {
      address = parseEndpoint(endpoint).address;
    } catch (error) {
      throw invalidOption(op, (error as Error).message);
    }
    return this.endpointAt(address);
  }

  private async run<Req, Res, T>(op: Operation<Req, Res, T>, only?: Endpoint): Promise<T> {
    if (this.closed) throw closedError(op.name);
    const started = Date.now();
    const deadline = started + op.deadlineMs;
    // Do not start another attempt with less time than this left: it would
    // most likely time out, and a write that times out is indeterminate.
    const minAttemptMs = Math.min(250, op.deadlineMs / 5);
    const order = only === undefined ? this.attemptOrder() : [only];
    const failures: AttemptFailure[] = [];
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const spare = deadline - Date.now() - minAttemptMs;
        if (only !== undefined || spare <= 0) throw unavailableError(op, failures, Date.now() - started);
        const pause = Math.min(spare, Math.random() * Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (attempt - 1)));
        try {
          await sleep(pause, undefined, { signal: this.closing.signal });
        } catch {
          throw closedError(op.name, failures);
        }
      }
      const endpoint = order[attempt % order.length] as Endpoint;
      const outcome = await this.attempt(op, endpoint, deadline, minAttemptMs);
      if (outcome.ok) {
        const result = op.decode(outcome.reply, endpoint);
        this.noteSuccess(endpoint, op.leaderOf(outcome.reply), only === undefined);
        return result;
      }
      const failure = outcome.failure;
      failures.push(attemptFailure(failure));
      const error = verdict(op, failure, failures);
      if (error !== null) throw error;
    }
  }

  /** The configured endpoints, starting with the preferred one. */
  private attemptOrder(): Endpoint[] {
    const start = Math.max(0, this.endpoints.indexOf(this.preferred));
    return [...this.endpoints.slice(start), ...this.endpoints.slice(0, start)];
  }

  private async attempt<Req, Res, T>(
    op: Operation<Req, Res, T>,
    endpoint: Endpoint,
    deadline: number,
    minAttemptMs: number,
  ): Promise<AttemptOutcome<Res>> {
    const failed = (code: number, details: string, flags: Partial<CallFailure> = {}) => ({
      ok: false as const,
      failure: { endpoint: endpoint.address, code, details, fromServer: false, notSent: false, closed: false, trailers: null, ...flags },
    });
    const client = this.clientOf(endpoint);
    const connectBy = Math.min(deadline - minAttemptMs, Date.now() + this.connectTimeoutMs);
    const connection = await this.waitForConnection(client, connectBy);
    if (this.closed) return failed(StatusCode.CANCELLED, 'the client was closed', { notSent: true, closed: true });
    if (connection !== 'ready') return failed(StatusCode.UNAVAILABLE, connection, { notSent: true });

    const definition = op.method;
    return new Promise((resolve) => {
      let call: grpc.ClientUnaryCall;
      const onReply = (error: grpc.ServiceError | null, reply?: Res) => {
        this.inFlight.delete(call);
        if (error === null && reply !== undefined) resolve({ ok: true, reply });
        else resolve({ ok: false, failure: this.callFailure(endpoint, error) });
      };
      try {
        call = client.makeUnaryRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          op.request,
          new grpc.Metadata(),
          { deadline },
          onReply,
        );
      } catch (error) {
        // grpc-js refuses to start a call on a closed channel; nothing was sent.
        resolve(failed(StatusCode.UNAVAILABLE, (error as Error).message, { notSent: true, closed: this.closed }));
        return;
      }
      this.inFlight.add(call);
    });
  }

  /** What a failed call tells about where it failed. */
  private callFailure(endpoint: Endpoint, error: grpc.ServiceError | null): CallFailure {
    const code = error?.code ?? StatusCode.INTERNAL;
    const details = error?.details ?? 'the reply was empty';
    const trailers = error?.metadata ?? null;
    const failure = { endpoint: endpoint.address, code, details, fromServer: false, notSent: false, closed: this.closed, trailers };
    // A status the server sent without sending headers first comes in a
    // trailers-only response, which carries a content-type; a status the
    // client made up (deadline, lost connection) has no metadata at all. (A
    // server status after headers cannot be told apart from a lost
    // connection, and is taken as the latter: on the safe side for writes.)
    if ((trailers?.get('content-type').length ?? 0) > 0) return { ...failure, fromServer: true };
    // The connection went down between waitForConnection and the call:
    // grpc-js fails the call while picking a connection for it, before
    // anything is sent, with this wording. (Were the wording to change, such
    // a write would be reported indeterminate: wrong, but on the safe side.)
    if (code === StatusCode.UNAVAILABLE && /\bNo connection established\b/.test(details)) {
      const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(details)?.[1];
      return { ...failure, details: `could not connect${cause ? `: ${cause}` : ''}`, notSent: true };
    }
    return failure;
  }

  /**
   * Waits until the endpoint's channel is connected ('ready'), or says why not.
   * A call is only sent on a ready connection, so a failure here means
   * nothing was sent.
   */
  private async waitForConnection(client: grpc.Client, until: number): Promise<'ready' | string> {
    const channel = client.getChannel();
    for (;;) {
      if (this.closed) return 'the client was closed';
      const state = channel.getConnectivityState(true);
      switch (state) {
        case grpc.connectivityState.READY:
          return 'ready';
        case grpc.connectivityState.TRANSIENT_FAILURE:
          return 'could not connect: connection refused or node down';
        case grpc.connectivityState.SHUTDOWN:
          return 'the connection was shut down';
        default:
          break;
      }
      if (Date.now() >= until) return 'no connection established in time';
      await new Promise<void>((resolve) => channel.watchConnectivityState(state, until, () => resolve()));
    }
  }

  private clientOf(endpoint: Endpoint): grpc.Client {
    if (endpoint.client === null) {
      endpoint.client = new grpc.Client(endpoint.address, grpc.credentials.createInsecure(), {
        // Reconnect to a node that was down soon after it is back, rather
        // than after gRPC's default backoff of up to two minutes.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2000,
        // Requests and replies carry values up to 1 MiB plus a 4 KiB key.
        'grpc.max_receive_message_length': 4 * 1024 * 1024,
      });
    }
    return endpoint.client;
  }

  private endpointAt(address: string): Endpoint {
    const configured = this.endpoints.find((endpoint) => endpoint.address === address);
    if (configured !== undefined) return configured;
    let extra = this.extraEndpoints.get(address);
    if (extra === undefined) {
      extra = newEndpoint(address, null);
      this.extraEndpoints.set(address, extra);
    }
    return extra;
  }

  private endpointOfNode(node: string): Endpoint | undefined {
    return this.endpoints.find((endpoint) => endpoint.node === node);
  }

  private learnNode(endpoint: Endpoint, node: string): void {
    if (node === '') return;
    for (const other of this.endpoints) if (other !== endpoint && other.node === node) other.node = null;
    endpoint.node = node;
  }

  /** After a reply: the next call starts at the leader's endpoint if known, else (for a call that could go anywhere) where this one was answered. */
  private noteSuccess(endpoint: Endpoint, leader: string | null, anyEndpoint: boolean): void {
    if (anyEndpoint) this.preferred = endpoint;
    if (leader === null) return;
    this.leaderNode = leader;
    const leaderEndpoint = this.endpointOfNode(leader);
    if (leaderEndpoint !== undefined) this.preferred = leaderEndpoint;
    else this.discover();
  }

  /** Asks endpoints whose node id is unknown for their Status, in the background. */
  private discover(): void {
    if (!this.discoverLeader || this.closed) return;
    const now = Date.now();
    for (const endpoint of this.endpoints) {
      if (endpoint.node !== null || endpoint.discovering || now < endpoint.nextDiscoveryAt) continue;
      endpoint.discovering = true;
      endpoint.nextDiscoveryAt = now + DISCOVERY_INTERVAL_MS;
      this.status(endpoint.address, { deadlineMs: Math.min(this.deadlineMs, DISCOVERY_INTERVAL_MS) })
        .then((status) => {
          if (status.node === this.leaderNode) this.preferred = endpoint;
        })
        .catch(() => undefined)
        .finally(() => {
          endpoint.discovering = false;
        });
    }
  }
}

function newEndpoint(address: string, node: string | null): Endpoint {
  return { address, node, client: null, discovering: false, nextDiscoveryAt: 0 };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(`RaftLogClient: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

function orNull(text: string): string | null {
  return text === '' ? null : text;
}

/** A 64-bit index or term from the wire (a decimal string). Raft indexes stay far below 2^53. */
function toNumber(value: string | number): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A plain Uint8Array view of bytes from the wire (which arrive as Buffers). */
function bytes(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function writeResult(reply: WriteReply, endpoint: Endpoint): WriteResult {
  return {
    index: toNumber(reply.position?.index ?? 0),
    term: toNumber(reply.position?.term ?? 0),
    leader: orNull(reply.leader),
    endpoint: endpoint.address,
  };
}

function clusterMember(member: WireMember): ClusterMember {
  return { id: member.id, address: member.address, role: member.role, matchIndex: toNumber(member.matchIndex) };
}

function checkMemberId(operation: RaftLogOperation, id: string): string {
  if (typeof id !== 'string' || id.trim() === '') throw invalidOption(operation, 'member id must not be empty');
  return id.trim();
}

function invalidOption(operation: RaftLogOperation, message: string): RaftLogInvalidArgumentError {
  return new RaftLogInvalidArgumentError({
    operation,
    code: StatusCode.INVALID_ARGUMENT,
    endpoint: null,
    message: `${operation}: ${message} (rejected before sending)`,
  });
}

function closedError(operation: RaftLogOperation, attempts: readonly AttemptFailure[] = []): RaftLogError {
  return new RaftLogError({
    operation,
    code: StatusCode.CANCELLED,
    endpoint: null,
    message: `${operation}: the client is closed`,
    attempts,
  });
}

/** What went wrong in one attempt, in words. */
function reasonOf(failure: CallFailure): string {
  const codeName = statusCodeName(failure.code);
  if (failure.notSent) return failure.details;
  if (failure.fromServer) {
    return failure.details === '' ? `the node answered ${codeName}` : `the node answered ${codeName}: ${failure.details}`;
  }
  switch (failure.code) {
    case StatusCode.DEADLINE_EXCEEDED:
      return 'no reply before the deadline';
    case StatusCode.UNAVAILABLE:
    case StatusCode.CANCELLED:
      return `the connection was lost (${failure.details})`;
    default:
      return `the call failed: ${failure.details} (${codeName})`;
  }
}

function attemptFailure(failure: CallFailure): AttemptFailure {
  return {
    endpoint: failure.endpoint,
    code: failure.code,
    codeName: statusCodeName(failure.code),
    reason: reasonOf(failure),
    fromServer: failure.fromServer,
  };
}

/** Codes with which a node says it did not carry out the request; any other failure of a write leaves its outcome open. */
const DEFINITE_SERVER_CODES: ReadonlySet<number> = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.PERMISSION_DENIED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ABORTED,
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNIMPLEMENTED,
  grpc.status.UNAVAILABLE,
  grpc.status.UNAUTHENTICATED,
]);

/** Null to retry on the next endpoint; otherwise the error the call ends with. */
function verdict<Req, Res, T>(
  op: Operation<Req, Res, T>,
  failure: CallFailure,
  attempts: readonly AttemptFailure[],
): RaftLogError | null {
  const { endpoint, code, details } = failure;
  const reason = reasonOf(failure);
  const base = { operation: op.name, code, endpoint, details, attempts };

  if (failure.closed) {
    if (op.write && !failure.notSent) {
      return new RaftLogIndeterminateError({
        ...base,
        message: `${op.name} on ${endpoint}: the client was closed while the write was under way; it may or may not have been committed`,
      });
    }
    return closedError(op.name, attempts);
  }
  // Certainly not carried out, and another node may do better.
  if (failure.notSent || (failure.fromServer && code === StatusCode.UNAVAILABLE)) return null;
  // Certainly not carried out: the leader has more writes waiting to commit than it takes. The next attempt
  // comes after the growing, jittered pause between attempts, and past the deadline the call ends as unavailable.
  if (failure.fromServer && code === StatusCode.RESOURCE_EXHAUSTED) return null;
  const particular = failure.fromServer ? (op.serverError?.(failure, attempts) ?? null) : null;
  if (particular !== null) return particular;
  if (failure.fromServer && code === StatusCode.FAILED_PRECONDITION) {
    return new RaftLogFailedPreconditionError({
      ...base,
      message: `${op.name} refused by ${endpoint}: ${details || 'failed precondition'} (FAILED_PRECONDITION)`,
    });
  }
  // Not certain for a write: the node may have committed it.
  if (op.write && !(failure.fromServer && DEFINITE_SERVER_CODES.has(code))) {
    return new RaftLogIndeterminateError({
      ...base,
      message: `${op.name} on ${endpoint}: ${reason}; the write may or may not have been committed (${statusCodeName(code)})`,
    });
  }
  if (code === StatusCode.INVALID_ARGUMENT) {
    return new RaftLogInvalidArgumentError({
      ...base,
      message: `${op.name} rejected by ${endpoint}: ${details || 'invalid argument'} (INVALID_ARGUMENT)`,
    });
  }
  if (code === StatusCode.DEADLINE_EXCEEDED) {
    return new RaftLogDeadlineExceededError({
      ...base,
      message: `${op.name} on ${endpoint}: no reply within the deadline of ${op.deadlineMs} ms (DEADLINE_EXCEEDED)`,
    });
  }
  // A read whose connection was lost changed nothing: try another node.
  if (!op.write && !failure.fromServer && (code === StatusCode.UNAVAILABLE || code === StatusCode.CANCELLED)) return null;
  return new RaftLogError({ ...base, message: `${op.name} on ${endpoint} failed: ${reason}` });
}

/**
 * A node's OUT_OF_RANGE answer to ReadLog, when it gives the first index it
 * holds. Without that (a node of another version), the general error.
 */
function compactedError(fromIndex: number, failure: CallFailure, attempts: readonly AttemptFailure[]): RaftLogCompactedError | null {
  if (failure.code !== StatusCode.OUT_OF_RANGE) return null;
  const given = failure.trailers?.get(FIRST_INDEX_METADATA_KEY)[0];
  const firstIndex = typeof given === 'string' && /^[1-9][0-9]*$/.test(given) ? Number(given) : NaN;
  if (!Number.isSafeInteger(firstIndex)) return null;
  const { endpoint, code, details } = failure;
  return new RaftLogCompactedError({
    operation: 'readLog',
    code,
    endpoint,
    details,
    attempts,
    fromIndex,
    firstIndex,
    message: `readLog on ${endpoint}: ${details || `cannot read from index ${fromIndex}: the log starts at ${firstIndex}`} (OUT_OF_RANGE)`,
  });
}

function unavailableError<Req, Res, T>(
  op: Operation<Req, Res, T>,
  attempts: readonly AttemptFailure[],
  elapsedMs: number,
): RaftLogUnavailableError {
  const last = attempts[attempts.length - 1];
  // The latest word from each endpoint, in the order they were first tried.
  const latest = new Map<string, string>();
  for (const attempt of attempts) latest.set(attempt.endpoint, attempt.reason);
  const tries = `${attempts.length === 1 ? '1 attempt' : `${attempts.length} attempts`} in ${elapsedMs} ms`;
  let message: string;
  if (latest.size === 1 && last !== undefined) {
    message = `${op.name} on ${last.endpoint}: ${last.reason} (${tries})`;
  } else {
    const summary = [...latest].map(([endpoint, reason]) => `${endpoint}: ${reason}`).join('; ');
    message = `${op.name}: no node could take the request (${tries}; ${summary})`;
  }
  return new RaftLogUnavailableError({
    operation: op.name,
    code: StatusCode.UNAVAILABLE,
    endpoint: last?.endpoint ?? null,
    details: last?.reason ?? '',
    attempts,
    message,
  });
}
