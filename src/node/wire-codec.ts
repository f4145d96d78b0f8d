/**
 * Converts between the consensus core's messages (src/raft/types.ts) and the
 * peer wire format (proto/raftlog/v1/raft.proto), in the plain-object shape
 * that @grpc/proto-loader produces and consumes when loaded with
 * `RAFT_PROTO_LOADER_OPTIONS` (see raft-proto.ts): camelCase field names,
 * uint64 as JS numbers, enums as their names, bytes as Buffer, oneofs named in
 * a `body` field, and defaults filled in.
 *
 * `fromWire` trusts nothing: whatever a peer sends is checked before it can
 * reach the core, and anything malformed is refused with a WireFormatError
 * naming the field and the sender.
 */
import type { Entry, EntryKind, Message, NodeId } from '../raft/types.js';

export type WireEntryKindName = 'ENTRY_KIND_UNSPECIFIED' | 'ENTRY_KIND_COMMAND' | 'ENTRY_KIND_NOOP' | 'ENTRY_KIND_CONFIG';

export interface WireEntry {
  index: number;
  term: number;
  /** The enum's name; a number when the sender used a value this build does not know. */
  kind: WireEntryKindName | number;
  data: Uint8Array;
}

export interface WireVoteRequest {
  preVote: boolean;
  lastLogIndex: number;
  lastLogTerm: number;
  leadershipTransfer: boolean;
}

export interface WireVoteResponse {
  preVote: boolean;
  granted: boolean;
}

export interface WireAppendRequest {
  prevLogIndex: number;
  prevLogTerm: number;
  entries: WireEntry[];
  leaderCommit: number;
  /** The core's AppendRequest.commitOnly: absent (false) unless set. */
  commitOnly?: boolean;
  /** The core's Message.toLearner: absent (false) unless the leader counts the receiver as a learner. */
  toLearner?: boolean;
}

export interface WireAppendResponse {
  success: boolean;
  matchIndex: number;
  rejectedIndex: number;
  hintIndex: number;
  hintTerm: number;
}

export interface WireHeartbeat {
  leaderCommit: number;
  /** 0 for none. */
  readContext: number;
  /** As WireAppendRequest.toLearner. */
  toLearner?: boolean;
}

export interface WireHeartbeatResponse {
  /** 0 for none. */
  readContext: number;
}

export type WireTimeoutNow = Record<string, never>;

export interface WireReadIndexRequest {
  requestIds: string[];
}

export interface WireReadIndexResponse {
  requestIds: string[];
  index: number;
}

interface WireBodies {
  voteRequest: WireVoteRequest;
  voteResponse: WireVoteResponse;
  appendRequest: WireAppendRequest;
  appendResponse: WireAppendResponse;
  heartbeat: WireHeartbeat;
  heartbeatResponse: WireHeartbeatResponse;
  timeoutNow: WireTimeoutNow;
  readIndexRequest: WireReadIndexRequest;
  readIndexResponse: WireReadIndexResponse;
}

export type WireBodyName = keyof WireBodies;

/** `raftlog.v1.RaftMessage`: a term and exactly one body. */
export type WireRaftMessage = { term: number; body?: WireBodyName } & { [K in WireBodyName]?: WireBodies[K] };

/** `raftlog.v1.MessageBatch`. */
export interface WireMessageBatch {
  from: string;
  to: string;
  cluster: string;
  messages: WireRaftMessage[];
  /** The sender's cluster id; '' (or absent, when sending) for a sender without one. */
  clusterId?: string;
  /** The sender's member incarnation; '' (or absent, when sending) for a sender without one. */
  memberIncarnation?: string;
  /** Where the sender takes peer messages; '' (or absent) when it does not say. */
  fromAddress?: string;
}

/** `raftlog.v1.DeliverReply`. */
export type WireDeliverReply = Record<string, never>;

const BODY_NAMES: readonly WireBodyName[] = [
  'voteRequest',
  'voteResponse',
  'appendRequest',
  'appendResponse',
  'heartbeat',
  'heartbeatResponse',
  'timeoutNow',
  'readIndexRequest',
  'readIndexResponse',
];

/**
 * The highest term a peer may send. A term is adopted and persisted as soon as
 * it is seen, and a cluster at the largest number a node can hold exactly
 * (2^53 - 1) could never hold another election: one forged message would leave
 * it without a leader for good. 2^48 terms last 8,900 years at an election a
 * millisecond, and leave room to go on from any term that passes this check.
 */
export const MAX_WIRE_TERM = 2 ** 48;

