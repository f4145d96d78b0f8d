/**
 * The nodes a client talks to: one gRPC channel per endpoint (made on first
 * use), which endpoint a call starts at (the leader's when the client knows
 * where it listens, else the one that answered last), the background
 * discovery of which node listens where, following the cluster's membership
 * (the endpoints of members that joined after the client was made), and
 * closing it all.
 *
 * Anything that sends to the nodes goes through a pool: unary calls
 * (failover.ts) and any call that reconnects to another node on its own.
 */
import { setMaxListeners } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { CallsStream } from './calls-stream.js';
import { type EndpointSpec, parseEndpoint } from './endpoints.js';

export interface Endpoint {
  readonly address: string;
  /** The node id listening there, given with the endpoint or learned from its Status. */
  node: string | null;
  /** Created on first use. */
  client: grpc.Client | null;
  /** The Calls stream writes and Gets go on (writeTransport, readTransport 'calls'); created on first use, again once it ended. */
  calls: CallsStream | null;
  /** Until when (ms since the epoch) calls to this endpoint go as unary calls: its node answered that it does not serve Calls. */
  unaryUntil: number;
  /** Until when Gets to this endpoint go as unary calls: its node serves writes on Calls, not Gets (an older version). */
  unaryGetsUntil: number;
  discovering: boolean;
  nextDiscoveryAt: number;
}

/** A call under way, to be cancelled when the client closes. */
export interface Cancellable {
  cancel(): void;
}

/** Asks the node at `address` for its Status (which tells the pool, through learnNode, which node it is). */
export type AskStatus = (address: string, deadlineMs: number) => Promise<{ readonly node: string }>;

/** One member of the cluster's configuration, where it listens. */
export interface MemberAddress {
  readonly id: string;
  readonly address: string;
}

/** Asks the cluster (any endpoint the pool knows) for its members. */
export type AskMembers = (deadlineMs: number) => Promise<{ readonly members: readonly MemberAddress[] }>;

export interface DiscoverySettings {
  /** Whether to look for the leader's endpoint in the background at all. */
  readonly discoverLeader: boolean;
  /** Whether to learn the members' endpoints from the cluster (MemberList) in the background. */
  readonly followMembership: boolean;
  /** How often the members are asked for while the client is open (they are asked for sooner when something suggests a change). */
  readonly membershipRefreshMs: number;
  /** The client's deadline for a call; a discovery takes at most this long. */
  readonly deadlineMs: number;
  /** How the channels are secured; default plaintext. */
  readonly credentials?: grpc.ChannelCredentials;
}

/**
 * How long calls to a node that answered Calls with UNIMPLEMENTED (or Gets
 * to one that serves only writes there) go as unary calls before the client
 * tries a stream again (the node may have been upgraded meanwhile).
 */
const UNARY_FALLBACK_MS = 60_000;

/** How often, at most, one endpoint is asked for its node id in the background. */
const DISCOVERY_INTERVAL_MS = 2000;

/** The shortest time between two requests for the members, however often something suggests a change. */
const MEMBERSHIP_REFRESH_GAP_MS = 1000;

/** How long, at least, the channel of an endpoint calls no longer go to stays open for the calls under way there. */
const RETIRED_CHANNEL_GRACE_MS = 60_000;

