/**
 * The load generator's view of a cluster: one gRPC client per node, and the
 * leader as the nodes report it. Mirrors the etcd anchor's Cluster class so
 * both sides pay the same client-side costs (grpc-js, one channel per node,
 * writes sent straight to the leader rather than forwarded by a follower).
 */
import * as grpc from '@grpc/grpc-js';
import {
  type AppendRecordRequest,
  type CallReply,
  type CallRequest,
  type GetReply,
  type GetRequest,
  type PutRequest,
  RaftLogGrpcClient,
  type ReadConsistencyName,
  type StatusReply,
  type SubscribeReply,
  type SubscribeRequest,
  type WriteReply,
} from '../../src/node/client-proto.js';

/**
 * Own subchannel pool per BenchClient, so every row starts on fresh
 * connections as the anchor's one-process-per-row runs do; reconnect quickly
 * after a node restarts instead of backing off for seconds.
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 500,
};

/** How often leader discovery polls while no leader is known (also the failover timing resolution). */
export const LEADER_POLL_MS = 10;

type Unary<Req, Res> = (
  request: Req,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply?: Res) => void,
) => grpc.ClientUnaryCall;

/** The methods the benchmark calls, as the generic client exposes them (lower-case original names). */
export interface RaftLogStub extends grpc.Client {
  put: Unary<PutRequest, WriteReply>;
  get: Unary<GetRequest, GetReply>;
  append: Unary<AppendRecordRequest, WriteReply>;
  status: Unary<Record<string, never>, StatusReply>;
  subscribe: (request: Partial<SubscribeRequest>, options?: grpc.CallOptions) => grpc.ClientReadableStream<SubscribeReply>;
  calls: () => grpc.ClientDuplexStream<CallRequest, CallReply>;
}

/**
 * How the load generator sends writes: one unary call per write (as the etcd
 * anchor must: etcd's API has nothing else), or as messages on one Calls
 * stream per node (`--write-transport calls`, the default, as the client library does).
 */
export type Transport = 'unary' | 'calls';
let writeTransport: Transport = 'calls';
export function useWriteTransport(transport: Transport): void {
  writeTransport = transport;
}

/** How the load generator sends Gets: the same two ways (`--read-transport`; calls by default, as the client library does). */
let readTransport: Transport = 'calls';
export function useReadTransport(transport: Transport): void {
  readTransport = transport;
}

/** Grace after a write's own timeout before the load generator stops waiting for the node's answer. */
const LATE_ANSWER_MS = 250;

/** A Calls stream to one node: calls in flight by id; a broken stream fails them all as a cut-off unary call would. */
class CallStream {
  private readonly stream: grpc.ClientDuplexStream<CallRequest, CallReply>;
  private readonly waiting = new Map<number, { resolve: (reply: CallReply) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  broken = false;

  constructor(stub: RaftLogStub) {
    this.stream = stub.calls();
    this.stream.on('data', (reply: CallReply) => {
      const waiter = this.waiting.get(reply.id);
      if (waiter === undefined) return;
      this.waiting.delete(reply.id);
      const failure = reply.failure;
      if (failure != null) waiter.reject(Object.assign(new Error(failure.message), { code: failure.code, details: failure.message }));
      else waiter.resolve(reply);
    });
    const fail = (error: grpc.ServiceError | null) => {
      this.broken = true;
      const code = error?.code ?? grpc.status.UNAVAILABLE;
      const details = `Calls stream ended: ${error?.details ?? 'closed by the node'}`;
      for (const waiter of this.waiting.values()) waiter.reject(Object.assign(new Error(details), { code, details }));
      this.waiting.clear();
    };
    this.stream.on('error', fail);
    this.stream.on('end', () => fail(null));
  }

  /** Rejects with DEADLINE_EXCEEDED once the request's timeout and a grace have passed unanswered, as a unary call's deadline would. */
  send(request: Omit<CallRequest, 'id'>): Promise<CallReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.waiting.delete(id)) return;
        const details = `no answer on the Calls stream within ${request.timeoutMs} ms`;
        reject(Object.assign(new Error(details), { code: grpc.status.DEADLINE_EXCEEDED, details }));
      }, request.timeoutMs + LATE_ANSWER_MS);
      const settled =
        <T>(settle: (value: T) => void) =>
        (value: T) => {
          clearTimeout(timer);
          settle(value);
        };
      this.waiting.set(id, { resolve: settled(resolve), reject: settled(reject) });
      this.stream.write({ ...request, id });
    });
  }

  close(): void {
    this.stream.cancel();
  }
}

