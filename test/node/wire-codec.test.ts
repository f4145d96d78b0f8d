import { describe, expect, it } from 'vitest';
import { deliverMethod } from '../../src/node/raft-proto.js';
import { fromWire, toWire, WireFormatError, type WireMessageBatch, type WireRaftMessage } from '../../src/node/wire-codec.js';
import type { Message } from '../../src/raft/types.js';

const header = { from: 'n1', to: 'n2', term: 7 } as const;
const bytes = (...values: number[]) => new Uint8Array(values);

const everyType: Message[] = [
  { ...header, type: 'VoteRequest', preVote: true, lastLogIndex: 12, lastLogTerm: 6, leadershipTransfer: false },
  { ...header, type: 'VoteRequest', preVote: false, lastLogIndex: 0, lastLogTerm: 0, leadershipTransfer: true },
  { ...header, type: 'VoteResponse', preVote: true, granted: false },
  { ...header, type: 'VoteResponse', preVote: false, granted: true },
  {
    ...header,
    type: 'AppendRequest',
    prevLogIndex: 10,
    prevLogTerm: 5,
    entries: [
      { index: 11, term: 5, kind: 'command', data: bytes(1, 2, 3) },
      { index: 12, term: 7, kind: 'noop', data: bytes() },
      { index: 13, term: 7, kind: 'command', data: new Uint8Array(100).fill(0xab) },
    ],
    leaderCommit: 9,
  },
  { ...header, type: 'AppendRequest', prevLogIndex: 13, prevLogTerm: 7, entries: [], leaderCommit: 13 },
  { ...header, type: 'AppendRequest', prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, toLearner: true },
  { ...header, type: 'AppendRequest', prevLogIndex: 13, prevLogTerm: 7, entries: [], leaderCommit: 13, commitOnly: true },
  { ...header, type: 'AppendResponse', success: true, matchIndex: 13, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 },
  { ...header, type: 'AppendResponse', success: false, matchIndex: 0, rejectedIndex: 20, hintIndex: 15, hintTerm: 4 },
  { ...header, type: 'Heartbeat', leaderCommit: 13, readContext: null },
  { ...header, type: 'Heartbeat', leaderCommit: 13, readContext: 42 },
  { ...header, type: 'Heartbeat', leaderCommit: 0, readContext: 42, toLearner: true },
  { ...header, type: 'HeartbeatResponse', readContext: null },
  { ...header, type: 'HeartbeatResponse', readContext: 1 },
  { ...header, type: 'TimeoutNow' },
  { ...header, type: 'ReadIndexRequest', requestIds: ['life-1:r1', 'life-1:r2'] },
  { ...header, type: 'ReadIndexResponse', requestIds: ['life-1:r1'], index: 13 },
  { ...header, term: 2 ** 48, type: 'ReadIndexResponse', requestIds: [], index: 2 ** 53 - 1 },
];

/** Through the real proto-loader serializer and back: what a peer receives. */
function overTheWire(messages: WireRaftMessage[]): WireRaftMessage[] {
  const batch: WireMessageBatch = { from: 'n1', to: 'n2', cluster: 'test', messages };
  return deliverMethod.requestDeserialize(deliverMethod.requestSerialize(batch)).messages;
}

function decodeError(wire: WireRaftMessage): WireFormatError {
  try {
    fromWire('n1', 'n2', wire);
  } catch (error) {
    expect(error).toBeInstanceOf(WireFormatError);
    return error as WireFormatError;
  }
  throw new Error('fromWire accepted a malformed message');
}

