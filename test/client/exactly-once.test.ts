/**
 * Exactly-once writes of the client library (`exactlyOnce: true`) against
 * real `raftlog node` processes: the client stamps each write with its
 * producer session, retries a write whose outcome an attempt left open, and
 * the cluster applies it once. Each scenario names the fault, what the calls
 * return, and what the committed log holds afterwards. Waits are conditions
 * with generous deadlines; nothing is timed.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AppendResult,
  type LogRecord,
  RaftLogClient,
  type RaftLogClientOptions,
  RaftLogError,
  RaftLogIndeterminateError,
} from '../../src/client/index.js';
import { ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { InterceptingProxy, type ProxiedCall, type ProxyPlan, type ReceivedRequest } from './intercepting-proxy.js';

const WAIT_MS = 60_000;
/** A producer id no registration hands out soon: ids are log indexes. */
const UNKNOWN_PRODUCER_ID = '999999999999';

const text = (bytes: Uint8Array | null): string => (bytes === null ? '' : Buffer.from(bytes).toString('utf8'));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startCluster(): Promise<ProcessCluster> {
  const cluster = await ProcessCluster.start(3);
  cleanups.push(() => cluster.destroy());
  await cluster.waitForLeader(cluster.ids, WAIT_MS);
  return cluster;
}

function client(endpoints: readonly string[], options: Partial<RaftLogClientOptions> = {}): RaftLogClient {
  const c = new RaftLogClient({ endpoints, discoverLeader: false, ...options });
  cleanups.push(() => c.close());
  return c;
}

