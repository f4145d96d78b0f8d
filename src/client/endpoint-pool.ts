/**
 * The nodes a client talks to: one gRPC channel per endpoint (made on first
 * use), which endpoint a call starts at (the leader's when the client knows
 * where it listens, else the one that answered last), the background
 * discovery of which node listens where, and closing it all.
 *
 * Anything that sends to the nodes goes through a pool: unary calls
 * (failover.ts) and any call that reconnects to another node on its own.
 */
import { setMaxListeners } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { EndpointSpec } from './endpoints.js';
import { WriteStream } from './write-stream.js';

export interface Endpoint {
  readonly address: string;
  /** The node id listening there, given with the endpoint or learned from its Status. */
  node: string | null;
  /** Created on first use. */
  client: grpc.Client | null;
  /** The Calls stream writes go on (writeTransport 'calls'); created on first use, again once it ended. */
  writes: WriteStream | null;
  /** Until when (ms since the epoch) writes to this endpoint go as unary calls: its node answered that it does not serve Calls. */
  unaryUntil: number;
  discovering: boolean;
  nextDiscoveryAt: number;
}

/** A call under way, to be cancelled when the client closes. */
export interface Cancellable {
  cancel(): void;
}

/** Asks the node at `address` for its Status (which tells the pool, through learnNode, which node it is). */
export type AskStatus = (address: string, deadlineMs: number) => Promise<{ readonly node: string }>;

export interface DiscoverySettings {
  /** Whether to look for the leader's endpoint in the background at all. */
  readonly discoverLeader: boolean;
  /** The client's deadline for a call; a discovery takes at most this long. */
  readonly deadlineMs: number;
  /** How the channels are secured; default plaintext. */
  readonly credentials?: grpc.ChannelCredentials;
}

/**
 * How long writes to a node that answered Calls with UNIMPLEMENTED go as
 * unary calls before the client tries a stream again (the node may have
 * been upgraded meanwhile).
 */
const UNARY_FALLBACK_MS = 60_000;

/** How often, at most, one endpoint is asked for its node id in the background. */
const DISCOVERY_INTERVAL_MS = 2000;

export class EndpointPool {
  private readonly endpoints: Endpoint[];
  /** Endpoints asked for by address (status(endpoint), readLog at an endpoint) that are not among the configured ones. */
  private readonly extraEndpoints = new Map<string, Endpoint>();
  private readonly inFlight = new Set<Cancellable>();
  private readonly closing = (() => {
    const controller = new AbortController();
    // Every call backing off (and every subscription) listens to it at once: many listeners are expected.
    setMaxListeners(0, controller.signal);
    return controller;
  })();
  /** Where the next call starts. */
  private preferred: Endpoint;
  private leaderNode: string | null = null;

  constructor(
    specs: readonly EndpointSpec[],
    private readonly discovery: DiscoverySettings,
    private readonly askStatus: AskStatus,
  ) {
    this.endpoints = specs.map((spec) => newEndpoint(spec.address, spec.node));
    this.preferred = this.endpoints[0] as Endpoint;
  }

  /** The configured endpoints, in order. */
  get configured(): readonly Endpoint[] {
    return this.endpoints;
  }

  /** The leader named by the latest reply, and its endpoint when the pool knows it. */
  get knownLeader(): { readonly node: string; readonly endpoint: string | null } | null {
    if (this.leaderNode === null) return null;
    return { node: this.leaderNode, endpoint: this.endpointOfNode(this.leaderNode)?.address ?? null };
  }

