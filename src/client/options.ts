/**
 * What a RaftLogClient and each of its calls can be told, and the settings
 * the client runs with once the defaults are filled in.
 */
import type { ChannelCredentials } from '@grpc/grpc-js';
import { channelCredentials, type TlsOptions } from './tls.js';

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
  /**
   * Follow the cluster's membership: ask it for its members (MemberList) in
   * the background, every `membershipRefreshMs` and whenever something
   * suggests a change (a reply names a leader at no known endpoint, an
   * endpoint fails), and send calls to the members' endpoints as well as the
   * configured ones. So a long-lived client keeps working after every node
   * it was made with has been replaced. The configured endpoints are always
   * kept (tried after the members when they are no longer members). A
   * member's address the client does not know yet is used only once the
   * node answering there says it is that member (its Status). Default: as
   * `discoverLeader` (so true unless that is turned off). Turn it off when
   * the members' addresses are not the client's way to the nodes (a proxy
   * or a load balancer in between), or to pin a client to the endpoints
   * given. A one-shot client (the CLI) turns it off.
   */
  readonly followMembership?: boolean;
  /**
   * How often a client that follows the membership asks for the members, in
   * milliseconds. Default 30000. Whatever suggests a change, it asks at most
   * once a second.
   */
  readonly membershipRefreshMs?: number;
  /**
   * Exactly-once writes (Kafka's idempotent producer; the Raft dissertation's
   * client sessions, §6.3). Every put, delete, compareAndSwap and append then
   * carries a producer stamp (session id, sequence number), the cluster
   * applies each stamped write at most once, and a retry is answered with the
   * first application's result (`duplicate: true`). So a write whose outcome
   * an attempt left open (sent, then the connection was lost or the attempt
   * timed out) is retried, with the same stamp, until the call's deadline,
   * instead of failing with RaftLogIndeterminateError at once; only a call
   * whose deadline passes without a definite answer still fails so. Each
   * attempt of such a write gets at most a third of the call's deadline (a
   * second at least), so that a leader cut off from the others, which takes
   * the write and never commits it, cannot use the whole deadline.
   *
   * Default false, because it costs something and promises only so much:
   * the client registers a producer session on its first write (one more
   * write through Raft per client, and a session the cluster keeps until
   * 10,000 newer sessions have written), and the guarantee holds within
   * that session only: a new client, or a client whose session the cluster
   * forgot, cannot tell whether a write made under the old session was
   * applied. The cluster also holds at most 1,000 answers a session has not
   * acknowledged, so at most 1,000 writes of one client may be under way at
   * once (more are refused with RaftLogFailedPreconditionError).
   */
  readonly exactlyOnce?: boolean;
  /**
   * Connect with TLS: the CA the nodes' certificates are checked against
   * (default: the system's roots), and for a cluster with mutual TLS (nodes
   * started with --tls-ca) this client's certificate and key. Each a PEM
   * file's path or its contents. Default: plaintext.
   */
  readonly tls?: TlsOptions;
  /**
   * How writes (put, delete, compareAndSwap, append) travel: 'calls' (the
   * default), as messages on one Calls stream per node, several times
   * cheaper in CPU for both sides than a gRPC call each; or 'unary', one
   * gRPC call per write. Failover, retries, exactly-once and the errors are
   * the same either way; a write whose stream breaks before its answer is
   * indeterminate, as a unary call cut off in flight is. A node that does
   * not serve Calls (an older version answers UNIMPLEMENTED) gets the same
   * write as a unary call, and unary calls for a minute after that.
   */
  readonly writeTransport?: 'unary' | 'calls';
  /**
   * How Gets travel, the same two ways: 'calls' (the default), on the
   * node's Calls stream beside the writes, or 'unary'. A read is tried again
   * after a failure either way. A node that serves only writes on Calls (an
   * older version answers a Get there with INVALID_ARGUMENT, "names no
   * write") gets the same Get as a unary call, and unary Gets for a minute
   * after that.
   */
  readonly readTransport?: 'unary' | 'calls';
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

export interface MemberAddOptions extends CallOptions {
  /**
   * Join as a learner: receives the log, neither votes nor counts toward
   * commit, until memberPromote. Nodes refuse false (adding a voter
   * directly) with INVALID_ARGUMENT; it is required so that callers say so.
   */
  readonly learner: boolean;
}

export interface TransferLeadershipOptions extends CallOptions {
  /** Node id of the voter to hand leadership to; by default the leader picks the voter with the longest log. */
  readonly to?: string;
}

export interface ReadLogOptions extends CallOptions {
  /** Ask this node (host:port) only; by default any node that answers. */
  readonly endpoint?: string;
  /** At most this many entries, 1 to 1000 (default 1000). */
  readonly maxEntries?: number;
}

/** RaftLogClientOptions other than the endpoints, checked and with the defaults filled in. */
export interface ClientSettings {
  readonly deadlineMs: number;
  readonly connectTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly discoverLeader: boolean;
  readonly followMembership: boolean;
  readonly membershipRefreshMs: number;
  readonly exactlyOnce: boolean;
  readonly writeTransport: 'unary' | 'calls';
  readonly readTransport: 'unary' | 'calls';
  /** How channels to the nodes are secured (from `tls`). */
  readonly credentials: ChannelCredentials;
}

const DEFAULT_DEADLINE_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const DEFAULT_BACKOFF_INITIAL_MS = 25;
const DEFAULT_BACKOFF_MAX_MS = 1000;
const DEFAULT_MEMBERSHIP_REFRESH_MS = 30_000;

/** The settings the options ask for; throws a TypeError naming the first option that is not a positive number. */
export function clientSettings(options: RaftLogClientOptions): ClientSettings {
  return {
    deadlineMs: positive('deadlineMs', options.deadlineMs ?? DEFAULT_DEADLINE_MS),
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    backoffInitialMs: positive('backoff.initialMs', options.backoff?.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS),
    backoffMaxMs: positive('backoff.maxMs', options.backoff?.maxMs ?? DEFAULT_BACKOFF_MAX_MS),
    discoverLeader: options.discoverLeader ?? true,
    followMembership: options.followMembership ?? options.discoverLeader ?? true,
    membershipRefreshMs: timerDelay('membershipRefreshMs', options.membershipRefreshMs ?? DEFAULT_MEMBERSHIP_REFRESH_MS),
    exactlyOnce: options.exactlyOnce ?? false,
    writeTransport: transportOf('writeTransport', options.writeTransport),
    readTransport: transportOf('readTransport', options.readTransport),
    credentials: channelCredentials(options.tls),
  };
}

function transportOf(name: string, value: unknown): 'unary' | 'calls' {
  if (value === undefined || value === 'unary' || value === 'calls') return value ?? 'calls';
  throw new TypeError(`RaftLogClient: ${name} must be 'unary' or 'calls', got ${String(value)}`);
}

/** A positive delay a Node timer takes as given (at most 2^31 − 1 ms; a longer one would fire at once). */
function timerDelay(name: string, value: number): number {
  const delay = positive(name, value);
  if (delay > 2 ** 31 - 1) throw new TypeError(`RaftLogClient: ${name} must be at most 2147483647 ms, got ${String(value)}`);
  return delay;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(`RaftLogClient: ${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}
