/**
 * How the client reads a failed gRPC call before judging it: did the node
 * itself answer with the status, or did the client see the call fail; was
 * anything sent at all; and what went wrong, in words.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { attemptFailure, type CallFailure, clientSideFailure, failureOfCall, reasonOf } from '../../src/client/call-failure.js';

const { status } = grpc;
const ENDPOINT = '127.0.0.1:7001';

function serviceError(code: grpc.status, details: string, metadata: grpc.Metadata): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

function trailersOnlyMetadata(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('content-type', 'application/grpc');
  return metadata;
}

describe('failureOfCall: where a call failed', () => {
  it('a status that came in a trailers-only response (it carries a content-type) is the node’s own answer', () => {
    const metadata = trailersOnlyMetadata();
    const failure = failureOfCall(ENDPOINT, serviceError(status.UNAVAILABLE, 'no leader known', metadata), false);
    expect(failure).toEqual({
      endpoint: ENDPOINT,
      code: status.UNAVAILABLE,
      details: 'no leader known',
      fromServer: true,
      notSent: false,
      closed: false,
      trailers: metadata,
    });
  });

  it('a status without a content-type (a deadline, a lost connection) is one the client saw: sent, then failed', () => {
    const failure = failureOfCall(ENDPOINT, serviceError(status.DEADLINE_EXCEEDED, 'Deadline exceeded', new grpc.Metadata()), false);
    expect(failure).toMatchObject({ code: status.DEADLINE_EXCEEDED, fromServer: false, notSent: false });
  });

  it('grpc-js failing the call while picking a connection means nothing was sent; the cause is kept in short', () => {
    const details = 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7001. Resolution note: ';
    const failure = failureOfCall(ENDPOINT, serviceError(status.UNAVAILABLE, details, new grpc.Metadata()), false);
    expect(failure).toMatchObject({
      code: status.UNAVAILABLE,
      notSent: true,
      fromServer: false,
      details: 'could not connect: connect ECONNREFUSED 127.0.0.1:7001',
    });
  });

  it('that wording without a last error still means nothing was sent', () => {
    const failure = failureOfCall(ENDPOINT, serviceError(status.UNAVAILABLE, 'No connection established', new grpc.Metadata()), false);
    expect(failure).toMatchObject({ notSent: true, details: 'could not connect' });
  });

  it('the same wording from the node itself is the node’s answer, not a connection that was never made', () => {
    const failure = failureOfCall(ENDPOINT, serviceError(status.UNAVAILABLE, 'No connection established', trailersOnlyMetadata()), false);
    expect(failure).toMatchObject({ fromServer: true, notSent: false, details: 'No connection established' });
  });

  it('the wording under another code is not taken as "not sent"', () => {
    const failure = failureOfCall(ENDPOINT, serviceError(status.CANCELLED, 'No connection established', new grpc.Metadata()), false);
    expect(failure.notSent).toBe(false);
  });

  it('a call that failed with no error and no reply is an INTERNAL failure seen by the client', () => {
    expect(failureOfCall(ENDPOINT, null, false)).toEqual({
      endpoint: ENDPOINT,
      code: status.INTERNAL,
      details: 'the reply was empty',
      fromServer: false,
      notSent: false,
      closed: false,
      trailers: null,
    });
  });

  it('records whether the client was closed when the call failed', () => {
    const error = serviceError(status.CANCELLED, 'Cancelled on client', new grpc.Metadata());
    expect(failureOfCall(ENDPOINT, error, true).closed).toBe(true);
    expect(failureOfCall(ENDPOINT, error, false).closed).toBe(false);
  });
});

describe('clientSideFailure', () => {
  it('is by default sent, then failed, with no trailers; flags say otherwise', () => {
    expect(clientSideFailure(ENDPOINT, status.UNAVAILABLE, 'x')).toEqual({
      endpoint: ENDPOINT,
      code: status.UNAVAILABLE,
      details: 'x',
      fromServer: false,
      notSent: false,
      closed: false,
      trailers: null,
    });
    expect(clientSideFailure(ENDPOINT, status.CANCELLED, 'the client was closed', { notSent: true, closed: true })).toMatchObject({
      notSent: true,
      closed: true,
      fromServer: false,
    });
  });
});

describe('reasonOf: what went wrong, in words', () => {
  const base: CallFailure = clientSideFailure(ENDPOINT, status.UNAVAILABLE, '');

  it('a call never sent: why not, as it was recorded', () => {
    expect(reasonOf({ ...base, notSent: true, details: 'no connection established in time' })).toBe('no connection established in time');
  });

  it('a node’s answer: its code and words', () => {
    expect(reasonOf({ ...base, fromServer: true, details: 'no leader known' })).toBe('the node answered UNAVAILABLE: no leader known');
    expect(reasonOf({ ...base, fromServer: true, code: status.INTERNAL })).toBe('the node answered INTERNAL');
  });

  it('a deadline the client saw pass', () => {
    expect(reasonOf({ ...base, code: status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' })).toBe('no reply before the deadline');
  });

  it('a connection lost under the call (UNAVAILABLE or CANCELLED)', () => {
    expect(reasonOf({ ...base, details: 'Connection dropped' })).toBe('the connection was lost (Connection dropped)');
    expect(reasonOf({ ...base, code: status.CANCELLED, details: 'Call cancelled' })).toBe('the connection was lost (Call cancelled)');
  });

  it('any other failure the client saw: its words and code', () => {
    expect(reasonOf({ ...base, code: status.INTERNAL, details: 'bad frame' })).toBe('the call failed: bad frame (INTERNAL)');
  });
});

describe('attemptFailure: what the final error keeps of each attempt', () => {
  it('the endpoint, the code and its name, the reason and whether the node answered', () => {
    const failure: CallFailure = { ...clientSideFailure(ENDPOINT, status.RESOURCE_EXHAUSTED, 'backlog full'), fromServer: true };
    expect(attemptFailure(failure)).toEqual({
      endpoint: ENDPOINT,
      code: status.RESOURCE_EXHAUSTED,
      codeName: 'RESOURCE_EXHAUSTED',
      reason: 'the node answered RESOURCE_EXHAUSTED: backlog full',
      fromServer: true,
    });
  });
});