/** The longest delay a Node timer takes as given (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class EndpointPool {
  /** The endpoints the client was made with: always tried, whatever the membership says. */
  private readonly seeds: Endpoint[];
  /**
   * Where calls go, in order: the seeds that are members, the members the
   * client learned of, then the seeds that are not members (any of them may
   * be again). Just the seeds until the members are known.
   */
  private endpoints: Endpoint[];
  /**
   * Endpoints that are not among `endpoints`: asked for by address
   * (status(endpoint), readLog at an endpoint), or learned members that have
   * left since. Kept so that a call under way on one is not cut off.
   */
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
  private refreshingMembers = false;
  private nextMembershipRefreshAt = 0;
  private readonly membershipTimer: NodeJS.Timeout | null = null;
  /** The timers that close the channels of endpoints calls no longer go to (see retire). */
  private readonly retirements = new Map<Endpoint, NodeJS.Timeout>();

  constructor(
    specs: readonly EndpointSpec[],
    private readonly discovery: DiscoverySettings,
    private readonly askStatus: AskStatus,
    private readonly askMembers: AskMembers,
    /** Asks the node at an address for its Status without recording which node answered (a check, see adoptMembers). */
    private readonly checkStatus: AskStatus,
  ) {
    this.seeds = specs.map((spec) => newEndpoint(spec.address, spec.node));
    this.endpoints = this.seeds;
    this.preferred = this.seeds[0] as Endpoint;
    if (discovery.followMembership) {
      this.membershipTimer = setInterval(() => this.refreshMembers(), discovery.membershipRefreshMs);
      // A client left open must not keep its process alive.
      this.membershipTimer.unref();
    }
  }

  /** The endpoints the client was made with, in order. */
  get configured(): readonly Endpoint[] {
    return this.seeds;
  }

  /** Every endpoint calls may go to: the configured ones and the members learned since (see `endpoints`). */
  get known(): readonly Endpoint[] {
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

  /** The known endpoints, starting with the preferred one. */
  attemptOrder(): Endpoint[] {
    const start = Math.max(0, this.endpoints.indexOf(this.preferred));
    return [...this.endpoints.slice(start), ...this.endpoints.slice(0, start)];
  }

  /** The known endpoint at a host:port, if any. */
  private knownAt(address: string): Endpoint | undefined {
    return this.endpoints.find((endpoint) => endpoint.address === address);
  }

  /** The endpoint at a host:port, known or not. */
  endpointAt(address: string): Endpoint {
    const known = this.knownAt(address);
    if (known !== undefined) return known;
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
    for (const other of [...this.endpoints, ...this.extraEndpoints.values()]) if (other !== endpoint && other.node === node) other.node = null;
    endpoint.node = node;
  }

  /** After a reply: the next call starts at the leader's endpoint if known, else (for a call that could go anywhere) where this one was answered. */
  noteSuccess(endpoint: Endpoint, leader: string | null, anyEndpoint: boolean): void {
    if (anyEndpoint) this.preferred = endpoint;
    if (leader === null) return;
    this.leaderNode = leader;
    const leaderEndpoint = this.endpointOfNode(leader);
    if (leaderEndpoint !== undefined) {
      this.preferred = leaderEndpoint;
      return;
    }
    this.discover();
    // A leader no known endpoint hosts may have joined after the client was made.
    this.refreshMembers();
  }

  /**
   * Asks the cluster for its members in the background (at most one request
   * at a time, and at most one a second), and adopts their endpoints. Called
   * periodically, and when something suggests the membership changed: a
   * leader at an unknown endpoint, an endpoint that failed.
   */
  refreshMembers(): void {
    if (!this.discovery.followMembership || this.closed || this.refreshingMembers) return;
    const now = Date.now();
    if (now < this.nextMembershipRefreshAt) return;
    this.refreshingMembers = true;
    this.nextMembershipRefreshAt = now + MEMBERSHIP_REFRESH_GAP_MS;
    this.askMembers(Math.min(this.discovery.deadlineMs, DISCOVERY_INTERVAL_MS))
      .then((list) => this.adoptMembers(list.members))
      // Nobody answered: the endpoints stay as they are, and the next refresh tries again.
      .catch(() => undefined)
      .finally(() => {
        this.refreshingMembers = false;
      });
  }

  /** The gRPC client of an endpoint, for any method of any service. */
  clientOf(endpoint: Endpoint): grpc.Client {
    if (endpoint.client === null) {
      // An endpoint whose channel was closed on retirement, still held by a call: kept where close() finds it.
      if (!this.endpoints.includes(endpoint) && !this.extraEndpoints.has(endpoint.address)) this.extraEndpoints.set(endpoint.address, endpoint);
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
   * The endpoint's Calls stream for a write or (`get`) a Get, opened if it
   * has none or its last one ended; null while its node is known not to
   * serve that on Calls (it then goes as a unary call).
   */
  callsStreamOf(endpoint: Endpoint, get = false): CallsStream | null {
    if (endpoint.calls?.unsupported === true) {
      endpoint.calls = null;
      endpoint.unaryUntil = Date.now() + UNARY_FALLBACK_MS;
    }
    if (Date.now() < endpoint.unaryUntil || (get && Date.now() < endpoint.unaryGetsUntil)) return null;
    if (endpoint.calls === null || endpoint.calls.ended) {
      endpoint.calls?.cancel();
      endpoint.calls = new CallsStream(this.clientOf(endpoint), endpoint.address, () => this.closed);
    }
    return endpoint.calls;
  }

  /** The endpoint's node answered a Get on its Calls stream as an older version does (it serves only writes there). */
  noteUnaryGets(endpoint: Endpoint): void {
    endpoint.unaryGetsUntil = Date.now() + UNARY_FALLBACK_MS;
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
    if (this.membershipTimer !== null) clearInterval(this.membershipTimer);
    for (const timer of this.retirements.values()) clearTimeout(timer);
    for (const call of this.inFlight) call.cancel();
    this.inFlight.clear();
    for (const endpoint of [...this.endpoints, ...this.extraEndpoints.values()]) {
      endpoint.calls?.cancel();
      endpoint.client?.close();
    }
  }

  private endpointOfNode(node: string): Endpoint | undefined {
    return this.endpoints.find((endpoint) => endpoint.node === node);
  }

  /**
   * Makes the members' endpoints the ones calls go to (see `endpoints`),
   * with their node ids. An address the client does not know yet is taken
   * only once a Status call there is answered by that very member: a node
   * reports the address it listens at, which the client may not reach
   * (0.0.0.0, a name only the cluster's network resolves) or which may
   * reach something else. A configuration of which no address could be
   * taken changes nothing.
   */
  private async adoptMembers(members: readonly MemberAddress[]): Promise<void> {
    const memberEndpoints: Endpoint[] = [];
    for (const member of members) {
      let address: string;
      try {
        address = parseEndpoint(member.address).address;
      } catch {
        continue;
      }
      let endpoint = this.knownAt(address);
      // A known endpoint where another node was seen (or given) is not this member's.
      if (endpoint !== undefined && endpoint.node !== null && endpoint.node !== member.id) continue;
      if (endpoint === undefined) endpoint = await this.verifiedEndpoint(address, member.id);
      if (this.closed) return;
      if (endpoint === undefined || memberEndpoints.includes(endpoint)) continue;
      memberEndpoints.push(endpoint);
      this.learnNode(endpoint, member.id);
    }
    if (memberEndpoints.length === 0) return;
    const isMember = (endpoint: Endpoint) => memberEndpoints.includes(endpoint);
    const next = [
      ...this.seeds.filter(isMember),
      ...memberEndpoints.filter((endpoint) => !this.seeds.includes(endpoint)),
      ...this.seeds.filter((endpoint) => !isMember(endpoint)),
    ];
    for (const endpoint of next) this.unretire(endpoint);
    for (const endpoint of this.endpoints) if (!next.includes(endpoint)) this.retire(endpoint);
    this.endpoints = next;
    const leaderEndpoint = this.leaderNode === null ? undefined : this.endpointOfNode(this.leaderNode);
    if (leaderEndpoint !== undefined) this.preferred = leaderEndpoint;
    else if (!next.includes(this.preferred)) this.preferred = next[0] as Endpoint;
  }

  /** The endpoint at `address` if the node answering there is `member`; undefined if it is not, or nothing answered. */
  private async verifiedEndpoint(address: string, member: string): Promise<Endpoint | undefined> {
    const endpoint = this.endpointAt(address);
    try {
      const status = await this.checkStatus(address, Math.min(this.discovery.deadlineMs, DISCOVERY_INTERVAL_MS));
      if (status.node === member) return endpoint;
    } catch {
      // Unreachable from here, or not a raftlog node: not taken.
    }
    // Its channel is closed in time, unless a later refresh takes the address after all.
    this.retire(endpoint);
    return undefined;
  }

  /**
   * Sets aside an endpoint that calls no longer go to (a learned member that
   * left, an address that failed its check): a call under way there ends on
   * its own, and its channel is closed once any call could have, so that a
   * client that outlives many replaced nodes holds no channel to each.
   */
  private retire(endpoint: Endpoint): void {
    if (this.retirements.has(endpoint)) return;
    this.extraEndpoints.set(endpoint.address, endpoint);
    const timer = setTimeout(
      () => {
        this.retirements.delete(endpoint);
        if (this.endpoints.includes(endpoint) || this.extraEndpoints.get(endpoint.address) !== endpoint) return;
        this.extraEndpoints.delete(endpoint.address);
        endpoint.calls?.cancel();
        endpoint.client?.close();
        // Whoever still holds the endpoint gets a new channel on its next use (see clientOf).
        endpoint.calls = null;
        endpoint.client = null;
      },
      Math.min(MAX_TIMER_MS, Math.max(this.discovery.deadlineMs, RETIRED_CHANNEL_GRACE_MS)),
    );
    timer.unref();
    this.retirements.set(endpoint, timer);
  }

  /** Takes an endpoint back from retirement: calls go there again. */
  private unretire(endpoint: Endpoint): void {
    const timer = this.retirements.get(endpoint);
    if (timer !== undefined) clearTimeout(timer);
    this.retirements.delete(endpoint);
    if (this.extraEndpoints.get(endpoint.address) === endpoint) this.extraEndpoints.delete(endpoint.address);
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
  return { address, node, client: null, calls: null, unaryUntil: 0, unaryGetsUntil: 0, discovering: false, nextDiscoveryAt: 0 };
}