/** A message that cannot be put on, or taken off, the wire. */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
  constructor(
    message: string,
    /** The node the message came from (or, when encoding, the sender's own id). */
    readonly sender: NodeId,
    /** The offending field, e.g. `appendRequest.entries[2].kind`. */
    readonly field: string,
  ) {
    super(message);
  }
}

const KIND_TO_WIRE: Record<EntryKind, WireEntryKindName> = {
  command: 'ENTRY_KIND_COMMAND',
  noop: 'ENTRY_KIND_NOOP',
  config: 'ENTRY_KIND_CONFIG',
};

const KIND_FROM_WIRE = new Map<unknown, EntryKind>([
  ['ENTRY_KIND_COMMAND', 'command'],
  ['ENTRY_KIND_NOOP', 'noop'],
  ['ENTRY_KIND_CONFIG', 'config'],
  // A decoder loaded with `enums: Number` hands over the numbers.
  [1, 'command'],
  [2, 'noop'],
]);

const TO_LEARNER = { toLearner: true } as const;
const NOT_TO_LEARNER = {} as const;

/**
 * A leader message's toLearner (types.ts) as a field to spread: present only
 * when set, on the wire as in the core, the snapshot offer and what a
 * receiver hands to its core.
 */
export function learnerMark(flag: boolean | undefined): { readonly toLearner?: true } {
  return flag === true ? TO_LEARNER : NOT_TO_LEARNER;
}

/** Encodes one message of the core. The batch carries `from` and `to`, so the message does not. */
export function toWire(message: Message): WireRaftMessage {
  const { term } = message;
  switch (message.type) {
    case 'VoteRequest':
      return {
        term,
        voteRequest: {
          preVote: message.preVote,
          lastLogIndex: message.lastLogIndex,
          lastLogTerm: message.lastLogTerm,
          leadershipTransfer: message.leadershipTransfer,
        },
      };
    case 'VoteResponse':
      return { term, voteResponse: { preVote: message.preVote, granted: message.granted } };
    case 'AppendRequest':
      return {
        term,
        appendRequest: {
          prevLogIndex: message.prevLogIndex,
          prevLogTerm: message.prevLogTerm,
          entries: message.entries.map((entry) => ({
            index: entry.index,
            term: entry.term,
            kind: KIND_TO_WIRE[entry.kind],
            data: entry.data,
          })),
          leaderCommit: message.leaderCommit,
          ...(message.commitOnly === true ? { commitOnly: true } : {}),
          ...learnerMark(message.toLearner),
        },
      };
    case 'AppendResponse':
      return {
        term,
        appendResponse: {
          success: message.success,
          matchIndex: message.matchIndex,
          rejectedIndex: message.rejectedIndex,
          hintIndex: message.hintIndex,
          hintTerm: message.hintTerm,
        },
      };
    case 'Heartbeat':
      return {
        term,
        heartbeat: {
          leaderCommit: message.leaderCommit,
          readContext: readContextToWire(message),
          ...learnerMark(message.toLearner),
        },
      };
    case 'HeartbeatResponse':
      return { term, heartbeatResponse: { readContext: readContextToWire(message) } };
    case 'TimeoutNow':
      return { term, timeoutNow: {} };
    case 'ReadIndexRequest':
      return { term, readIndexRequest: { requestIds: [...message.requestIds] } };
    case 'ReadIndexResponse':
      return { term, readIndexResponse: { requestIds: [...message.requestIds], index: message.index } };
    case 'InstallSnapshot':
      // The node hands it to the snapshot transfer, which streams the snapshot file on calls of its own.
      throw new Error(`toWire: InstallSnapshot to ${message.to} travels as a snapshot transfer, never in a batch`);
    default: {
      const unknown: never = message;
      throw new Error(`toWire: unknown message type ${(unknown as { type: string }).type}`);
    }
  }
}

/** The wire has no null: 0 means "no read context", so the core must never use 0 as a context. */
function readContextToWire(message: { from: NodeId; type: string; readContext: number | null }): number {
  if (message.readContext === null) return 0;
  if (message.readContext === 0) {
    throw new WireFormatError(
      `${message.type} from ${message.from} has readContext 0, which the wire cannot tell apart from "none"`,
      message.from,
      'readContext',
    );
  }
  return message.readContext;
}

/**
 * Decodes one message that arrived in a batch from `from` to `to`. Throws a
 * WireFormatError if it is malformed: no body, an unknown entry kind, an
 * index or term that is not a non-negative safe integer, entries that do not
 * follow prevLogIndex one by one, or a field of the wrong type.
 */
