/**
 * callWithFailover's order of endpoints while the pool learns of new members:
 * each round over the endpoints starts at the one the pool prefers and takes
 * in the members learned during the round before; no endpoint is skipped or
 * tried twice in a round. A stub pool stands in for the nodes (no sockets).
 */
import { describe, expect, it } from 'vitest';
import type { Endpoint, EndpointPool } from '../../src/client/endpoint-pool.js';
import { callWithFailover, type Operation } from '../../src/client/failover.js';
import { clientSettings } from '../../src/client/options.js';

function endpoint(address: string): Endpoint {
  return { address, node: null, client: null, calls: null, unaryUntil: 0, unaryGetsUntil: 0, discovering: false, nextDiscoveryAt: 0 };
}

/** Runs one read whose only reachable endpoint is `reachable`; the pool's order is `before` until the first refresh, `after` from then on. */
async function triedEndpoints(before: readonly string[], after: readonly string[], reachable: string): Promise<string[]> {
  const known = new Map([...before, ...after].map((address) => [address, endpoint(address)]));
  let order = before.map((address) => known.get(address) as Endpoint);
  const tried: string[] = [];
  const answering = {
    makeUnaryRequest: (...args: unknown[]) => {
      (args[6] as (error: null, reply: object) => void)(null, {});
      return { cancel: () => undefined };
    },
  };
  const stub = {
    closed: false,
    signal: new AbortController().signal,
    attemptOrder: () => [...order],
    refreshMembers: () => {
      order = after.map((address) => known.get(address) as Endpoint);
    },
    clientOf: (at: Endpoint) => ({ at, ...answering }),
    waitForConnection: async (client: { at: Endpoint }) => {
      tried.push(client.at.address);
      return client.at.address === reachable ? 'ready' : 'could not connect';
    },
    noteSuccess: () => undefined,
    track: () => undefined,
    untrack: () => undefined,
    writeStreamOf: () => null,
  };
  const settings = clientSettings({ endpoints: ['127.0.0.1:1'], backoff: { initialMs: 1, maxMs: 1 } });
  const read = {
    name: 'get',
    method: { path: '/raftlog.v1.RaftLog/Get' },
    write: false,
    request: {},
    deadlineMs: 5000,
    decode: () => 'answered',
    leaderOf: () => null,
  } as unknown as Operation<object, object, string>;
  expect(await callWithFailover(stub as unknown as EndpointPool, settings, read)).toBe('answered');
  return tried;
}

describe('failover while members are learned', () => {
  it('finishes the round it started, then starts the next at the front of the new order', async () => {
    expect(await triedEndpoints(['A', 'B', 'C'], ['D', 'A', 'B', 'C'], 'D')).toEqual(['A', 'B', 'C', 'D']);
  });

  it('a client that knew one endpoint goes to the member it learned, not to the failed endpoint again', async () => {
    expect(await triedEndpoints(['A'], ['D', 'A'], 'D')).toEqual(['A', 'D']);
  });
});
