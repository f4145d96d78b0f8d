/**
 * The receiving side of the peer transport: raftlog.v1.RaftPeer's Deliver and
 * Stream. `createPeerService` checks each batch, decodes it and hands the
 * messages to the node at once. Batches arrive on Stream calls (what nodes
 * use) or one per Deliver call (for tools and tests).
 *
 * A refusal ends the stream with its status; the receiver logs it once per
 * sender and reason, and at debug level while it repeats. What a refusal tells
 * the sender names what the sender claimed, never this node's cluster name
 * or id: an outsider must not learn what to forge from being refused.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import type { PeerAdmission, Refusal } from './cluster-identity.js';
import { FailpointError, type Failpoints } from './failpoints.js';
import { malformedReason } from './malformed-requests.js';
import { PEER_SERVER_OPTIONS } from './peer-transport.js';
import { raftPeerServerDefinition } from './raft-proto.js';
import { RefusalLog } from './refusal-log.js';
import { fromWire, type WireDeliverReply, WireFormatError, type WireMessageBatch, type WireRaftMessage } from './wire-codec.js';

export interface PeerServiceOptions {
  /** This node's id: batches addressed to another id are refused. */
  readonly self: NodeId;
  /** The cluster's name: batches from another cluster are refused. */
  readonly cluster: string;
  /**
   * Checks each batch's cluster id, sender membership and incarnation (see
   * cluster-identity.ts); a node always has one. Without it (tools,
   * benchmarks) only the cluster name is checked.
   */
  readonly admission?: PeerAdmission;
  /**
   * Called with every accepted batch, in arrival order. It must not wait for
   * Raft: queue the messages and return. `fromAddress` is where the sender
   * says it takes messages ('' if it does not say).
   */
  readonly onMessages: (from: NodeId, messages: Message[], fromAddress: string) => void;
  readonly logger: Logger;
  /** Aborted when the node shuts down: open streams are ended, so the server's graceful shutdown does not wait for peers. */
  readonly shutdown?: AbortSignal;
  /** Faults for tests (failpoints.ts: peer-receive); null or absent in production. */
  readonly failpoints?: Failpoints | null;
}

/**
 * The implementation of raftlog.v1.RaftPeer, for
 * `server.addService(raftPeerServerDefinition, createPeerService(...))` (raft-proto.ts: it adds the strict framing check).
 */