export function fromWire(from: NodeId, to: NodeId, wire: WireRaftMessage): Message {
  const reader = new WireReader(from);
  if (typeof from !== 'string' || from === '') {
    throw new WireFormatError('message has no sender node id', String(from), 'from');
  }
  if (typeof to !== 'string' || to === '') {
    throw new WireFormatError(`message from ${from} has no receiver node id`, from, 'to');
  }
  if (wire === null || typeof wire !== 'object') {
    throw new WireFormatError(`message from ${from} is not an object`, from, 'message');
  }
  const term = reader.term(wire.term, 'term');
  const name = bodyName(reader, wire);
  switch (name) {
    case 'voteRequest': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'VoteRequest',
        preVote: reader.bool(body.preVote, 'voteRequest.preVote'),
        lastLogIndex: reader.uint(body.lastLogIndex, 'voteRequest.lastLogIndex'),
        lastLogTerm: reader.term(body.lastLogTerm, 'voteRequest.lastLogTerm'),
        leadershipTransfer: reader.bool(body.leadershipTransfer, 'voteRequest.leadershipTransfer'),
      };
    }
    case 'voteResponse': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'VoteResponse',
        preVote: reader.bool(body.preVote, 'voteResponse.preVote'),
        granted: reader.bool(body.granted, 'voteResponse.granted'),
      };
    }
    case 'appendRequest': {
      const body = reader.body(wire, name);
      const prevLogIndex = reader.uint(body.prevLogIndex, 'appendRequest.prevLogIndex');
      const prevLogTerm = reader.term(body.prevLogTerm, 'appendRequest.prevLogTerm');
      return {
        from,
        to,
        term,
        type: 'AppendRequest',
        prevLogIndex,
        prevLogTerm,
        entries: reader.entries(body.entries, term, prevLogIndex, prevLogTerm),
        leaderCommit: reader.uint(body.leaderCommit, 'appendRequest.leaderCommit'),
        ...(reader.bool(body.commitOnly, 'appendRequest.commitOnly') ? { commitOnly: true as const } : {}),
        ...learnerMark(reader.bool(body.toLearner, 'appendRequest.toLearner')),
      };
    }
    case 'appendResponse': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'AppendResponse',
        success: reader.bool(body.success, 'appendResponse.success'),
        matchIndex: reader.uint(body.matchIndex, 'appendResponse.matchIndex'),
        rejectedIndex: reader.uint(body.rejectedIndex, 'appendResponse.rejectedIndex'),
        hintIndex: reader.uint(body.hintIndex, 'appendResponse.hintIndex'),
        hintTerm: reader.term(body.hintTerm, 'appendResponse.hintTerm'),
      };
    }
    case 'heartbeat': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'Heartbeat',
        leaderCommit: reader.uint(body.leaderCommit, 'heartbeat.leaderCommit'),
        readContext: reader.readContext(body.readContext, 'heartbeat.readContext'),
        ...learnerMark(reader.bool(body.toLearner, 'heartbeat.toLearner')),
      };
    }
    case 'heartbeatResponse': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'HeartbeatResponse',
        readContext: reader.readContext(body.readContext, 'heartbeatResponse.readContext'),
      };
    }
    case 'timeoutNow':
      reader.body(wire, name);
      return { from, to, term, type: 'TimeoutNow' };
    case 'readIndexRequest': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'ReadIndexRequest',
        requestIds: reader.strings(body.requestIds, 'readIndexRequest.requestIds'),
      };
    }
    case 'readIndexResponse': {
      const body = reader.body(wire, name);
      return {
        from,
        to,
        term,
        type: 'ReadIndexResponse',
        requestIds: reader.strings(body.requestIds, 'readIndexResponse.requestIds'),
        index: reader.uint(body.index, 'readIndexResponse.index'),
      };
    }
    default: {
      const unknown: never = name;
      throw new WireFormatError(`message from ${from} has an unknown body ${String(unknown)}`, from, 'body');
    }
  }
}

/** Which body the message carries: proto-loader names it in `body`; without that, the one body field set. */
function bodyName(reader: WireReader, wire: WireRaftMessage): WireBodyName {
  const named: unknown = wire.body;
  if (named !== undefined && named !== null) {
    if (typeof named !== 'string' || !(BODY_NAMES as readonly string[]).includes(named)) {
      throw reader.error('body', `names an unknown message type ${JSON.stringify(named)}`);
    }
    return named as WireBodyName;
  }
  const present = BODY_NAMES.filter((name) => wire[name] !== undefined && wire[name] !== null);
  if (present.length === 0) {
    throw reader.error('body', 'is missing: the message carries no vote, append, heartbeat or read');
  }
  if (present.length > 1) throw reader.error('body', `is ambiguous: it sets ${present.join(' and ')}`);
  return present[0] as WireBodyName;
}

