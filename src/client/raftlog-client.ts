/**
 * A client of the raftlog client API (proto/raftlog/v1/client.proto) and of
 * the membership API (cluster.proto): one method an operation. How a call
 * finds a node and fails over is in failover.ts and endpoint-pool.ts; which
 * failures are retried and which end the call, with what error, is in
 * verdicts.ts.
 *
 * Any node serves any call (followers forward to the leader). Writes are
 * retried only when they certainly did not take effect; a write that may
 * have taken effect fails with RaftLogIndeterminateError. Reads (Get,
 * Status) change nothing, so they also move on to the next endpoint after a
 * lost connection. With `exactlyOnce` (options.ts, exactly-once.ts) every
 * write carries a producer stamp, so the cluster applies it once however
 * often it is sent, and a write whose outcome an attempt left open is
 * retried until the call's deadline.
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
import type { MethodDefinition } from '@grpc/proto-loader';
import type { MemberChangeReply } from '../api/cluster-api.js';
import { type Bytes, checkKey, checkValue } from './bytes.js';
import { callDeadline, checkConsistency, checkEndpointAddress, checkLogRange, checkMemberAddress, checkMemberId } from './call-arguments.js';
import { clusterMethodDefinition } from './cluster-proto.js';
import {
  type CommitPositionOptions,
  type ConsumersOptions,
  commitPositionOperation,
  consumersOperation,
  deleteConsumerOperation,
} from './consumers.js';
import { type Endpoint, EndpointPool } from './endpoint-pool.js';
import { parseEndpoints } from './endpoints.js';
import { RaftLogError, type RaftLogOperation, rejectedBeforeSending } from './errors.js';
import { callWrite } from './exactly-once.js';
import { callWithFailover, type Operation } from './failover.js';
import {
  type CallOptions,
  type ClientSettings,
  clientSettings,
  type GetOptions,
  type MemberAddOptions,
  type RaftLogClientOptions,
  type ReadLogOptions,
  type TransferLeadershipOptions,
} from './options.js';
import { ProducerSession } from './producer-session.js';
import { methodDefinition } from './proto.js';
import {
  compareAndSwapResult,
  deleteResult,
  getResult,
  leadershipTransfer,
  logPage,
  memberChange,
  memberList,
  nodeStatus,
  replyLeader,
  writeResult,
} from './reply-decoders.js';
import type {
  AppendResult,
  CommitPositionResult,
  CompareAndSwapResult,
  ConsumerList,
  DeleteConsumerResult,
  DeleteResult,
  EndpointStatus,
  GetResult,
  LeadershipTransfer,
  LogPage,
  MemberChange,
  MemberList,
  NodeStatus,
  PutResult,
} from './results.js';
import { type LogSubscription, openSubscription, type SubscribeOptions } from './subscription.js';
import { closedError, compactedError } from './verdicts.js';

export class RaftLogClient {
  private readonly settings: ClientSettings;
  private readonly pool: EndpointPool;
  /** Numbers the writes of a client made with exactlyOnce (registered on the first write). */
  private readonly producer = new ProducerSession();

  constructor(options: RaftLogClientOptions) {
    let specs: ReturnType<typeof parseEndpoints>;
    try {
      specs = parseEndpoints(options.endpoints);
    } catch (error) {
      throw new TypeError(`RaftLogClient: ${(error as Error).message}`);
    }
    this.settings = clientSettings(options);
    this.pool = new EndpointPool(
      specs,
      this.settings,
      (address, deadlineMs) => this.status(address, { deadlineMs }),
      (deadlineMs) => this.memberList({ deadlineMs }),
      // Checking a member's address: a node that answers as another member must not be recorded there.
      (address, deadlineMs) => this.statusOf(address, { deadlineMs }, false),
    );
  }

  /** The configured endpoints (host:port), in order. */
  get endpointAddresses(): readonly string[] {
    return this.pool.configured.map((endpoint) => endpoint.address);
  }

  /**
   * The endpoints calls may go to (host:port), in the order they are tried
   * from the first: the configured ones and, with followMembership, the
   * members learned since (see RaftLogClientOptions.followMembership).
   */
  get knownEndpoints(): readonly string[] {
    return this.pool.known.map((endpoint) => endpoint.address);
  }

  /** The leader named by the latest reply, and its endpoint when the client knows it. */
  get knownLeader(): { readonly node: string; readonly endpoint: string | null } | null {
    return this.pool.knownLeader;
  }

  /** Sets key to value. */
  async put(key: Bytes, value: Bytes, options: CallOptions = {}): Promise<PutResult> {
    const op = 'put';
    return await callWrite(this.pool, this.settings, this.producer, {
      name: op,
      method: methodDefinition('Put'),
      streamed: op,
      write: true,
      request: { key: checkKey(op, key), value: checkValue(op, 'value', value) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => writeResult(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /** Reads a key: linearizable unless `consistency: 'local'` is asked for. */
  async get(key: Bytes, options: GetOptions = {}): Promise<GetResult> {
    const op = 'get';
    const consistency = checkConsistency(op, options.consistency);
    return await this.run({
      name: op,
      method: methodDefinition('Get'),
      streamed: op,
      write: false,
      request: {
        key: checkKey(op, key),
        consistency: consistency === 'local' ? 'READ_CONSISTENCY_LOCAL' : 'READ_CONSISTENCY_LINEARIZABLE',
      },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => getResult(reply, consistency, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /** Removes a key (a no-op write when it is absent: `existed` says which). */
  async delete(key: Bytes, options: CallOptions = {}): Promise<DeleteResult> {
    const op = 'delete';
    return await callWrite(this.pool, this.settings, this.producer, {
      name: op,
      method: methodDefinition('Delete'),
      streamed: op,
      write: true,
      request: { key: checkKey(op, key) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => deleteResult(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /**
   * Sets key to value only if it currently holds `expected`, or, with
   * `expected` null, only if it is absent. `succeeded` says whether it did;
   * `current` is the value after the operation either way.
   */
  async compareAndSwap(key: Bytes, expected: Bytes | null, value: Bytes, options: CallOptions = {}): Promise<CompareAndSwapResult> {
    const op = 'compareAndSwap';
    return await callWrite(this.pool, this.settings, this.producer, {
      name: op,
      method: methodDefinition('CompareAndSwap'),
      streamed: op,
      write: true,
      request: {
        key: checkKey(op, key),
        expected: expected === null ? new Uint8Array(0) : checkValue(op, 'expected value', expected),
        expectAbsent: expected === null,
        value: checkValue(op, 'value', value),
      },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => compareAndSwapResult(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /** Appends an opaque record to the log. */
  async append(record: Bytes, options: CallOptions = {}): Promise<AppendResult> {
    const op = 'append';
    return await callWrite(this.pool, this.settings, this.producer, {
      name: op,
      method: methodDefinition('Append'),
      streamed: op,
      write: true,
      request: { record: checkValue(op, 'record', record) },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => writeResult(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /**
   * Where a node stands. With an endpoint (host:port), asks that node only
   * (no other endpoint is tried); without one, any node that answers.
   */
  async status(endpoint?: string, options: CallOptions = {}): Promise<NodeStatus> {
    return await this.statusOf(endpoint, options, true);
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
    const maxEntries = checkLogRange(op, fromIndex, options.maxEntries);
    const only = this.onlyEndpoint(op, options.endpoint);
    return await this.run(
      {
        name: op,
        method: methodDefinition('ReadLog'),
        write: false,
        request: { fromIndex, maxEntries },
        deadlineMs: this.callDeadline(op, options),
        decode: (reply, at) => {
          this.pool.learnNode(at, reply.node);
          return logPage(reply, at.address);
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
      decode: (reply, endpoint) => memberList(reply, endpoint.address),
      leaderOf: replyLeader,
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
    const normalised = checkMemberAddress(op, address);
    if (typeof options.learner !== 'boolean') throw rejectedBeforeSending(op, 'options.learner must be true or false');
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

  /**
   * Hands leadership to voter `options.to`, or, without it, to the voter with
   * the longest log; any node forwards the call to the leader. Resolves once
   * the new leader is known (a target that already leads: at once). Writes
   * sent meanwhile are held by the nodes and answered once it is done.
   * Refused (RaftLogFailedPreconditionError) for a learner, a non-member, or
   * while another transfer is under way; a target that did not take over in
   * time fails with code ABORTED (the old leader still leads, or another
   * node won); not retried once sent.
   */
  async transferLeadership(options: TransferLeadershipOptions = {}): Promise<LeadershipTransfer> {
    const op = 'transferLeadership';
    const to = options.to === undefined ? '' : checkMemberId(op, options.to);
    return await this.run({
      name: op,
      method: clusterMethodDefinition('TransferLeadership'),
      write: true,
      request: { to },
      deadlineMs: this.callDeadline(op, options),
      decode: (reply, endpoint) => leadershipTransfer(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /**
   * Follows the committed log: an async iterable of entries in index order,
   * each exactly once, that moves to another node when its node fails (see
   * subscription.ts). Options are checked at once (RaftLogInvalidArgumentError).
   */
  subscribe(options: SubscribeOptions = {}): LogSubscription {
    return openSubscription(
      { pool: this.pool, settings: this.settings, commitPosition: (consumer, position) => this.commitPosition(consumer, position) },
      options,
    );
  }

  /**
   * Sets a durable consumer's position (the last index it has processed),
   * creating the consumer if needed. A position below the current one is
   * refused (RaftLogFailedPreconditionError) unless `allowBackwards`.
   */
  async commitPosition(consumer: string, position: number, options: CommitPositionOptions = {}): Promise<CommitPositionResult> {
    return await this.run(commitPositionOperation(consumer, position, options, this.settings.deadlineMs));
  }

  /** Forgets a durable consumer (`existed` says whether there was one). */
  async deleteConsumer(consumer: string, options: CallOptions = {}): Promise<DeleteConsumerResult> {
    return await this.run(deleteConsumerOperation(consumer, options, this.settings.deadlineMs));
  }

  /** Every durable consumer with its position and lag; linearizable unless `consistency: 'local'`. */
  async consumers(options: ConsumersOptions = {}): Promise<ConsumerList> {
    return await this.run(consumersOperation(options, this.settings.deadlineMs));
  }

  /** Every known endpoint's status (knownEndpoints), asked in parallel; an endpoint that fails has its error instead. */
  async statusAll(options: CallOptions = {}): Promise<EndpointStatus[]> {
    if (this.pool.closed) throw closedError('status');
    return await Promise.all(
      this.pool.known.map(async (endpoint): Promise<EndpointStatus> => {
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
    this.pool.close();
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
      decode: (reply, endpoint) => memberChange(reply, endpoint.address),
      leaderOf: replyLeader,
    });
  }

  /** Status, from the endpoint given or any; with `learn`, the pool records which node answered where. */
  private async statusOf(endpoint: string | undefined, options: CallOptions, learn: boolean): Promise<NodeStatus> {
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
          if (learn) this.pool.learnNode(at, reply.node);
          return nodeStatus(reply, at.address);
        },
        leaderOf: replyLeader,
      },
      only,
    );
  }

  private callDeadline(operation: RaftLogOperation, options: CallOptions): number {
    return callDeadline(operation, options, this.settings.deadlineMs);
  }

  /** The one endpoint a call names (host:port), or undefined to let any endpoint answer. */
  private onlyEndpoint(op: RaftLogOperation, endpoint: string | undefined): Endpoint | undefined {
    if (endpoint === undefined) return undefined;
    return this.pool.endpointAt(checkEndpointAddress(op, endpoint));
  }

  private run<Req, Res, T>(op: Operation<Req, Res, T>, only?: Endpoint): Promise<T> {
    return callWithFailover(this.pool, this.settings, op, only);
  }
}
