/**
 * subscribe()'s options: what a caller may ask for, and the checks that
 * turn them into a plan before anything is sent (each failure is a
 * RaftLogInvalidArgumentError saying what is wrong).
 */

import { MAX_KEY_BYTES, type WireLogEntryKind } from '../api/client-api.js';
import { type Bytes, checkValue } from './bytes.js';
import { checkEndpointAddress } from './call-arguments.js';
import { CONSUMER_OPERATIONS, checkConsumerName } from './consumers.js';
import { rejectedBeforeSending } from './errors.js';
import { WIRE_KINDS } from './reply-decoders.js';
import type { SubscribedEntryKind } from './results.js';

const OP = CONSUMER_OPERATIONS.subscribe;

/** 'commands': every entry as written. 'changes': only entries that changed keys, with each key's before and after. */
export type SubscribeView = 'commands' | 'changes';

export interface AutoCommitOptions {
  /** Commit once the caller has taken this many indexes past the last commit. */
  readonly everyEntries?: number;
  /**
   * Commit once this long has passed since the last commit. Either rule
   * commits only once the caller has taken an entry since that is not
   * consumer bookkeeping (a position commit or a consumer deletion: commits
   * are entries too, and an idle log would otherwise get one per commit).
   */
  readonly everyMs?: number;
}

export interface SubscribeOptions {
  /** The first index to deliver; default 1. */
  readonly from?: number;
  /** Only entries committed after the subscription starts (for a consumer: when it has no committed position). Not with `from`. */
  readonly fromTail?: boolean;
  /**
   * A durable consumer: start after its committed position (a consumer
   * with none starts at `from`, or at the tail with `fromTail`). Only the first start reads it; after a
   * failover the subscription goes on from where it was.
   */
  readonly consumer?: string;
  /** Default 'commands'. */
  readonly view?: SubscribeView;
  /** Deliver only entries of these kinds (all when absent or empty). */
  readonly kinds?: readonly SubscribedEntryKind[];
  /** Deliver only entries ('commands') or key changes ('changes') whose key starts with these bytes. */
  readonly keyPrefix?: Bytes;
  /** Aborting it ends the iteration, as close() does. */
  readonly signal?: AbortSignal;
  /** Start on this node (host:port) rather than where the client's calls go. */
  readonly endpoint?: string;
  /**
   * Move to another node when no reply has come for this long while the
   * subscription was reading, or when the node has known no leader for this
   * long. Nodes send a heartbeat about once a second. Default 5000, at least 2000.
   */
  readonly stallTimeoutMs?: number;
  /** With `consumer`: commit the consumer's position as the caller takes entries, and once more on close(). */
  readonly autoCommit?: AutoCommitOptions;
}

const DEFAULT_STALL_TIMEOUT_MS = 5000;
/** Twice the nodes' heartbeat interval: a shorter stall timeout would give up on healthy idle streams. */
const MIN_STALL_TIMEOUT_MS = 2000;

const OPTION_NAMES: ReadonlySet<string> = new Set([
  'from',
  'fromTail',
  'consumer',
  'view',
  'kinds',
  'keyPrefix',
  'signal',
  'endpoint',
  'stallTimeoutMs',
  'autoCommit',
]);

export type Start =
  | { readonly kind: 'index'; readonly from: number }
  | { readonly kind: 'tail' }
  /** A consumer with no committed position starts at `from`, or at the tail with `tail`. */
  | { readonly kind: 'consumer'; readonly consumer: string; readonly from: number; readonly tail: boolean };

/** The options, checked, with the defaults filled in. */
export interface SubscriptionPlan {
  readonly start: Start;
  readonly consumer: string | null;
  readonly view: SubscribeView;
  readonly kinds: WireLogEntryKind[];
  readonly keyPrefix: Uint8Array;
  readonly signal: AbortSignal | null;
  readonly endpoint: string | null;
  readonly stallTimeoutMs: number;
  readonly autoCommit: { readonly everyEntries: number | null; readonly everyMs: number | null } | null;
}