export function createPeerService(options: PeerServiceOptions): grpc.UntypedServiceImplementation {
  const { self, cluster, onMessages } = options;
  const admission = options.admission ?? null;
  if (admission !== null && (admission.self !== self || admission.cluster !== cluster)) {
    throw new Error(
      `createPeerService: the admission check is for ${admission.self} of "${admission.cluster}", the service for ${self} of "${cluster}"`,
    );
  }
  const log = options.logger.child({ component: 'peer-service' });
  const failpoints = options.failpoints ?? null;
  /** peer-receive: an error loses the batch as a broken link would (the sender hears nothing of it). */
  const lostAtFailpoint = (from: string, count: number): boolean => {
    if (failpoints === null) return false;
    try {
      failpoints.hitNow('peer-receive');
      return false;
    } catch (error) {
      if (!(error instanceof FailpointError)) throw error;
      log.debug({ event: 'failpoint-lost', from, messages: count }, 'a batch from a peer lost at failpoint peer-receive');
      return true;
    }
  };
  const refusals = new RefusalLog(log);
  const openStreams = new Set<() => void>();
  options.shutdown?.addEventListener('abort', () => {
    for (const end of [...openStreams]) end();
  });

  // Defined once, not in accept(): that runs for every batch and makes no closures.
  const refuse = (batch: WireMessageBatch, peer: string, refusal: Refusal): Refusal => {
    // The sender is told only what it claimed; this node's own log also names its cluster.
    const fields = {
      event: 'peer-refused',
      from: batch.from,
      peerAddress: peer,
      code: grpc.status[refusal.code],
      reason: refusal.details,
      cluster,
    };
    // Once per sender and reason: a refused peer retries every second or so.
    refusals.warn(typeof batch.from === 'string' && batch.from !== '' ? batch.from : peer, refusal.details, fields, 'refused a batch from a peer');
    return refusal;
  };
  /** Checks, decodes and hands over one batch; a refusal says what was wrong, and nothing of the batch is delivered. */
  const accept = (batch: WireMessageBatch, peer: string): Refusal | null => {
    const malformed = malformedReason(batch);
    if (malformed !== null)
      return refuse(batch, peer, { code: grpc.status.INVALID_ARGUMENT, details: `node ${self} cannot read a batch from ${peer}: ${malformed}` });
    const refusal = checkBatch(batch, self, cluster, admission);
    if (refusal !== null) return refuse(batch, peer, refusal);
    const messages: Message[] = [];
    for (const [i, wire] of batch.messages.entries()) {
      try {
        messages.push(fromWire(batch.from, self, wire));
      } catch (error) {
        const where = `message ${i + 1} of ${batch.messages.length} in the batch from ${batch.from}`;
        if (error instanceof WireFormatError)
          return refuse(batch, peer, { code: grpc.status.INVALID_ARGUMENT, details: `${where}: ${error.message}` });
        log.error({ from: batch.from, err: error }, 'failed to decode a message');
        return { code: grpc.status.INTERNAL, details: `node ${self} failed to decode ${where}` };
      }
    }
    log.debug({ from: batch.from, messages: messages.length }, 'batch received');
    refusals.clear(batch.from);
    if (messages.length === 0) return null;
    if (lostAtFailpoint(batch.from, messages.length)) return null;
    try {
      onMessages(batch.from, messages, typeof batch.fromAddress === 'string' ? batch.fromAddress : '');
    } catch (error) {
      log.error({ from: batch.from, err: error }, 'the node failed to take a batch of messages');
      return {
        code: grpc.status.INTERNAL,
        details: `node ${self} failed to take the batch: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
    return null;
  };

  const Deliver: grpc.handleUnaryCall<WireMessageBatch, WireDeliverReply> = (call, callback) => {
    const refusal = accept(call.request, call.getPeer());
    if (refusal !== null) callback(refusal);
    else callback(null, {});
  };

  const Stream: grpc.handleClientStreamingCall<WireMessageBatch, WireDeliverReply> = (call, callback) => {
    let ended = false;
    let acknowledged = false;
    const end = (refusal: Refusal | null): void => {
      if (ended) return;
      ended = true;
      openStreams.delete(shutDown);
      if (refusal !== null) callback(refusal);
      else callback(null, {});
    };
    const shutDown = () => end({ code: grpc.status.UNAVAILABLE, details: `node ${self} is shutting down` });
    openStreams.add(shutDown);
    call.on('data', (batch: WireMessageBatch) => {
      if (ended) return;
      const refusal = accept(batch, call.getPeer());
      if (refusal !== null) {
        end(refusal);
      } else if (!acknowledged) {
        acknowledged = true;
        call.sendMetadata(new grpc.Metadata());
      }
    });
    call.on('end', () => end(null));
    call.on('cancelled', () => {
      ended = true;
      openStreams.delete(shutDown);
    });
    call.on('error', () => end(null));
  };
  return { Deliver, Stream } as grpc.UntypedServiceImplementation;
}

/** What only a leader sends: appends, heartbeats, read-index answers, a hand-over. */
const LEADER_BODIES: ReadonlySet<string> = new Set(['appendRequest', 'heartbeat', 'readIndexResponse', 'timeoutNow']);

function isLeaderTraffic(message: WireRaftMessage): boolean {
  const bodies = message.body !== undefined ? [message.body] : Object.keys(message).filter((key) => key !== 'term');
  return bodies.length > 0 && bodies.every((body) => LEADER_BODIES.has(body));
}

function checkBatch(batch: WireMessageBatch, self: NodeId, cluster: string, admission: PeerAdmission | null): Refusal | null {
  if (typeof batch.from !== 'string' || batch.from === '') {
    return invalid(`batch to ${self} does not say which node sent it (field "from" is empty)`);
  }
  if (typeof batch.cluster !== 'string' || batch.cluster === '') {
    return invalid(`batch from ${batch.from} does not name its cluster (field "cluster" is empty)`);
  }
  if (admission !== null) {
    const refused = admission.check(batch, 'batch', isLeaderBatch);
    if (refused !== null) return refused;
  } else if (batch.cluster !== cluster) {
    return mismatch(
      `node ${self} belongs to cluster "${cluster}", but ${batch.from} sent a batch for cluster "${batch.cluster}": ` +
        `is its peer list pointing at the wrong cluster?`,
    );
  }
  if (typeof batch.to !== 'string' || batch.to === '') {
    return invalid(`batch from ${batch.from} does not say which node it is for (field "to" is empty)`);
  }
  if (batch.to !== self) {
    return mismatch(
      `this is node ${self}, but ${batch.from} sent a batch meant for ${batch.to}: ` + `${batch.from}'s address for ${batch.to} points at ${self}`,
    );
  }
  if (batch.from === self) {
    return mismatch(`node ${self} got a batch that claims to come from itself: do two nodes share the id ${self}?`);
  }
  if (!Array.isArray(batch.messages)) return invalid(`batch from ${batch.from} has no list of messages`);
  return null;
}

function isLeaderBatch(batch: WireMessageBatch): boolean {
  return Array.isArray(batch.messages) && batch.messages.length > 0 && batch.messages.every(isLeaderTraffic);
}

// Module functions rather than closures in checkBatch, which runs for every batch.
function invalid(details: string): Refusal {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}

function mismatch(details: string): Refusal {
  return { code: grpc.status.FAILED_PRECONDITION, details };
}

/** Binds `server` to `address` ("host:port"; port 0 picks a free one) and returns the bound port. */
export function bindPeerServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error !== null) reject(new Error(`cannot listen for peers on ${address}: ${error.message}`, { cause: error }));
      else resolve(port);
    });
  });
}

