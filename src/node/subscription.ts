/**
 * Subscribe (raftlog.v1.RaftLog): one server stream per subscriber, served
 * by the node asked from its own log. The stream reads a page, writes it,
 * and reads the next page only once gRPC has taken the previous one, so a
 * slow reader holds one page of memory and slows only itself; once caught
 * up it sleeps until entries are applied, and sends a heartbeat about once a
 * second while nothing happens.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { LOG_ENTRY_KIND_NAMES, type WireLogEntryKind } from '../api/client-api.js';
import type { ChangedEntry } from './change-history.js';
import type { LogEntryReply, SubscribeReply, SubscribeRequest } from './client-proto.js';
import { consumerNameProblem } from './consumer-positions.js';
import { ClientError, invalidArgument, unavailable } from './errors.js';
import { entryShell, keyOf } from './log-entry-view.js';
import { malformedReason } from './malformed-requests.js';
import type { RaftNode } from './raft-node.js';
import { encodeSubscribeReply } from './subscribe-encoding.js';
import { trailersOf } from './unary-calls.js';

/** Entries (COMMANDS) or changed entries (CHANGES) read per page. */
const PAGE_ENTRIES = 1000;
/** A page stops growing past this many bytes: several pages may sit in gRPC's buffers per stream. */
const PAGE_BYTES = 512 * 1024;
export const SUBSCRIBE_HEARTBEAT_MS = 1000;
/** How long finding a consumer's committed position (a linearizable read) may take. */
const CONSUMER_READ_MS = 10_000;

/** The kinds a filter may name: every LogEntryKind but UNSPECIFIED. */
const KINDS: ReadonlySet<string> = new Set<WireLogEntryKind>(LOG_ENTRY_KIND_NAMES.filter((kind) => kind !== 'LOG_ENTRY_KIND_UNSPECIFIED'));

type Stream = grpc.ServerWritableStream<SubscribeRequest, SubscribeReply>;

interface Filter {
  readonly kinds: ReadonlySet<string> | null;
  readonly prefix: Uint8Array | null;
}

export function subscribeHandler(getNode: () => RaftNode | null, logger: Logger): (call: Stream) => void {
  return (call) => {
    const node = getNode();
    if (node === null) {
      endWith(call, unavailable('the node is starting'));
      return;
    }
    serve(node, call).catch((error: unknown) => {
      if (!(error instanceof ClientError)) {
        logger.error({ event: 'subscribe-failed', err: error }, 'unexpected error in a subscription');
      }
      endWith(call, error instanceof ClientError ? error : new ClientError(grpc.status.INTERNAL, `node ${node.id}: ${(error as Error).message}`));
    });
  };
}

function endWith(call: Stream, error: ClientError): void {
  if (call.cancelled || call.destroyed) return;
  call.emit('error', { code: error.code, details: error.message, metadata: trailersOf(error.facts) });
}

async function serve(node: RaftNode, call: Stream): Promise<void> {
  const malformed = malformedReason(call.request);
  if (malformed !== null) throw invalidArgument(`malformed request: ${malformed}`);
  const request = call.request;
  const changesView = request.view === 'SUBSCRIBE_VIEW_CHANGES';
  const filter = filterOf(request);
  let next = await startIndex(node, request);

  let wake: (() => void) | null = null;
  const stopListening = node.onApplied(() => wake?.());
  const closed = node.metrics.subscriberOpened(changesView ? 'changes' : 'commands');
  // A write's callback may never come once the caller left: the send under way also ends on cancellation.
  // (One settle function at a time, not a race against a promise that lives as long as the stream:
  // each race would leave a reaction behind on it, and memory would grow with every reply.)
  let unblockSend: (() => void) | null = null;
  const onCancel = () => {
    unblockSend?.();
    wake?.();
  };
  call.on('cancelled', onCancel);
  call.on('close', onCancel);
  try {
    for (;;) {
      if (call.cancelled || call.destroyed) return;
      if (node.isStopped) throw unavailable(`node ${node.id} is shutting down`);
      const page = changesView ? changesPage(node, next, filter) : commandsPage(node, next, filter);
      if (page === null) {
        // Caught up: sleep until something is applied, the heartbeat is due, or the caller leaves.
        const woken = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), SUBSCRIBE_HEARTBEAT_MS);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        wake = null;
        if (!woken) await send(call, reply(node, [], next, next - 1), (settle) => (unblockSend = settle));
        continue;
      }
      await send(call, reply(node, page.entries, next, page.through), (settle) => (unblockSend = settle));
      next = page.through + 1;
    }
  } finally {
    stopListening();
    closed();
    call.off('cancelled', onCancel);
    call.off('close', onCancel);
  }
}