async function proxyTo(target: string, plan: (call: ProxiedCall, sameMethodBefore: number) => ProxyPlan): Promise<InterceptingProxy> {
  const proxy = await InterceptingProxy.start(target, plan);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Every committed entry from index 1 up to at least `throughIndex`, as the node at `endpoint` serves them. */
async function committedLog(reader: RaftLogClient, endpoint: string, throughIndex: number): Promise<LogRecord[]> {
  const entries: LogRecord[] = [];
  const deadline = Date.now() + WAIT_MS;
  while (entries.length < throughIndex) {
    if (Date.now() > deadline) throw new Error(`${endpoint} did not serve the log through index ${throughIndex} in time (read ${entries.length})`);
    const page = await reader.readLog(entries.length + 1, { endpoint });
    if (page.entries.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    entries.push(...page.entries);
  }
  return entries;
}

/** The indexes at which each appended record appears in the log. */
function placesOfRecords(log: readonly LogRecord[]): Map<string, number[]> {
  const places = new Map<string, number[]>();
  for (const entry of log) {
    if (entry.kind !== 'append') continue;
    const record = text(entry.record);
    places.set(record, [...(places.get(record) ?? []), entry.index]);
  }
  return places;
}

/** The stamp an append request carried, as the proxy received it. */
function stampOf(request: ReceivedRequest): { producerId: string; sequence: string; acknowledgedBelow: string } | null {
  return (request.producer as { producerId: string; sequence: string; acknowledgedBelow: string } | null | undefined) ?? null;
}

function withProducerId(request: ReceivedRequest, producerId: string): ReceivedRequest {
  const stamp = stampOf(request);
  if (stamp === null) throw new Error('the append carried no producer stamp');
  return { ...request, producer: { ...stamp, producerId } };
}

describe('exactly-once appends while the leader is SIGKILLed', () => {
  it('every call succeeds or throws; each success is in the log once, at the index it was given; no record is in the log twice', {
    timeout: 240_000,
  }, async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(cluster.ids, WAIT_MS);
    const writer = client(
      cluster.ids.map((id) => cluster.address(id)),
      { exactlyOnce: true, deadlineMs: 30_000 },
    );

    const total = 150;
    const concurrency = 15;
    const killAfter = 50;
    const outcomes: ({ ok: true; result: AppendResult } | { ok: false; error: unknown })[] = new Array(total);
    let next = 0;
    let done = 0;
    let killing: Promise<void> | null = null;
    const worker = async (): Promise<void> => {
      while (next < total) {
        const i = next++;
        try {
          outcomes[i] = { ok: true, result: await writer.append(`kill-${i}`) };
        } catch (error) {
          outcomes[i] = { ok: false, error };
        }
        // The fault, mid-way: the calls under way then lose their connection to the leader.
        if (++done === killAfter) killing = cluster.kill(leader);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    await killing;

    const successes = outcomes.flatMap((o, i) => (o.ok ? [{ i, result: o.result }] : []));
    const failures = outcomes.flatMap((o, i) => (o.ok ? [] : [{ i, error: o.error }]));
    for (const { error } of failures) expect(error).toBeInstanceOf(RaftLogError);
    // The writes went on under a new leader.
    expect(successes.some(({ result }) => result.leader !== null && result.leader !== leader)).toBe(true);

    const survivors = cluster.ids.filter((id) => id !== leader);
    const newLeader = await cluster.waitForLeader(survivors, WAIT_MS);
    const sentinel = await writer.append('sentinel');
    const log = await committedLog(writer, cluster.address(newLeader), sentinel.index);
    const places = placesOfRecords(log);

    for (const { i, result } of successes)
      expect({ record: `kill-${i}`, at: places.get(`kill-${i}`) }).toEqual({ record: `kill-${i}`, at: [result.index] });
    for (const [record, at] of places) expect({ record, at }).toEqual({ record, at: at.slice(0, 1) });

    console.log(
      `exactly-once under a leader kill: ${successes.length}/${total} appends succeeded ` +
        `(${successes.filter(({ result }) => result.duplicate).length} answered as duplicates), ` +
        `${failures.length} failed (${failures.map(({ error }) => (error as Error).name).join(', ') || 'none'}); ` +
        `${log.length} entries read from ${newLeader}`,
    );
  });
});

describe('a lost reply is retried with the same stamp and applied once', () => {
  it.each([
    ['the reply is lost: the attempt times out', 'lose' as const],
    [
      'a forwarding hop answers UNKNOWN after the leader applied the write',
      { code: grpc.status.UNKNOWN, details: 'the call forwarded by the proxy to the leader failed after it was sent' },
    ],
  ])('%s: the retry is answered duplicate: true with the first position, and the log holds the record once', async (_, lostAnswer) => {
    const cluster = await startCluster();
    const proxy = await proxyTo(cluster.address('n1'), (call, before): ProxyPlan => {
      if (call.method !== 'Append') return {};
      // The first append reaches the leader and is applied; its answer does not reach the client. The retry waits until then.
      if (before === 0) return { answer: lostAnswer };
      return { after: proxy.callsOf('Append')[0]?.answered };
    });
    const writer = client([proxy.endpoint], { exactlyOnce: true, deadlineMs: 20_000 });

    const result = await writer.append('lost-reply');

    const appends = proxy.callsOf('Append');
    expect(appends).toHaveLength(2);
    const [first, retry] = appends.map((call) => stampOf(call.request));
    expect(first).not.toBeNull();
    expect(retry).toMatchObject({ producerId: first?.producerId, sequence: first?.sequence });
    const firstAnswer = await appends[0]!.answered;
    expect(firstAnswer).toHaveProperty('reply');
    const firstPosition = (firstAnswer as { reply: { position: { index: string } } }).reply.position;
    expect(result).toMatchObject({ duplicate: true, index: Number(firstPosition.index) });

    const log = await committedLog(writer, proxy.endpoint, result.index);
    expect(placesOfRecords(log).get('lost-reply')).toEqual([result.index]);
    expect(proxy.callsOf('RegisterProducer')).toHaveLength(1);
  });

  it('later writes of the session carry acknowledged_below past the answered ones', async () => {
    const cluster = await startCluster();
    const proxy = await proxyTo(cluster.address('n1'), () => ({}));
    const writer = client([proxy.endpoint], { exactlyOnce: true, deadlineMs: 20_000 });

    await writer.append('one');
    await writer.put('k', 'v');
    const third = await writer.append('three');

    expect(proxy.calls.filter((call) => call.method !== 'RegisterProducer').map((call) => stampOf(call.request))).toEqual([
      expect.objectContaining({ sequence: '1', acknowledgedBelow: '1' }),
      expect.objectContaining({ sequence: '2', acknowledgedBelow: '2' }),
      expect.objectContaining({ sequence: '3', acknowledgedBelow: '3' }),
    ]);
    expect(third.duplicate).toBe(false);
  });
});

describe('a session the cluster no longer knows', () => {
  it('refused at the first sending: the client registers a new session and the write is applied once under it', async () => {
    const cluster = await startCluster();
    const proxy = await proxyTo(
      cluster.address('n1'),
      (call, before): ProxyPlan =>
        // As if the cluster had forgotten the session: the first append reaches it with an id it does not know.
        call.method === 'Append' && before === 0 ? { request: withProducerId(call.request, UNKNOWN_PRODUCER_ID) } : {},
    );
    const writer = client([proxy.endpoint], { exactlyOnce: true, deadlineMs: 20_000 });

    const result = await writer.append('after-forgetting');
    const later = await writer.append('later');

    expect(result.duplicate).toBe(false);
    const [refused, resent, next] = proxy.callsOf('Append').map((call) => stampOf(call.request));
    expect(proxy.callsOf('RegisterProducer')).toHaveLength(2);
    expect(resent?.producerId).not.toBe(refused?.producerId);
    expect(resent).toMatchObject({ sequence: '1' });
    // Later writes stay with the new session.
    expect(next).toMatchObject({ producerId: resent?.producerId, sequence: '2' });
    const log = await committedLog(writer, proxy.endpoint, later.index);
    expect(placesOfRecords(log).get('after-forgetting')).toEqual([result.index]);
  });

  it('refused after an attempt that may have applied the write: indeterminate, saying why, and not sent under a new session', async () => {
    const cluster = await startCluster();
    const proxy = await proxyTo(cluster.address('n1'), (call, before): ProxyPlan => {
      if (call.method !== 'Append') return {};
      if (before === 0) return { answer: 'lose' };
      return { after: proxy.callsOf('Append')[0]?.answered, request: withProducerId(call.request, UNKNOWN_PRODUCER_ID) };
    });
    const writer = client([proxy.endpoint], { exactlyOnce: true, deadlineMs: 20_000 });

    const error = await rejection(writer.append('applied-then-forgotten'));

    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect((error as Error).message).toMatch(/no longer knows the producer session/);
    expect(proxy.callsOf('Append')).toHaveLength(2);
    expect(proxy.callsOf('RegisterProducer')).toHaveLength(1);
    // The first attempt was applied: once.
    const sentinel = await client([cluster.address('n1')]).append('sentinel');
    const log = await committedLog(writer, cluster.address('n1'), sentinel.index);
    expect(placesOfRecords(log).get('applied-then-forgotten')).toHaveLength(1);
  });
});

describe('without exactlyOnce the old rules stand', () => {
  it.each([
    ['the reply is lost: the call times out', 'lose' as const],
    ['a forwarding hop answers UNKNOWN', { code: grpc.status.UNKNOWN, details: 'the forwarded call failed after it was sent' }],
  ])('%s: indeterminate, never retried, no stamp sent; the write was applied once', async (_, lostAnswer) => {
    const cluster = await startCluster();
    const proxy = await proxyTo(
      cluster.address('n1'),
      (call, before): ProxyPlan => (call.method === 'Append' && before === 0 ? { answer: lostAnswer } : {}),
    );
    const writer = client([proxy.endpoint], { deadlineMs: 4_000 });

    const error = await rejection(writer.append('unstamped'));

    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(proxy.callsOf('Append')).toHaveLength(1);
    expect(proxy.callsOf('RegisterProducer')).toHaveLength(0);
    expect(stampOf(proxy.callsOf('Append')[0]!.request)).toBeNull();
    await proxy.callsOf('Append')[0]!.answered;
    const sentinel = await client([cluster.address('n1')]).append('sentinel');
    const log = await committedLog(writer, cluster.address('n1'), sentinel.index);
    expect(placesOfRecords(log).get('unstamped')).toHaveLength(1);
  });
});