/** A raw client of one node, on its own channel. */
export function stubFor(endpoint: string): RaftLogStub {
  return new RaftLogGrpcClient(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RaftLogStub;
}

export interface Member {
  readonly endpoint: string;
  /** Node id; learned from Status when the caller does not know it. */
  name: string;
  readonly stub: RaftLogStub;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function call<Req, Res>(stub: RaftLogStub, method: Unary<Req, Res>, request: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(stub, request, { deadline: Date.now() + timeoutMs }, (error, reply) => {
      if (error !== null) reject(error);
      else if (reply === undefined) reject(new Error('empty reply'));
      else resolve(reply);
    });
  });
}

export class BenchClient {
  readonly members: Member[];
  /** The member currently believed to lead; null while unknown (workers then wait for discovery). */
  leader: Member | null = null;
  /** One discovery at a time, shared by every worker that lost the leader. */
  private finding: Promise<Member | null> | null = null;

  constructor(
    endpoints: readonly { endpoint: string; name?: string }[],
    private readonly timeoutMs = 5_000,
  ) {
    this.members = endpoints.map(({ endpoint, name }) => ({
      endpoint,
      name: name ?? endpoint,
      stub: stubFor(endpoint),
    }));
  }

  status(member: Member, timeoutMs = 300): Promise<StatusReply> {
    return call(member.stub, member.stub.status, {}, timeoutMs).then((s) => {
      member.name = s.node;
      return s;
    });
  }

  put(member: Member, key: Buffer, value: Buffer): Promise<WriteReply> {
    if (writeTransport === 'calls') return this.viaCalls(member, 'put', { key, value });
    return call(member.stub, member.stub.put, { key, value }, this.timeoutMs);
  }

  append(member: Member, record: Buffer): Promise<WriteReply> {
    if (writeTransport === 'calls') return this.viaCalls(member, 'append', { record });
    return call(member.stub, member.stub.append, { record }, this.timeoutMs);
  }

  private readonly callStreams = new Map<Member, CallStream>();

  private callStream(member: Member): CallStream {
    let stream = this.callStreams.get(member);
    if (stream === undefined || stream.broken) {
      stream = new CallStream(member.stub);
      this.callStreams.set(member, stream);
    }
    return stream;
  }

  private async viaCalls(member: Member, kind: 'put' | 'append', body: PutRequest | AppendRecordRequest): Promise<WriteReply> {
    const reply = await this.callStream(member).send({ timeoutMs: this.timeoutMs, call: kind, [kind]: body });
    const answer = reply[kind];
    if (answer == null || answer.position === null) throw new Error(`Calls reply ${reply.id} carries no ${kind} answer with a position`);
    return { ...answer, position: answer.position, duplicate: answer.duplicate ?? false };
  }

  async get(member: Member, key: Buffer, consistency: ReadConsistencyName): Promise<GetReply> {
    if (readTransport === 'unary') return call(member.stub, member.stub.get, { key, consistency }, this.timeoutMs);
    const reply = await this.callStream(member).send({ timeoutMs: this.timeoutMs, call: 'get', get: { key, consistency } });
    if (reply.get == null) throw new Error(`Calls reply ${reply.id} carries no get answer`);
    return reply.get;
  }

  /** Polls every node every LEADER_POLL_MS until one says it leads (or stop() turns true: then null). */
  findLeader(stop: () => boolean = () => false): Promise<Member | null> {
    if (this.finding === null) {
      this.finding = (async () => {
        for (;;) {
          const replies = await Promise.all(
            this.members.map((m) =>
              this.status(m).then(
                (s) => ({ m, s }),
                () => null,
              ),
            ),
          );
          let best: { m: Member; s: StatusReply } | null = null;
          for (const r of replies) {
            // A deposed leader cut off from the others may still think it leads: trust the highest term.
            if (r !== null && r.s.role === 'leader' && r.s.leader === r.s.node && (best === null || r.s.term > best.s.term)) best = r;
          }
          if (best !== null) return (this.leader = best.m);
          if (stop()) return null;
          await sleep(LEADER_POLL_MS);
        }
      })().finally(() => {
        this.finding = null;
      });
    }
    return this.finding;
  }

  /** findLeader that gives up after ms (null), for callers that must not hang on a broken cluster. */
  async findLeaderWithin(ms: number): Promise<Member | null> {
    let expired = false;
    let timer: NodeJS.Timeout | undefined;
    // The race covers a discovery already started by workers with their own stop condition.
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        expired = true;
        resolve(null);
      }, ms);
    });
    try {
      return await Promise.race([this.findLeader(() => expired), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    for (const stream of this.callStreams.values()) stream.close();
    for (const m of this.members) m.stub.close();
  }
}
