/**
 * A gRPC proxy of the RaftLog service (unary calls) in front of one real
 * node, for tests of how the client copes with a reply that never arrives.
 * A plan decides, call by call, what request to forward and what the client
 * gets once the node has answered: the node's answer, nothing at all (the
 * reply is lost; the call stays open until the client gives up), or another
 * status (as a forwarding node answers UNKNOWN when it lost the leader's
 * reply). The node carries out every call forwarded to it either way.
 */
import * as grpc from '@grpc/grpc-js';
import { RAFTLOG_METHODS, type RaftLogMethodName } from '../../src/api/client-api.js';
import { raftLogService } from '../../src/client/proto.js';

/** A request as the proxy received it (proto-loader's shape: 64-bit integers as strings, bytes as Buffers). */
export type ReceivedRequest = Record<string, unknown>;

export interface ProxyPlan {
  /** Waited for before forwarding (to hold a retry back until an earlier attempt is settled). */
  readonly after?: Promise<unknown>;
  /** Forward this request instead of the one received. */
  readonly request?: ReceivedRequest;
  /** Once the node answered: relay its answer (the default), never answer ('lose'), or answer with this status. */
  readonly answer?: 'relay' | 'lose' | { readonly code: grpc.status; readonly details: string };
}

export interface ProxiedCall {
  readonly method: RaftLogMethodName;
  /** As the client sent it. */
  readonly request: ReceivedRequest;
  /** Settles once the node answered (with its reply, or its error). */
  readonly answered: Promise<{ readonly reply: unknown } | { readonly error: grpc.ServiceError }>;
}

type Unary = (call: grpc.ServerUnaryCall<ReceivedRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

export class InterceptingProxy {
  /** Every call received, in order. */
  readonly calls: ProxiedCall[] = [];

  private constructor(
    private readonly server: grpc.Server,
    private readonly upstream: grpc.Client,
    readonly endpoint: string,
  ) {}

  /** Starts a proxy on a free port of 127.0.0.1 that forwards to the node at `target` (host:port). */
  static async start(target: string, plan: (call: ProxiedCall, sameMethodBefore: number) => ProxyPlan): Promise<InterceptingProxy> {
    const server = new grpc.Server();
    const upstream = new grpc.Client(target, grpc.credentials.createInsecure());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
    );
    const proxy = new InterceptingProxy(server, upstream, `127.0.0.1:${port}`);
    const handlers: Record<string, Unary> = {};
    for (const method of RAFTLOG_METHODS) {
      if (method === 'Subscribe' || method === 'Calls') continue;
      handlers[method] = (call, callback) => proxy.relay(method, call.request, plan, callback);
    }
    server.addService(raftLogService, handlers);
    return proxy;
  }

  /** Calls of one method received so far. */
  callsOf(method: RaftLogMethodName): ProxiedCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** Drops every connection (calls held open end for the client) and stops. */
  close(): void {
    this.server.forceShutdown();
    this.upstream.close();
  }

  private relay(
    method: RaftLogMethodName,
    request: ReceivedRequest,
    plan: (call: ProxiedCall, sameMethodBefore: number) => ProxyPlan,
    callback: grpc.sendUnaryData<unknown>,
  ): void {
    let settle: (outcome: { reply: unknown } | { error: grpc.ServiceError }) => void = () => {};
    const answered = new Promise<{ reply: unknown } | { error: grpc.ServiceError }>((resolve) => {
      settle = resolve;
    });
    const call: ProxiedCall = { method, request, answered };
    const before = this.callsOf(method).length;
    this.calls.push(call);
    const { after, request: forwarded = request, answer = 'relay' } = plan(call, before);
    const definition = raftLogService[method];
    if (definition === undefined) throw new Error(`no method ${method}`);
    void Promise.resolve(after).then(() => {
      this.upstream.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        forwarded,
        new grpc.Metadata(),
        { deadline: Date.now() + 30_000 },
        (error: grpc.ServiceError | null, reply?: unknown) => {
          settle(error === null ? { reply } : { error });
          if (answer === 'lose') return;
          if (answer !== 'relay') callback({ code: answer.code, details: answer.details });
          else if (error !== null) callback({ code: error.code, details: error.details });
          else callback(null, reply);
        },
      );
    });
  }
}
