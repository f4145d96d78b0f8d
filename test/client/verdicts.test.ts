/**
 * The rules by which a failed attempt either moves the call on to the next
 * endpoint (verdict null) or ends it with an error that says whether the
 * request certainly did not take effect, or may have (indeterminate, writes
 * only). Each scenario: what kind of call, how the attempt failed, and the
 * expected verdict.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { attemptFailure, type CallFailure } from '../../src/client/call-failure.js';
import {
  type AttemptFailure,
  FIRST_INDEX_METADATA_KEY,
  RaftLogCompactedError,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/errors.js';
import {
  type CallTraits,
  closedError,
  compactedError,
  isUnknownProducer,
  leavesOutcomeOpen,
  outOfTimeError,
  unavailableError,
  verdict,
} from '../../src/client/verdicts.js';
import { stateRefusal } from '../../src/node/errors.js';
import { ProducerSessions } from '../../src/node/producer-sessions.js';

const { status } = grpc;
const ENDPOINT = '127.0.0.1:7001';

const aWrite: CallTraits = { name: 'put', write: true, deadlineMs: 2000 };
const aRead: CallTraits = { name: 'get', write: false, deadlineMs: 2000 };
const aMembershipChange: CallTraits = { name: 'memberPromote', write: true, deadlineMs: 2000 };

function trailersOnly(extra: Record<string, string> = {}): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('content-type', 'application/grpc');
  for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
  return metadata;
}

/** The node itself answered with this status. */
function nodeAnswered(code: grpc.status, details = '', trailers = trailersOnly()): CallFailure {
  return { endpoint: ENDPOINT, code, details, fromServer: true, notSent: false, closed: false, trailers };
}

/** The request was sent and then the client saw the call fail (deadline, lost connection). */
function sentThenFailed(code: grpc.status, details = ''): CallFailure {
  return { endpoint: ENDPOINT, code, details, fromServer: false, notSent: false, closed: false, trailers: null };
}

/** No connection was established, so nothing was sent. */
function neverSent(details = 'could not connect: connect ECONNREFUSED 127.0.0.1:7001'): CallFailure {
  return { endpoint: ENDPOINT, code: status.UNAVAILABLE, details, fromServer: false, notSent: true, closed: false, trailers: null };
}

/** The verdict on one attempt that failed so, as the failover loop asks for it (the attempts include this one). */
function judge(op: CallTraits, failure: CallFailure): { error: RaftLogError | null; attempts: readonly AttemptFailure[] } {
  const attempts = [attemptFailure(failure)];
  return { error: verdict(op, failure, attempts), attempts };
}

describe('verdict: failures that certainly changed nothing are retried on the next endpoint', () => {
  it('a write that was never sent (no connection) is retried', () => {
    expect(judge(aWrite, neverSent()).error).toBeNull();
  });

  it('a read that was never sent is retried', () => {
    expect(judge(aRead, neverSent()).error).toBeNull();
  });

  it('a write that was never sent is retried even though grpc-js said CANCELLED', () => {
    expect(judge(aWrite, { ...neverSent(), code: status.CANCELLED }).error).toBeNull();
  });

  it('a write the node answered UNAVAILABLE ("no leader") is retried', () => {
    expect(judge(aWrite, nodeAnswered(status.UNAVAILABLE, 'node n2 (term 3): no leader known')).error).toBeNull();
  });

  it('a membership change the node answered UNAVAILABLE is retried', () => {
    expect(judge(aMembershipChange, nodeAnswered(status.UNAVAILABLE, 'no leader')).error).toBeNull();
  });

  it('a read the node answered UNAVAILABLE is retried', () => {
    expect(judge(aRead, nodeAnswered(status.UNAVAILABLE, 'no leader')).error).toBeNull();
  });

  it('a write the overloaded leader answered RESOURCE_EXHAUSTED is retried (the loop pauses first, and ends unavailable past the deadline)', () => {
    expect(judge(aWrite, nodeAnswered(status.RESOURCE_EXHAUSTED, 'backlog full')).error).toBeNull();
  });

  it('a read answered RESOURCE_EXHAUSTED is retried too', () => {
    expect(judge(aRead, nodeAnswered(status.RESOURCE_EXHAUSTED, 'backlog full')).error).toBeNull();
  });

  it('a read whose connection was lost after sending is retried (a read changes nothing)', () => {
    expect(judge(aRead, sentThenFailed(status.UNAVAILABLE, 'Connection dropped')).error).toBeNull();
    expect(judge(aRead, sentThenFailed(status.CANCELLED, 'Call cancelled')).error).toBeNull();
  });
});

