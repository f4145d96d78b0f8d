import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Endpoint, EndpointPool } from '../../src/client/endpoint-pool.js';
import { parseEndpoints } from '../../src/client/endpoints.js';

/**
 * How long a node that refused Calls (UNIMPLEMENTED) or Gets on Calls (an
 * older version) is sent unary calls before the client tries its stream
 * again: a minute, after which the node may have been upgraded. Only Date
 * is faked: the pool reads the time, and no call is made.
 */
const unused = () => Promise.reject(new Error('not asked in this test'));

function poolOf(address: string): EndpointPool {
  return new EndpointPool(
    parseEndpoints([address]),
    { discoverLeader: false, followMembership: false, membershipRefreshMs: 30_000, deadlineMs: 1_000 },
    unused,
    unused,
    unused,
  );
}

const pools: EndpointPool[] = [];

/** A pool of one endpoint, with Date faked from here on (closed after the test). */
function onePool(): { pool: EndpointPool; endpoint: Endpoint } {
  vi.useFakeTimers({ toFake: ['Date'] });
  const pool = poolOf('127.0.0.1:1');
  pools.push(pool);
  const endpoint = pool.attemptOrder()[0];
  if (endpoint === undefined) throw new Error('the pool has no endpoint');
  return { pool, endpoint };
}
afterEach(() => {
  for (const pool of pools.splice(0)) pool.close();
  vi.useRealTimers();
});

describe('Calls fallback to unary calls', () => {
  it('sends Gets to a node that refused them on Calls as unary calls for a minute, its writes still on the stream, then tries the stream again', () => {
    const { pool, endpoint } = onePool();
    expect(pool.callsStreamOf(endpoint, true)).not.toBeNull();

    pool.noteUnaryGets(endpoint);
    expect(pool.callsStreamOf(endpoint, true)).toBeNull();
    // Writes are not affected: the node serves them on Calls.
    expect(pool.callsStreamOf(endpoint, false)).not.toBeNull();

    vi.advanceTimersByTime(59_000);
    expect(pool.callsStreamOf(endpoint, true)).toBeNull();
    vi.advanceTimersByTime(2_000);
    expect(pool.callsStreamOf(endpoint, true)).not.toBeNull();
  });

  it('sends every call to a node whose Calls stream answered UNIMPLEMENTED as a unary call for a minute, then tries a stream again', () => {
    const { pool, endpoint } = onePool();
    const first = pool.callsStreamOf(endpoint);
    if (first === null) throw new Error('no stream for a node not known to refuse Calls');
    // What the stream records when the node itself answers UNIMPLEMENTED.
    first.unsupported = true;
    expect(pool.callsStreamOf(endpoint)).toBeNull();
    expect(pool.callsStreamOf(endpoint, true)).toBeNull();
    vi.advanceTimersByTime(61_000);
    const second = pool.callsStreamOf(endpoint);
    expect(second).not.toBeNull();
    expect(second).not.toBe(first);
  });
});
