import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromWire, MAX_WIRE_TERM, WireFormatError, type WireRaftMessage } from '../../src/node/wire-codec.js';
import type { Message } from '../../src/raft/types.js';

/** Any JSON-ish value a hostile peer could make the decoder hand over, including numbers at and past the edges. */
const hostileScalar = fc.oneof(
  fc.constantFrom(0, 1, -1, 2 ** 48, 2 ** 48 + 1, 2 ** 53 - 1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, 0.5),
  fc.integer(),
  fc.boolean(),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 8 }),
);
const hostileObject = fc.dictionary(
  fc.constantFrom(
    'leaderCommit',
    'readContext',
    'preVote',
    'granted',
    'lastLogIndex',
    'lastLogTerm',
    'prevLogIndex',
    'prevLogTerm',
    'entries',
    'matchIndex',
    'hintTerm',
    'requestIds',
    'index',
    'success',
  ),
  fc.oneof(
    hostileScalar,
    fc.array(fc.record({ index: hostileScalar, term: hostileScalar, kind: hostileScalar, data: hostileScalar }), { maxLength: 3 }),
  ),
);
const hostileMessage = fc.record(
  {
    term: hostileScalar,
    body: fc.oneof(
      fc.constantFrom('heartbeat', 'voteRequest', 'appendRequest', 'appendResponse', 'readIndexRequest', 'timeoutNow', 'nonsense'),
      hostileScalar,
    ),
    heartbeat: hostileObject,
    voteRequest: hostileObject,
    appendRequest: hostileObject,
    appendResponse: hostileObject,
    readIndexRequest: hostileObject,
    timeoutNow: hostileObject,
  },
  { requiredKeys: [] },
);

function termsOf(message: Message): number[] {
  const terms = [message.term];
  if (message.type === 'VoteRequest') terms.push(message.lastLogTerm);
  if (message.type === 'AppendRequest') terms.push(message.prevLogTerm, ...message.entries.map((entry) => entry.term));
  if (message.type === 'AppendResponse') terms.push(message.hintTerm);
  return terms;
}

describe('a peer message from a hostile sender', () => {
  it('a heartbeat with term 2^53 - 1 is refused as invalid input, naming the sender and the limit, not adopted', () => {
    const forged: WireRaftMessage = { term: 2 ** 53 - 1, body: 'heartbeat', heartbeat: { leaderCommit: 0, readContext: 0 } };
    expect(() => fromWire('n9', 'n1', forged)).toThrow(WireFormatError);
    expect(() => fromWire('n9', 'n1', forged)).toThrow(/malformed message from n9: term is 9007199254740991, above 281474976710656/);
  });

  it('a vote request claiming a last log term above the limit is refused, and the limit itself is accepted', () => {
    const vote = (lastLogTerm: number): WireRaftMessage => ({
      term: 5,
      body: 'voteRequest',
      voteRequest: { preVote: false, lastLogIndex: 3, lastLogTerm, leadershipTransfer: false },
    });
    expect(() => fromWire('n2', 'n1', vote(MAX_WIRE_TERM + 1))).toThrow(/voteRequest\.lastLogTerm is 281474976710657/);
    expect(fromWire('n2', 'n1', { ...vote(3), term: MAX_WIRE_TERM })).toMatchObject({ type: 'VoteRequest', term: MAX_WIRE_TERM });
  });

  it('whatever arrives, the decoder either refuses it with a WireFormatError or yields a message whose every term and index is a safe integer within the limits', () => {
    let accepted = 0;
    fc.assert(
      fc.property(hostileMessage, (wire) => {
        let message: Message;
        try {
          message = fromWire('n2', 'n1', wire as WireRaftMessage);
        } catch (error) {
          // Anything but a WireFormatError would reach the peer service as an unexpected failure.
          if (!(error instanceof WireFormatError)) throw error;
          expect(error.sender).toBe('n2');
          return;
        }
        accepted += 1;
        for (const term of termsOf(message)) expect(term >= 0 && term <= MAX_WIRE_TERM && Number.isSafeInteger(term)).toBe(true);
        for (const value of Object.values(message)) {
          if (typeof value === 'number') expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
    // The generator must reach the accepting side too, or the property above says nothing about what gets through.
    expect(accepted).toBeGreaterThan(50);
  });
});