describe('verdict: a write that may have been committed is indeterminate and never retried', () => {
  it('a write with no reply before the deadline', () => {
    const { error, attempts } = judge(aWrite, sentThenFailed(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ operation: 'put', code: status.DEADLINE_EXCEEDED, codeName: 'DEADLINE_EXCEEDED', endpoint: ENDPOINT, attempts });
    expect(error?.message).toBe(`put on ${ENDPOINT}: no reply before the deadline; the write may or may not have been committed (DEADLINE_EXCEEDED)`);
  });

  it('a write whose connection was lost after it was sent', () => {
    const { error } = judge(aWrite, sentThenFailed(status.UNAVAILABLE, 'Connection dropped'));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error?.message).toContain('the connection was lost (Connection dropped)');
  });

  it('a write cancelled on the way (not by close())', () => {
    expect(judge(aWrite, sentThenFailed(status.CANCELLED, 'Call cancelled')).error).toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('a write the node failed without saying whether it committed (INTERNAL, UNKNOWN)', () => {
    expect(judge(aWrite, nodeAnswered(status.INTERNAL, 'state machine threw')).error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(judge(aWrite, nodeAnswered(status.UNKNOWN, 'handler threw')).error).toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('a write the node itself answered DEADLINE_EXCEEDED (it may still commit)', () => {
    expect(judge(aWrite, nodeAnswered(status.DEADLINE_EXCEEDED, 'not committed in time')).error).toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('a write whose status the client made up itself, even one that looks definite (RESOURCE_EXHAUSTED: a reply over the size limit)', () => {
    expect(judge(aWrite, sentThenFailed(status.RESOURCE_EXHAUSTED, 'Received message larger than max')).error).toBeInstanceOf(
      RaftLogIndeterminateError,
    );
    expect(judge(aWrite, sentThenFailed(status.INVALID_ARGUMENT, 'made up')).error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(judge(aWrite, sentThenFailed(status.FAILED_PRECONDITION, 'made up')).error).toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('a membership change that timed out after it was sent, like any write', () => {
    const { error } = judge(aMembershipChange, sentThenFailed(status.DEADLINE_EXCEEDED));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error?.operation).toBe('memberPromote');
  });
});

describe('verdict: reads that fail are definite', () => {
  it('a read with no reply before the deadline ends with RaftLogDeadlineExceededError naming the deadline', () => {
    const { error, attempts } = judge(aRead, sentThenFailed(status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
    expect(error).toBeInstanceOf(RaftLogDeadlineExceededError);
    expect(error).toMatchObject({ operation: 'get', code: status.DEADLINE_EXCEEDED, endpoint: ENDPOINT, attempts });
    expect(error?.message).toBe(`get on ${ENDPOINT}: no reply within the deadline of 2000 ms (DEADLINE_EXCEEDED)`);
  });

  it('a read the node answered DEADLINE_EXCEEDED ends the same way', () => {
    expect(judge(aRead, nodeAnswered(status.DEADLINE_EXCEEDED)).error).toBeInstanceOf(RaftLogDeadlineExceededError);
  });

  it('a read the node failed (INTERNAL) ends with a plain RaftLogError, not retried', () => {
    const { error } = judge(aRead, nodeAnswered(status.INTERNAL, 'boom'));
    expect(error?.constructor).toBe(RaftLogError);
    expect(error?.message).toBe(`get on ${ENDPOINT} failed: the node answered INTERNAL: boom`);
  });

  it('a read failing client-side with another code (RESOURCE_EXHAUSTED) ends with a plain RaftLogError', () => {
    const { error } = judge(aRead, sentThenFailed(status.RESOURCE_EXHAUSTED, 'Received message larger than max'));
    expect(error?.constructor).toBe(RaftLogError);
    expect(error?.message).toBe(`get on ${ENDPOINT} failed: the call failed: Received message larger than max (RESOURCE_EXHAUSTED)`);
  });

  it('a FAILED_PRECONDITION the client made up is no refusal by the cluster: a plain RaftLogError', () => {
    expect(judge(aRead, sentThenFailed(status.FAILED_PRECONDITION, 'made up')).error?.constructor).toBe(RaftLogError);
  });
});

describe('verdict: refusals from the node are definite and not retried', () => {
  for (const [kind, op] of [
    ['write', aWrite],
    ['read', aRead],
  ] as const) {
    it(`a ${kind} the node answered INVALID_ARGUMENT ends with RaftLogInvalidArgumentError carrying the node's words`, () => {
      const { error, attempts } = judge(op, nodeAnswered(status.INVALID_ARGUMENT, 'key too long'));
      expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
      expect(error).toMatchObject({ code: status.INVALID_ARGUMENT, endpoint: ENDPOINT, details: 'key too long', attempts });
      expect(error?.message).toBe(`${op.name} rejected by ${ENDPOINT}: key too long (INVALID_ARGUMENT)`);
    });

    it(`a ${kind} the node answered FAILED_PRECONDITION ends with RaftLogFailedPreconditionError`, () => {
      const { error } = judge(op, nodeAnswered(status.FAILED_PRECONDITION, 'learner n4 is 120 entries behind'));
      expect(error).toBeInstanceOf(RaftLogFailedPreconditionError);
      expect(error?.message).toBe(`${op.name} refused by ${ENDPOINT}: learner n4 is 120 entries behind (FAILED_PRECONDITION)`);
    });
  }

  it('an INVALID_ARGUMENT or FAILED_PRECONDITION without details says so in general words', () => {
    expect(judge(aWrite, nodeAnswered(status.INVALID_ARGUMENT)).error?.message).toBe(
      `put rejected by ${ENDPOINT}: invalid argument (INVALID_ARGUMENT)`,
    );
    expect(judge(aMembershipChange, nodeAnswered(status.FAILED_PRECONDITION)).error?.message).toBe(
      `memberPromote refused by ${ENDPOINT}: failed precondition (FAILED_PRECONDITION)`,
    );
  });

  it.each([
    ['NOT_FOUND', status.NOT_FOUND],
    ['ALREADY_EXISTS', status.ALREADY_EXISTS],
    ['PERMISSION_DENIED', status.PERMISSION_DENIED],
    ['ABORTED', status.ABORTED],
    ['OUT_OF_RANGE', status.OUT_OF_RANGE],
    ['UNIMPLEMENTED', status.UNIMPLEMENTED],
    ['UNAUTHENTICATED', status.UNAUTHENTICATED],
  ])('a write the node answered %s certainly did not happen: a plain RaftLogError, not indeterminate', (name, code) => {
    const { error } = judge(aWrite, nodeAnswered(code, 'no'));
    expect(error?.constructor).toBe(RaftLogError);
    expect(error?.message).toBe(`put on ${ENDPOINT} failed: the node answered ${name}: no`);
  });
});

describe('verdict: an operation’s own rule for what the node answered', () => {
  const compacted = new RaftLogError({ operation: 'readLog', code: status.OUT_OF_RANGE, endpoint: ENDPOINT, message: 'particular' });

  it('decides a node answer before the general rules (here one that would otherwise be a plain error)', () => {
    const op: CallTraits = { name: 'readLog', write: false, deadlineMs: 2000, serverError: () => compacted };
    expect(judge(op, nodeAnswered(status.OUT_OF_RANGE)).error).toBe(compacted);
  });

  it('is given the failure and the attempts so far', () => {
    const serverError = vi.fn(() => null);
    const op: CallTraits = { name: 'readLog', write: false, deadlineMs: 2000, serverError };
    const failure = nodeAnswered(status.OUT_OF_RANGE);
    const { attempts } = judge(op, failure);
    expect(serverError).toHaveBeenCalledWith(failure, attempts);
  });

  it('is not asked about a failure the client saw itself', () => {
    const serverError = vi.fn(() => compacted);
    const op: CallTraits = { name: 'readLog', write: false, deadlineMs: 2000, serverError };
    expect(judge(op, sentThenFailed(status.OUT_OF_RANGE)).error?.constructor).toBe(RaftLogError);
    expect(judge(op, sentThenFailed(status.OUT_OF_RANGE)).error).not.toBe(compacted);
    expect(serverError).not.toHaveBeenCalled();
  });

  it('cannot stop a retry: UNAVAILABLE and RESOURCE_EXHAUSTED from the node are retried before it is asked', () => {
    const serverError = vi.fn(() => compacted);
    const op: CallTraits = { name: 'readLog', write: false, deadlineMs: 2000, serverError };
    expect(judge(op, nodeAnswered(status.UNAVAILABLE)).error).toBeNull();
    expect(judge(op, nodeAnswered(status.RESOURCE_EXHAUSTED)).error).toBeNull();
    expect(serverError).not.toHaveBeenCalled();
  });

  it('returning null leaves the general rules in force', () => {
    const op: CallTraits = { name: 'readLog', write: false, deadlineMs: 2000, serverError: () => null };
    expect(judge(op, nodeAnswered(status.FAILED_PRECONDITION)).error).toBeInstanceOf(RaftLogFailedPreconditionError);
  });
});

describe('verdict: after close()', () => {
  it('a write that was under way is indeterminate', () => {
    const { error, attempts } = judge(aWrite, { ...sentThenFailed(status.CANCELLED, 'Cancelled on client'), closed: true });
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ code: status.CANCELLED, endpoint: ENDPOINT, attempts });
    expect(error?.message).toBe(`put on ${ENDPOINT}: the client was closed while the write was under way; it may or may not have been committed`);
  });

  it('a write that was never sent ends as closed (CANCELLED, no endpoint), not indeterminate', () => {
    const { error, attempts } = judge(aWrite, { ...neverSent('the client was closed'), code: status.CANCELLED, closed: true });
    expect(error?.constructor).toBe(RaftLogError);
    expect(error).toMatchObject({ code: status.CANCELLED, endpoint: null, message: 'put: the client is closed', attempts });
  });

  it('a read ends as closed instead of being retried', () => {
    const { error } = judge(aRead, { ...sentThenFailed(status.UNAVAILABLE, 'Connection dropped'), closed: true });
    expect(error?.constructor).toBe(RaftLogError);
    expect(error).toMatchObject({ code: status.CANCELLED, message: 'get: the client is closed' });
  });

  it('a call refused because the client is closed carries no attempts unless given', () => {
    expect(closedError('status')).toMatchObject({ code: status.CANCELLED, endpoint: null, attempts: [] });
  });
});

describe('compactedError: readLog from an index the node no longer holds', () => {
  const withFirstIndex = (value: string, details = '') =>
    nodeAnswered(status.OUT_OF_RANGE, details, trailersOnly({ [FIRST_INDEX_METADATA_KEY]: value }));

  it('gives RaftLogCompactedError with the first index the node holds, taken from the trailers', () => {
    const attempts = [attemptFailure(withFirstIndex('7'))];
    const error = compactedError(3, withFirstIndex('7'), attempts);
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect(error).toMatchObject({
      operation: 'readLog',
      code: status.OUT_OF_RANGE,
      endpoint: ENDPOINT,
      fromIndex: 3,
      firstIndex: 7,
      attempts,
    });
    expect(error?.message).toBe(`readLog on ${ENDPOINT}: cannot read from index 3: the log starts at 7 (OUT_OF_RANGE)`);
  });

  it('uses the node’s words for the message when it gives some, and the trailer for the index', () => {
    const error = compactedError(3, withFirstIndex('12', 'entries before 10 are compacted'), []);
    expect(error?.firstIndex).toBe(12);
    expect(error?.message).toBe(`readLog on ${ENDPOINT}: entries before 10 are compacted (OUT_OF_RANGE)`);
  });

  it.each([['0'], ['07'], ['-5'], ['7.5'], ['seven'], [''], ['99999999999999999999']])(
    'is no compaction when the first index given is not a usable positive integer (%j)',
    (value) => {
      expect(compactedError(3, withFirstIndex(value), [])).toBeNull();
    },
  );

  it('is no compaction without the trailer (a node of another version)', () => {
    expect(compactedError(3, nodeAnswered(status.OUT_OF_RANGE, 'too old'), [])).toBeNull();
  });

  it('is no compaction for another code, even with the trailer', () => {
    const failure = { ...withFirstIndex('7'), code: status.FAILED_PRECONDITION };
    expect(compactedError(3, failure, [])).toBeNull();
  });
});

describe('unavailableError: the call found no node to take it', () => {
  const failed = (endpoint: string, reason: string): AttemptFailure => ({
    endpoint,
    code: status.UNAVAILABLE,
    codeName: 'UNAVAILABLE',
    reason,
    fromServer: true,
  });

  it('after attempts on one endpoint, names it and its latest reason', () => {
    const attempts = [failed('a:1', 'the node answered UNAVAILABLE: no leader'), failed('a:1', 'could not connect')];
    const error = unavailableError('append', attempts, 812);
    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    expect(error).toMatchObject({ operation: 'append', code: status.UNAVAILABLE, endpoint: 'a:1', details: 'could not connect', attempts });
    expect(error.message).toBe('append on a:1: could not connect (2 attempts in 812 ms)');
  });

  it('says "1 attempt" for one', () => {
    expect(unavailableError('status', [failed('a:1', 'could not connect')], 5).message).toBe('status on a:1: could not connect (1 attempt in 5 ms)');
  });

  it('after attempts on several endpoints, sums up each one’s latest reason in the order they were first tried; the last attempt’s endpoint is the one named', () => {
    const attempts = [
      failed('a:1', 'the node answered UNAVAILABLE: no leader'),
      failed('b:2', 'could not connect'),
      failed('a:1', 'the node answered RESOURCE_EXHAUSTED: backlog full'),
    ];
    const error = unavailableError('put', attempts, 1500);
    expect(error).toMatchObject({ endpoint: 'a:1', details: 'the node answered RESOURCE_EXHAUSTED: backlog full' });
    expect(error.message).toBe(
      'put: no node could take the request (3 attempts in 1500 ms; a:1: the node answered RESOURCE_EXHAUSTED: backlog full; b:2: could not connect)',
    );
  });
});

describe('verdict: an idempotent (exactly-once) write is retried with its stamp while its outcome is open', () => {
  const anExactlyOnceWrite: CallTraits = { name: 'append', write: true, idempotent: true, deadlineMs: 2000 };
  /** The verdict on the latest of several attempts, as the failover loop asks for it. */
  const judgeAfter = (earlier: readonly CallFailure[], failure: CallFailure) => {
    const attempts = [...earlier, failure].map(attemptFailure);
    const earlierOutcomeOpen = earlier.some(leavesOutcomeOpen);
    return { error: verdict(anExactlyOnceWrite, failure, attempts, earlierOutcomeOpen), attempts };
  };
  const forgottenSession = (): CallFailure =>
    nodeAnswered(status.FAILED_PRECONDITION, stateRefusal('n2', 'unknown-producer', unknownProducerWords(12)).message);

  it.each([
    ['no reply before the (attempt’s) deadline', sentThenFailed(status.DEADLINE_EXCEEDED, 'Deadline exceeded')],
    ['the connection was lost after sending', sentThenFailed(status.UNAVAILABLE, 'Connection dropped')],
    ['cancelled on the way', sentThenFailed(status.CANCELLED, 'Call cancelled')],
    ['UNKNOWN from a node whose forwarding to the leader failed after sending', nodeAnswered(status.UNKNOWN, 'the call forwarded by n2 … failed')],
    ['INTERNAL from the node', nodeAnswered(status.INTERNAL, 'boom')],
    ['DEADLINE_EXCEEDED from the node (not committed in time)', nodeAnswered(status.DEADLINE_EXCEEDED, 'no commit of index 9')],
  ])('%s: retried, where a plain write would be indeterminate', (_, failure) => {
    expect(judge(aWrite, failure).error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(judge(anExactlyOnceWrite, failure).error).toBeNull();
  });

  it('retried again after several open attempts', () => {
    const open = sentThenFailed(status.DEADLINE_EXCEEDED);
    expect(judgeAfter([open, open], nodeAnswered(status.UNKNOWN)).error).toBeNull();
  });

  it('failures that changed nothing are retried as for any write', () => {
    expect(judge(anExactlyOnceWrite, neverSent()).error).toBeNull();
    expect(judge(anExactlyOnceWrite, nodeAnswered(status.UNAVAILABLE, 'no leader')).error).toBeNull();
    expect(judge(anExactlyOnceWrite, nodeAnswered(status.RESOURCE_EXHAUSTED, 'backlog full')).error).toBeNull();
  });

  it('a refusal at the first sending is definite, as for any write', () => {
    expect(judge(anExactlyOnceWrite, nodeAnswered(status.INVALID_ARGUMENT, 'record too big')).error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(judgeAfter([neverSent(), nodeAnswered(status.UNAVAILABLE)], nodeAnswered(status.INVALID_ARGUMENT)).error).toBeInstanceOf(
      RaftLogInvalidArgumentError,
    );
  });

  it('an unknown producer at the first sending is a FAILED_PRECONDITION the caller can recognise (it may register anew and send once more)', () => {
    const { error } = judgeAfter([neverSent()], forgottenSession());
    expect(error).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect(isUnknownProducer(error!.code, error!.details)).toBe(true);
  });

  it('an unknown producer after an attempt that may have applied the write is indeterminate, and says why', () => {
    const { error, attempts } = judgeAfter([sentThenFailed(status.DEADLINE_EXCEEDED)], forgottenSession());
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ operation: 'append', code: status.FAILED_PRECONDITION, endpoint: ENDPOINT, attempts });
    expect(error?.message).toMatch(/no longer knows the producer session/);
    expect(error?.message).toMatch(/could apply it twice: it may or may not have been committed$/);
  });

  it('any other refusal after an attempt that may have applied the write is indeterminate too', () => {
    const { error } = judgeAfter([nodeAnswered(status.UNKNOWN, 'forward failed')], nodeAnswered(status.INVALID_ARGUMENT, 'bad stamp'));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error?.message).toBe(
      `append on ${ENDPOINT}: the node answered INVALID_ARGUMENT: bad stamp, after an earlier attempt that may have applied the write; it may or may not have been committed`,
    );
  });

  it('close() between attempts, after one that may have applied the write, is indeterminate even though the last was never sent', () => {
    const closedBeforeSending = { ...neverSent('the client was closed'), code: status.CANCELLED, closed: true };
    expect(judgeAfter([sentThenFailed(status.UNAVAILABLE)], closedBeforeSending).error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(judgeAfter([neverSent()], closedBeforeSending).error?.constructor).toBe(RaftLogError);
  });
});

describe('leavesOutcomeOpen: whether a failed attempt may have taken effect', () => {
  it('not when nothing was sent, or the node answered a status that says it did not carry the request out', () => {
    expect(leavesOutcomeOpen(neverSent())).toBe(false);
    for (const code of [status.UNAVAILABLE, status.RESOURCE_EXHAUSTED, status.INVALID_ARGUMENT, status.FAILED_PRECONDITION]) {
      expect(leavesOutcomeOpen(nodeAnswered(code))).toBe(false);
    }
  });

  it('when it was sent and then failed on the client side, or the node answered without saying (UNKNOWN, INTERNAL, DEADLINE_EXCEEDED)', () => {
    expect(leavesOutcomeOpen(sentThenFailed(status.DEADLINE_EXCEEDED))).toBe(true);
    expect(leavesOutcomeOpen(sentThenFailed(status.INVALID_ARGUMENT))).toBe(true);
    for (const code of [status.UNKNOWN, status.INTERNAL, status.DEADLINE_EXCEEDED]) expect(leavesOutcomeOpen(nodeAnswered(code))).toBe(true);
  });
});

describe('isUnknownProducer: the node’s refusal of a producer it does not know', () => {
  it('recognises the words the node uses, as its state machine and error mapping produce them', () => {
    const refusal = stateRefusal('n1', 'unknown-producer', unknownProducerWords(5));
    expect(isUnknownProducer(refusal.code, refusal.message)).toBe(true);
  });

  it('not the other producer refusals, nor another code', () => {
    const sessions = new ProducerSessions();
    const id = sessions.register(3).id;
    sessions.admit({ id, sequence: 5, acknowledgedBelow: 5 }, 4);
    const stale = sessions.peek({ id, sequence: 2, acknowledgedBelow: 0 });
    expect(stale).toMatchObject({ kind: 'refused', reason: 'stale-sequence' });
    const words = stale.kind === 'refused' ? stale.message : '';
    expect(isUnknownProducer(status.FAILED_PRECONDITION, stateRefusal('n1', 'stale-sequence', words).message)).toBe(false);
    expect(isUnknownProducer(status.INVALID_ARGUMENT, unknownProducerWords(5))).toBe(false);
  });
});

describe('outOfTimeError: the deadline left no time for another attempt', () => {
  const openAttempt = attemptFailure(sentThenFailed(status.DEADLINE_EXCEEDED));
  const refusedAttempt = attemptFailure(nodeAnswered(status.UNAVAILABLE, 'no leader'));

  it('a write one of whose attempts may have taken effect is indeterminate, naming the deadline and the last attempt', () => {
    const op: CallTraits = { name: 'append', write: true, idempotent: true, deadlineMs: 3000 };
    const error = outOfTimeError(op, [openAttempt, refusedAttempt], 3010, true);
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).toMatchObject({ operation: 'append', code: status.UNAVAILABLE, endpoint: ENDPOINT });
    expect(error.message).toBe(
      `append: no definite answer within the deadline of 3000 ms (2 attempts in 3010 ms; the last on ${ENDPOINT}: ` +
        'the node answered UNAVAILABLE: no leader); the write may or may not have been committed',
    );
  });

  it('a write no attempt of which took effect is unavailable, as before', () => {
    const op: CallTraits = { name: 'append', write: true, idempotent: true, deadlineMs: 3000 };
    expect(outOfTimeError(op, [refusedAttempt], 3010, false)).toBeInstanceOf(RaftLogUnavailableError);
  });

  it('a read is unavailable', () => {
    expect(outOfTimeError(aRead, [refusedAttempt], 10, true)).toBeInstanceOf(RaftLogUnavailableError);
  });

  it('close() between attempts of a write that may have taken effect is indeterminate', () => {
    expect(closedError('append', [openAttempt], true)).toBeInstanceOf(RaftLogIndeterminateError);
    expect(closedError('append', [openAttempt], false).constructor).toBe(RaftLogError);
  });
});

/** The words a node's state machine uses for a producer it does not know. */
function unknownProducerWords(id: number): string {
  const verdictOfNode = new ProducerSessions().peek({ id, sequence: 1, acknowledgedBelow: 0 });
  if (verdictOfNode.kind !== 'refused' || verdictOfNode.reason !== 'unknown-producer') throw new Error('expected an unknown-producer refusal');
  return verdictOfNode.message;
}