describe('wire codec', () => {
  it('every message type survives a round trip through the protobuf encoding', () => {
    const received = overTheWire(everyType.map(toWire));
    expect(received.map((wire) => fromWire('n1', 'n2', wire))).toEqual(everyType);
  });

  it.each(everyType.map((message) => [message.type, message] as const))('%s round-trips on its own', (_type, message) => {
    const [wire] = overTheWire([toWire(message)]);
    expect(fromWire('n1', 'n2', wire as WireRaftMessage)).toEqual(message);
  });

  it('a missing read context is 0 on the wire, and 0 comes back as null', () => {
    const heartbeat = toWire({ ...header, type: 'Heartbeat', leaderCommit: 1, readContext: null });
    expect(heartbeat.heartbeat?.readContext).toBe(0);
    const response = toWire({ ...header, type: 'HeartbeatResponse', readContext: null });
    expect(response.heartbeatResponse?.readContext).toBe(0);
    expect(fromWire('n1', 'n2', { term: 1, heartbeatResponse: { readContext: 0 } })).toMatchObject({
      readContext: null,
    });
  });

  it('refuses to encode read context 0, which the wire could not tell from none', () => {
    expect(() => toWire({ ...header, type: 'Heartbeat', leaderCommit: 1, readContext: 0 })).toThrow(WireFormatError);
  });

  it('entry kinds map to the EntryKind enum', () => {
    const wire = toWire(everyType[4] as Message);
    expect(wire.appendRequest?.entries.map((entry) => entry.kind)).toEqual(['ENTRY_KIND_COMMAND', 'ENTRY_KIND_NOOP', 'ENTRY_KIND_COMMAND']);
  });

  it('entry data comes out as a plain Uint8Array of its own, not a view of the received buffer', () => {
    const [wire] = overTheWire([toWire(everyType[4] as Message)]);
    expect(Buffer.isBuffer(wire?.appendRequest?.entries[0]?.data)).toBe(true);
    const message = fromWire('n1', 'n2', wire as WireRaftMessage);
    if (message.type !== 'AppendRequest') throw new Error('expected an append');
    for (const entry of message.entries) {
      expect(Object.getPrototypeOf(entry.data)).toBe(Uint8Array.prototype);
      expect(entry.data.byteOffset).toBe(0);
      expect(entry.data.buffer.byteLength).toBe(entry.data.byteLength);
    }
  });

  it('accepts a message whose body is set without the oneof name (decoded without oneofs: true)', () => {
    expect(fromWire('n1', 'n2', { term: 3, timeoutNow: {} })).toEqual({ from: 'n1', to: 'n2', term: 3, type: 'TimeoutNow' });
  });

  describe('malformed input is refused, naming the field and the sender', () => {
    const append = (entries: unknown[], prevLogIndex = 4, prevLogTerm = 2): WireRaftMessage =>
      ({ term: 3, body: 'appendRequest', appendRequest: { prevLogIndex, prevLogTerm, entries, leaderCommit: 0 } }) as WireRaftMessage;
    const entry = (index: number, term = 3, kind: unknown = 'ENTRY_KIND_COMMAND') => ({
      index,
      term,
      kind,
      data: Buffer.from('x'),
    });

    it('a message without a body', () => {
      const [wire] = overTheWire([{ term: 3 }]);
      const error = decodeError(wire as WireRaftMessage);
      expect(error.field).toBe('body');
      expect(error.sender).toBe('n1');
      expect(error.message).toMatch(/from n1: body is missing/);
    });

    it('a body that names a field which is absent, or names nothing known', () => {
      expect(decodeError({ term: 3, body: 'heartbeat' }).field).toBe('heartbeat');
      expect(decodeError({ term: 3, body: 'snapshot' as never }).message).toMatch(/unknown message type "snapshot"/);
    });

    it('an entry of unknown kind', () => {
      // As a newer peer would send it: a number this build has no name for.
      const [wire] = overTheWire([append([entry(5, 3, 9)], 4)]);
      const unknown = decodeError(wire as WireRaftMessage);
      expect(unknown.field).toBe('appendRequest.entries[0].kind');
      expect(unknown.message).toMatch(/kind is number 9, not a kind of entry/);
      const unspecified = decodeError(append([entry(5), entry(6, 3, 'ENTRY_KIND_UNSPECIFIED')]));
      expect(unspecified.field).toBe('appendRequest.entries[1].kind');
      expect(unspecified.message).toMatch(/ENTRY_KIND_UNSPECIFIED/);
    });

    it('a term or index that is not an integer', () => {
      expect(decodeError({ term: 1.5, timeoutNow: {} }).field).toBe('term');
      const index = decodeError({ term: 1, voteRequest: { preVote: false, lastLogIndex: '7' as never, lastLogTerm: 0, leadershipTransfer: false } });
      expect(index.field).toBe('voteRequest.lastLogIndex');
      expect(index.message).toMatch(/must be an integer, got "7"/);
      expect(decodeError({ term: Number.NaN, timeoutNow: {} }).field).toBe('term');
    });

    it('a negative term or index', () => {
      const term = decodeError({ term: -1, timeoutNow: {} });
      expect(term.message).toMatch(/from n1: term must not be negative, got -1/);
      expect(decodeError(append([], -1)).field).toBe('appendRequest.prevLogIndex');
      expect(decodeError({ term: 1, heartbeat: { leaderCommit: -3, readContext: 0 } }).field).toBe('heartbeat.leaderCommit');
      expect(decodeError(append([entry(5, -2)])).field).toBe('appendRequest.entries[0].term');
    });

    it('an index beyond what a JS number holds exactly', () => {
      const [wire] = overTheWire([{ term: 2 ** 60, timeoutNow: {} }]);
      expect(decodeError(wire as WireRaftMessage).message).toMatch(/beyond 2\^53 - 1/);
    });

    it('entries that do not follow prevLogIndex one by one', () => {
      const late = decodeError(append([entry(6)], 4));
      expect(late.field).toBe('appendRequest.entries[0].index');
      expect(late.message).toMatch(/is 6, but entries must follow prevLogIndex 4 without gaps: expected 5/);
      expect(decodeError(append([entry(5), entry(7)])).field).toBe('appendRequest.entries[1].index');
      expect(decodeError(append([entry(5), entry(5)])).field).toBe('appendRequest.entries[1].index');
    });

    it('entries whose terms go down or pass the sender term', () => {
      expect(decodeError(append([entry(5, 1)], 4, 2)).message).toMatch(/below the term 2/);
      expect(decodeError(append([entry(5, 3), entry(6, 2)])).field).toBe('appendRequest.entries[1].term');
      expect(decodeError(append([entry(5, 4)])).message).toMatch(/above the sender's term 3/);
    });

    it('fields of the wrong type', () => {
      expect(decodeError({ term: 1, voteResponse: { preVote: 1 as never, granted: true } }).field).toBe('voteResponse.preVote');
      expect(decodeError({ term: 1, readIndexRequest: { requestIds: [1] as never } }).field).toBe('readIndexRequest.requestIds[0]');
      expect(decodeError(append([{ ...entry(5), data: 'eA==' }])).field).toBe('appendRequest.entries[0].data');
      expect(decodeError(append({} as never)).field).toBe('appendRequest.entries');
    });

    it('a batch without a sender', () => {
      expect(() => fromWire('', 'n2', { term: 1, timeoutNow: {} })).toThrow(WireFormatError);
    });
  });
});