/** Reads fields of one message, naming the sender and the field in every error. Absent scalars are proto3 defaults. */
class WireReader {
  constructor(private readonly from: NodeId) {}

  error(field: string, problem: string): WireFormatError {
    return new WireFormatError(`malformed message from ${this.from}: ${field} ${problem}`, this.from, field);
  }

  body<K extends WireBodyName>(wire: WireRaftMessage, name: K): Partial<WireBodies[K]> {
    const body: unknown = wire[name];
    if (body === null || typeof body !== 'object') {
      throw this.error(name, `is missing although body says ${name}`);
    }
    return body as Partial<WireBodies[K]>;
  }

  uint(value: unknown, field: string): number {
    if (isUint(value)) return value;
    if (value === undefined) return 0;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      throw this.error(field, `must be an integer, got ${describe(value)}`);
    }
    if (value < 0) throw this.error(field, `must not be negative, got ${value}`);
    if (!Number.isSafeInteger(value)) {
      throw this.error(field, `is ${value}, beyond 2^53 - 1, the largest index or term this node can hold exactly`);
    }
    return value;
  }

  /** A term: an unsigned integer no higher than MAX_WIRE_TERM. */
  term(value: unknown, field: string): number {
    const term = this.uint(value, field);
    if (term > MAX_WIRE_TERM) {
      throw this.error(
        field,
        `is ${term}, above ${MAX_WIRE_TERM} (2^48), the highest term raftlog accepts: a node that adopted it might never be able to hold another election`,
      );
    }
    return term;
  }

  bool(value: unknown, field: string): boolean {
    if (value === undefined) return false;
    if (typeof value !== 'boolean') throw this.error(field, `must be a boolean, got ${describe(value)}`);
    return value;
  }

  readContext(value: unknown, field: string): number | null {
    const context = this.uint(value, field);
    return context === 0 ? null : context;
  }

  strings(value: unknown, field: string): string[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.error(field, `must be a list, got ${describe(value)}`);
    return value.map((item: unknown, i) => {
      if (typeof item !== 'string') throw this.error(`${field}[${i}]`, `must be a string, got ${describe(item)}`);
      return item;
    });
  }

  /**
   * The entries of an append must follow prevLogIndex one by one, their terms
   * must never go down, start at or above prevLogTerm and not exceed the
   * leader's term: any other sequence cannot come from a leader's log.
   */
  entries(value: unknown, messageTerm: number, prevLogIndex: number, prevLogTerm: number): Entry[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.error('appendRequest.entries', `must be a list, got ${describe(value)}`);
    // Field names are built only for an error (see entryField): this loop runs for every entry replicated.
    const entries: Entry[] = new Array<Entry>(value.length);
    let previousTerm = prevLogTerm;
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      if (item === null || typeof item !== 'object') {
        throw this.error(`appendRequest.entries[${i}]`, `must be an entry, got ${describe(item)}`);
      }
      const wire = item as Partial<WireEntry>;
      const index = isUint(wire.index) ? wire.index : this.uint(wire.index, entryField(i, 'index'));
      const expected = prevLogIndex + 1 + i;
      if (index !== expected) {
        throw this.error(
          entryField(i, 'index'),
          `is ${index}, but entries must follow prevLogIndex ${prevLogIndex} without gaps: expected ${expected}`,
        );
      }
      const term = isUint(wire.term) ? wire.term : this.uint(wire.term, entryField(i, 'term'));
      if (term < previousTerm) {
        throw this.error(entryField(i, 'term'), `is ${term}, below the term ${previousTerm} of the entry before it`);
      }
      if (term > messageTerm) {
        throw this.error(entryField(i, 'term'), `is ${term}, above the sender's term ${messageTerm}`);
      }
      previousTerm = term;
      const kind = KIND_FROM_WIRE.get(wire.kind);
      if (kind === undefined) {
        throw this.error(entryField(i, 'kind'), `is ${describe(wire.kind)}, not a kind of entry this node knows`);
      }
      const data = wire.data instanceof Uint8Array ? new Uint8Array(wire.data) : this.bytes(wire.data, entryField(i, 'data'));
      entries[i] = { index, term, kind, data };
    }
    return entries;
  }

  /** A copy in a plain Uint8Array: the entry must not keep the whole received frame alive. */
  bytes(value: unknown, field: string): Uint8Array {
    if (value === undefined) return new Uint8Array(0);
    if (!(value instanceof Uint8Array)) throw this.error(field, `must be bytes, got ${describe(value)}`);
    return new Uint8Array(value);
  }
}

function entryField(i: number, name: string): string {
  return `appendRequest.entries[${i}].${name}`;
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