  /** Aborted once the client is closed. */
  get signal(): AbortSignal {
    return this.closing.signal;
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** The configured endpoints, starting with the preferred one. */
  attemptOrder(): Endpoint[] {
    const start = Math.max(0, this.endpoints.indexOf(this.preferred));
    return [...this.endpoints.slice(start), ...this.endpoints.slice(0, start)];
  }

  /** The endpoint at a host:port, configured or not. */
  endpointAt(address: string): Endpoint {
    const configured = this.endpoints.find((endpoint) => endpoint.address === address);
    if (configured !== undefined) return configured;
    let extra = this.extraEndpoints.get(address);
    if (extra === undefined) {
      extra = newEndpoint(address, null);
      this.extraEndpoints.set(address, extra);
    }
    return extra;
  }

  /** Records which node answered at an endpoint (a node id seen elsewhere before has moved). */
  learnNode(endpoint: Endpoint, node: string): void {
    if (node === '') return;
    for (const other of this.endpoints) if (other !== endpoint && other.node === node) other.node = null;
    endpoint.node = node;
  }

  /** After a reply: the next call starts at the leader's endpoint if known, else (for a call that could go anywhere) where this one was answered. */
  noteSuccess(endpoint: Endpoint, leader: string | null, anyEndpoint: boolean): void {
    if (anyEndpoint) this.preferred = endpoint;
    if (leader === null) return;
    this.leaderNode = leader;
    const leaderEndpoint = this.endpointOfNode(leader);
    if (leaderEndpoint !== undefined) this.preferred = leaderEndpoint;
    else this.discover();
  }

  /** The gRPC client of an endpoint, for any method of any service. */
  clientOf(endpoint: Endpoint): grpc.Client {
    if (endpoint.client === null) {
      endpoint.client = new grpc.Client(endpoint.address, this.discovery.credentials ?? grpc.credentials.createInsecure(), {
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

  /**
   * Waits until the endpoint's channel is connected ('ready'), or says why not.
   * A call is only sent on a ready connection, so a failure here means
   * nothing was sent.
   */
  async waitForConnection(client: grpc.Client, until: number): Promise<'ready' | string> {
    const channel = client.getChannel();
    for (;;) {
      if (this.closed) return 'the client was closed';
      const state = channel.getConnectivityState(true);
      switch (state) {
        case grpc.connectivityState.READY:
          return 'ready';
        case grpc.connectivityState.TRANSIENT_FAILURE:
          // A TLS handshake the node refuses (or plaintext against TLS) looks the same to the channel.
          return 'could not connect: connection refused, node down, or TLS refused';
        case grpc.connectivityState.SHUTDOWN:
          return 'the connection was shut down';
        default:
          break;
      }
      if (Date.now() >= until) return 'no connection established in time';
      await new Promise<void>((resolve) => channel.watchConnectivityState(state, until, () => resolve()));
    }
  }

  /**
   * The endpoint's Calls stream for writes, opened if it has none or its
   * last one ended; null while its node is known not to serve Calls (writes
   * then go as unary calls).
   */
  writeStreamOf(endpoint: Endpoint): WriteStream | null {
    if (endpoint.writes?.unsupported === true) {
      endpoint.writes = null;
      endpoint.unaryUntil = Date.now() + UNARY_FALLBACK_MS;
    }
    if (Date.now() < endpoint.unaryUntil) return null;
    if (endpoint.writes === null || endpoint.writes.ended) {
      endpoint.writes?.cancel();
      endpoint.writes = new WriteStream(this.clientOf(endpoint), endpoint.address, () => this.closed);
    }
    return endpoint.writes;
  }

  /** Keeps a call to cancel on close() until untrack(). */
  track(call: Cancellable): void {
    this.inFlight.add(call);
  }

  untrack(call: Cancellable): void {
    this.inFlight.delete(call);
  }

  /** Cancels the calls under way and closes every channel; the pool cannot be used afterwards. */
  close(): void {
    if (this.closing.signal.aborted) return;
    this.closing.abort();
    for (const call of this.inFlight) call.cancel();
    this.inFlight.clear();
    for (const endpoint of [...this.endpoints, ...this.extraEndpoints.values()]) {
      endpoint.writes?.cancel();
      endpoint.client?.close();
    }
  }

  private endpointOfNode(node: string): Endpoint | undefined {
    return this.endpoints.find((endpoint) => endpoint.node === node);
  }

  /** Asks endpoints whose node id is unknown for their Status, in the background. */
  private discover(): void {
    if (!this.discovery.discoverLeader || this.closed) return;
    const now = Date.now();
    for (const endpoint of this.endpoints) {
      if (endpoint.node !== null || endpoint.discovering || now < endpoint.nextDiscoveryAt) continue;
      endpoint.discovering = true;
      endpoint.nextDiscoveryAt = now + DISCOVERY_INTERVAL_MS;
      this.askStatus(endpoint.address, Math.min(this.discovery.deadlineMs, DISCOVERY_INTERVAL_MS))
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
  return { address, node, client: null, writes: null, unaryUntil: 0, discovering: false, nextDiscoveryAt: 0 };
}