/**
 * Resolves once gRPC has taken the message (one message in flight per
 * stream), or when the settle function handed to `onCancel` is called (the
 * caller left).
 */
function send(call: Stream, message: Buffer, onCancel: (settle: (() => void) | null) => void): Promise<void> {
  if (call.cancelled || call.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const settle = () => {
      onCancel(null);
      resolve();
    };
    onCancel(settle);
    // Already encoded (client-proto.ts lets Subscribe's serializer pass bytes through).
    call.write(message as unknown as SubscribeReply, settle);
  });
}

function reply(node: RaftNode, entries: LogEntryReply[], first: number, last: number): Buffer {
  const brief = node.brief();
  return encodeSubscribeReply({
    entries,
    firstIndex: first,
    lastIndex: last,
    commitIndex: brief.commitIndex,
    node: node.id,
    leader: brief.leader ?? '',
  });
}

async function startIndex(node: RaftNode, request: SubscribeRequest): Promise<number> {
  if (request.consumer !== '') {
    const problem = consumerNameProblem(request.consumer);
    if (problem !== null) throw invalidArgument(problem);
    const consumer = await node.linearizableRead(Date.now() + CONSUMER_READ_MS, () => node.consumer(request.consumer));
    if (consumer !== null) return consumer.position + 1;
  }
  // No consumer, or one with no position yet: where the request says.
  return request.fromTail ? node.brief().commitIndex + 1 : Math.max(1, request.fromIndex);
}

function filterOf(request: SubscribeRequest): Filter {
  const unknown = request.kinds.find((kind) => !KINDS.has(kind));
  if (unknown !== undefined) throw invalidArgument(`cannot filter by entry kind ${unknown}`);
  return {
    kinds: request.kinds.length > 0 ? new Set(request.kinds) : null,
    prefix: request.keyPrefix.byteLength > 0 ? request.keyPrefix : null,
  };
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

interface Page {
  readonly entries: LogEntryReply[];
  /** The last index the page covers. */
  readonly through: number;
}

/** The next page of committed entries, or null when there is none yet. */
function commandsPage(node: RaftNode, from: number, filter: Filter): Page | null {
  const read = node.readCommittedLog(from, PAGE_ENTRIES, PAGE_BYTES);
  if (read.entries.length === 0) return null;
  const through = (read.entries.at(-1) as LogEntryReply).index;
  const entries = read.entries.filter((entry) => {
    if (filter.kinds !== null && !filter.kinds.has(entry.kind)) return false;
    if (filter.prefix === null) return true;
    const key = keyOf(entry);
    return key !== null && startsWith(key, filter.prefix);
  });
  return { entries, through };
}

/** The next page of what applied entries changed, or null when nothing more was applied. */
function changesPage(node: RaftNode, from: number, filter: Filter): Page | null {
  const read = node.readChanges(from, PAGE_ENTRIES);
  if (read.through < from) return null;
  const entries: LogEntryReply[] = [];
  let bytes = 0;
  for (const changed of read.entries) {
    const entry = changedEntry(changed, filter);
    if (entry === null) continue;
    bytes += entry.changes.reduce((sum, c) => sum + 16 + c.key.byteLength + c.before.byteLength + c.after.byteLength, 48);
    entries.push(entry);
    if (bytes > PAGE_BYTES) return { entries, through: changed.index };
  }
  return { entries, through: read.through };
}

const EMPTY = new Uint8Array(0);

/** Unfiltered changed entries as replies, one object per entry for every stream (so its encoding is shared too). */
const unfilteredChanges = new WeakMap<ChangedEntry, LogEntryReply | null>();

function changedEntry(changed: ChangedEntry, filter: Filter): LogEntryReply | null {
  if (filter.prefix !== null) return changedEntryOf(changed, filter);
  let entry = unfilteredChanges.get(changed);
  if (entry === undefined) {
    entry = changedEntryOf(changed, { kinds: null, prefix: null });
    unfilteredChanges.set(changed, entry);
  }
  return entry !== null && filter.kinds !== null && !filter.kinds.has(changed.kind) ? null : entry;
}

function changedEntryOf(changed: ChangedEntry, filter: Filter): LogEntryReply | null {
  const changes = changed.changes
    .filter((change) => filter.prefix === null || startsWith(change.key, filter.prefix))
    .map((change) => ({
      key: change.key,
      foundBefore: change.before !== null,
      before: change.before ?? EMPTY,
      deleted: change.after === null,
      after: change.after ?? EMPTY,
    }));
  if (changes.length === 0) return null;
  if (filter.kinds !== null && !filter.kinds.has(changed.kind)) return null;
  return { ...entryShell(changed.index, changed.term, changed.kind), key: changed.changes[0]?.key ?? EMPTY, changes };
}
