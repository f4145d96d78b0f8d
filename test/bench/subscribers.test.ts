import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { IndexSet, stampedRecord } from '../../bench/cluster/delivery-check.js';
import { now } from '../../bench/cluster/load.js';
import { SubscriberGroup } from '../../bench/cluster/subscribers.js';
import { raftLogServiceDefinition, type SubscribeReply, type SubscribeRequest } from '../../src/node/client-proto.js';
import { waitFor } from '../support/wait-for.js';

type Stream = grpc.ServerWritableStream<SubscribeRequest, SubscribeReply>;

/** A node that serves only Subscribe, each stream as the test scripts it; remembers what each subscriber asked for. */
class ScriptedNode {
  readonly requests: SubscribeRequest[] = [];
  private constructor(
    private readonly server: grpc.Server,
    readonly endpoint: string,
  ) {}

  static async start(script: (call: Stream) => void): Promise<ScriptedNode> {
    const server = new grpc.Server();
    let node: ScriptedNode | null = null;
    server.addService(raftLogServiceDefinition, {
      Subscribe: (call: Stream) => {
        node?.requests.push(call.request);
        script(call);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
    );
    node = new ScriptedNode(server, `127.0.0.1:${port}`);
    return node;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

/** A reply covering first..last with a stamped append for each index in `indexes`. */
function reply(first: number, last: number, indexes: number[] = rangeOf(first, last)): SubscribeReply {
  return {
    entries: indexes.map((index) => ({
      index,
      term: 1,
      kind: 'LOG_ENTRY_KIND_APPEND' as const,
      record: stampedRecord(16, now()),
      key: new Uint8Array(0),
      value: new Uint8Array(0),
      expected: new Uint8Array(0),
      expectAbsent: false,
      consumer: '',
      position: 0,
      producer: null,
      changes: [],
      proposedAtMs: 0,
    })),
    firstIndex: first,
    lastIndex: last,
    commitIndex: last,
    node: 'fake',
    leader: 'fake',
  };
}

function rangeOf(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

function ackedOf(indexes: number[]): IndexSet {
  const s = new IndexSet();
  for (const i of indexes) s.add(i);
  return s;
}

describe('delivery benchmark: subscribers over raw gRPC Subscribe streams', () => {
  const nodes: ScriptedNode[] = [];
  let group: SubscriberGroup | null = null;
  afterEach(() => {
    group?.close();
    group = null;
    for (const n of nodes.splice(0)) n.stop();
  });

  it('asks for the COMMANDS view from the tail, receives every entry, and times each stamped record', async () => {
    const node = await ScriptedNode.start((call) => {
      call.write(reply(10, 9, []));
      call.write(reply(10, 14));
      call.write(reply(15, 20));
    });
    nodes.push(node);
    group = SubscriberGroup.open([{ endpoint: node.endpoint, name: 'n1' }], 1);
    group.startWindow(now());
    await group.waitReady(10_000);
    const s = group.members[0]!;
    await waitFor('index 20 covered', () => s.coverage.through === 20);
    group.endWindow(now());

    expect(node.requests[0]).toMatchObject({ fromTail: true, view: 'SUBSCRIBE_VIEW_COMMANDS' });
    const report = group.report(ackedOf(rangeOf(10, 20)), 20, 1, { ms: 0, drained: true });
    expect(report.per_subscriber[0]).toMatchObject({ start_index: 10, through: 20, coverage_problems: 0, undelivered_after_drain: 0, delivered: 11 });
    expect(report.e2e_ms.max).not.toBeNull();
    expect(report.e2e_ms.max as number).toBeGreaterThanOrEqual(0);
  });

  it('reports a stream that skips indexes: the gap, and the acknowledged appends it never received', async () => {
    const node = await ScriptedNode.start((call) => {
      call.write(reply(1, 3));
      call.write(reply(7, 8)); // 4..6 never covered
    });
    nodes.push(node);
    group = SubscriberGroup.open([{ endpoint: node.endpoint, name: 'n1' }], 1);
    const s = group.members[0]!;
    await waitFor('index 8 covered', () => s.coverage.through === 8);

    const report = group.report(ackedOf(rangeOf(1, 8)), 8, 1, { ms: 0, drained: true });
    expect(report.coverage_problems).toEqual([1]);
    expect(report.per_subscriber[0]?.problems).toEqual(['gap: covered through 3, next reply starts at 7']);
    expect(report.undelivered_after_drain).toEqual([3]);
    expect(report.per_subscriber[0]?.first_undelivered).toEqual([4, 5, 6]);
  });

  it('moves to the next node when its stream fails, asks for the index after the last it covered, and sees no gap', async () => {
    const failing = await ScriptedNode.start((call) => {
      call.write(reply(1, 5), () => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'node going away' }));
    });
    const next = await ScriptedNode.start((call) => {
      call.write(reply(call.request.fromIndex, 8));
    });
    nodes.push(failing, next);
    group = SubscriberGroup.open(
      [
        { endpoint: failing.endpoint, name: 'n1' },
        { endpoint: next.endpoint, name: 'n2' },
      ],
      1,
    );
    const s = group.members[0]!;
    await waitFor('index 8 covered on the second node', () => s.coverage.through === 8);

    expect(next.requests[0]).toMatchObject({ fromIndex: 6, fromTail: false });
    const report = group.report(ackedOf(rangeOf(1, 8)), 8, 1, { ms: 0, drained: true }).per_subscriber[0];
    expect(report).toMatchObject({ nodes: ['n1', 'n2'], resubscribes: 1, coverage_problems: 0, undelivered_after_drain: 0 });
    expect(Object.keys(report?.stream_errors ?? {})).toEqual(['UNAVAILABLE: node going away']);
  });

  it('times delivery after a mark: the next entry, and the first record sent after it', async () => {
    let later: Stream | null = null;
    const node = await ScriptedNode.start((call) => {
      call.write(reply(1, 2));
      later = call;
    });
    nodes.push(node);
    group = SubscriberGroup.open([{ endpoint: node.endpoint, name: 'n1' }], 1);
    const s = group.members[0]!;
    await waitFor('index 2 covered', () => s.coverage.through === 2);
    const mark = now();
    group.markAt(mark);
    expect(s.afterMark()).toEqual({ next_delivery_ms: null, fresh_delivery_ms: null });

    (later as Stream | null)?.write(reply(3, 3));
    await s.waitFreshDelivery(10_000);
    const after = s.afterMark();
    expect(after.next_delivery_ms).not.toBeNull();
    expect(after.fresh_delivery_ms).not.toBeNull();
  });

  it('says which subscriber never got a first reply', async () => {
    const silent = await ScriptedNode.start(() => {});
    nodes.push(silent);
    group = SubscriberGroup.open([{ endpoint: silent.endpoint, name: 'n1' }], 1);
    await expect(group.waitReady(200)).rejects.toThrow(/1 of 1 subscribers had no reply within 200 ms: n1/);
  });
});