/**
 * raftlog.v1.RaftPeer for a node that listens before it has loaded its log:
 * until `service()` returns the real implementation, every call is answered
 * UNAVAILABLE ("starting"), which a sending peer takes for a peer not reachable
 * yet and retries. Without it such a call would be answered UNIMPLEMENTED,
 * which the sender takes for a refusal and logs as one (a warning on every
 * restart of a peer). Every method of the service takes (call, callback).
 */
export function peerServiceWhileStarting(self: NodeId, service: () => grpc.UntypedServiceImplementation | null): grpc.UntypedServiceImplementation {
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(raftPeerServerDefinition)) {
    const handler = (call: unknown, callback: grpc.sendUnaryData<unknown>): void => {
      const real = service()?.[name] as ((call: unknown, callback: grpc.sendUnaryData<unknown>) => void) | undefined;
      if (real !== undefined) real(call, callback);
      else callback({ code: grpc.status.UNAVAILABLE, details: `node ${self} is starting` });
    };
    implementation[name] = handler as grpc.UntypedHandleCall;
  }
  return implementation;
}

/** Starts a gRPC server with only the peer service on it. */
export async function startPeerServer(
  address: string,
  options: PeerServiceOptions,
): Promise<{ readonly server: grpc.Server; readonly port: number }> {
  const server = new grpc.Server(PEER_SERVER_OPTIONS);
  server.addService(raftPeerServerDefinition, createPeerService(options));
  try {
    return { server, port: await bindPeerServer(server, address) };
  } catch (error) {
    server.forceShutdown();
    throw error;
  }
}

/** Stops a server: lets calls in progress finish for up to `graceMs`, then cuts them. */
export function stopPeerServer(server: grpc.Server, graceMs = 1_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.forceShutdown(), graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