/** Checks subscribe()'s options; throws RaftLogInvalidArgumentError saying what is wrong. */
export function subscriptionPlan(options: SubscribeOptions): SubscriptionPlan {
  if (typeof options !== 'object' || options === null) throw rejectedBeforeSending(OP, 'the options must be an object');
  const unknown = Object.keys(options).filter((name) => !OPTION_NAMES.has(name));
  if (unknown.length > 0) throw rejectedBeforeSending(OP, `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);

  if (options.fromTail !== undefined && typeof options.fromTail !== 'boolean') {
    throw rejectedBeforeSending(OP, `fromTail must be true or false, got ${String(options.fromTail)}`);
  }
  const from = options.from ?? 1;
  if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 1) {
    throw rejectedBeforeSending(OP, `from must be a positive integer, got ${String(from)}`);
  }
  const consumer = options.consumer === undefined ? null : checkConsumerName(OP, options.consumer);
  let start: Start;
  const tail = options.fromTail === true;
  if (tail && options.from !== undefined) throw rejectedBeforeSending(OP, 'give from or fromTail, not both');
  if (consumer !== null) start = { kind: 'consumer', consumer, from, tail };
  else start = tail ? { kind: 'tail' } : { kind: 'index', from };

  const view = options.view ?? 'commands';
  if (view !== 'commands' && view !== 'changes') throw rejectedBeforeSending(OP, `view must be 'commands' or 'changes', got ${String(view)}`);

  const kinds = options.kinds ?? [];
  if (!Array.isArray(kinds)) throw rejectedBeforeSending(OP, 'kinds must be an array of entry kinds');
  const wireKinds = kinds.map((kind: unknown) => {
    const wire = typeof kind === 'string' && Object.hasOwn(WIRE_KINDS, kind) ? WIRE_KINDS[kind as SubscribedEntryKind] : undefined;
    if (wire === undefined) throw rejectedBeforeSending(OP, `unknown entry kind ${String(kind)} (known: ${Object.keys(WIRE_KINDS).join(', ')})`);
    return wire;
  });

  const keyPrefix = options.keyPrefix === undefined ? new Uint8Array(0) : checkValue(OP, 'key prefix', options.keyPrefix);
  if (keyPrefix.byteLength > MAX_KEY_BYTES) {
    throw rejectedBeforeSending(OP, `the key prefix is ${keyPrefix.byteLength} bytes, longer than any key (${MAX_KEY_BYTES} bytes at most)`);
  }

  const signal = options.signal ?? null;
  if (signal !== null && !(signal instanceof AbortSignal)) throw rejectedBeforeSending(OP, 'signal must be an AbortSignal');

  const endpoint = options.endpoint === undefined ? null : checkEndpointAddress(OP, options.endpoint);

  const stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  if (typeof stallTimeoutMs !== 'number' || !Number.isFinite(stallTimeoutMs) || stallTimeoutMs < MIN_STALL_TIMEOUT_MS) {
    throw rejectedBeforeSending(
      OP,
      `stallTimeoutMs must be at least ${MIN_STALL_TIMEOUT_MS} ms (nodes send a heartbeat about once a second), got ${String(stallTimeoutMs)}`,
    );
  }

  return {
    start,
    consumer,
    view,
    kinds: wireKinds,
    keyPrefix,
    signal,
    endpoint,
    stallTimeoutMs,
    autoCommit: autoCommitPlan(options.autoCommit, consumer),
  };
}

function autoCommitPlan(autoCommit: AutoCommitOptions | undefined, consumer: string | null): SubscriptionPlan['autoCommit'] {
  if (autoCommit === undefined) return null;
  if (consumer === null) throw rejectedBeforeSending(OP, 'autoCommit needs a consumer to commit the position of');
  if (typeof autoCommit !== 'object' || autoCommit === null) throw rejectedBeforeSending(OP, 'autoCommit must be { everyEntries?, everyMs? }');
  const { everyEntries, everyMs } = autoCommit;
  if (everyEntries === undefined && everyMs === undefined) throw rejectedBeforeSending(OP, 'autoCommit needs everyEntries, everyMs or both');
  if (everyEntries !== undefined && (!Number.isSafeInteger(everyEntries) || everyEntries < 1)) {
    throw rejectedBeforeSending(OP, `autoCommit.everyEntries must be a positive integer, got ${String(everyEntries)}`);
  }
  if (everyMs !== undefined && (typeof everyMs !== 'number' || !Number.isFinite(everyMs) || everyMs <= 0)) {
    throw rejectedBeforeSending(OP, `autoCommit.everyMs must be a positive number of milliseconds, got ${String(everyMs)}`);
  }
  return { everyEntries: everyEntries ?? null, everyMs: everyMs ?? null };
}
