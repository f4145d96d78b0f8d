/**
 * client.subscribe(): first against scripted gRPC nodes that answer
 * Subscribe with exactly the replies a test gives (broken ones included),
 * then against real `raftlog node` processes: the whole log in order, live
 * entries, views and filters, a subscriber's node killed or stopped under
 * a write load, a compacted start, and a caller that stops taking entries.
 * Waits are conditions with generous deadlines, never fixed sleeps.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RaftLogMethods, SubscribeRequest } from '../../src/api/client-api.js';
import {
  FIRST_INDEX_METADATA_KEY,
  type LogSubscription,
  RaftLogClient,
  RaftLogCompactedError,
  RaftLogError,
  RaftLogInvalidArgumentError,
  type SubscribedEntry,
  type SubscribeOptions,
} from '../../src/client/index.js';
import { raftLogService } from '../../src/client/proto.js';
import { freePort, ProcessCluster } from '../support/process-cluster.js';
import { rejection } from '../support/rejection.js';
import { take } from '../support/take-entries.js';
import { waitFor } from '../support/wait-for.js';

type OutgoingReply = RaftLogMethods['Subscribe']['outgoingReply'];
type SubscribeCall = grpc.ServerWritableStream<SubscribeRequest, OutgoingReply>;

const WAIT_MS = 60_000;
const text = (bytes: Uint8Array | null): string | null => (bytes === null ? null : Buffer.from(bytes).toString('utf8'));
const range = (first: number, last: number): number[] => Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);

let clients: RaftLogClient[] = [];
let subscriptions: LogSubscription[] = [];
let scripted: ScriptedNode[] = [];
let cluster: ProcessCluster | null = null;

afterEach(async () => {
  await Promise.all(subscriptions.map((subscription) => subscription.close().catch(() => undefined)));
  for (const client of clients) client.close();
  for (const node of scripted) node.stop();
  await cluster?.destroy();
  subscriptions = [];
  clients = [];
  scripted = [];
  cluster = null;
});

function client(endpoints: readonly string[]): RaftLogClient {
  const made = new RaftLogClient({ endpoints, deadlineMs: 10_000, backoff: { initialMs: 10, maxMs: 200 } });
  clients.push(made);
  return made;
}

function subscribe(on: RaftLogClient, options: SubscribeOptions): LogSubscription {
  const subscription = on.subscribe(options);
  subscriptions.push(subscription);
  return subscription;
}

// ---------------------------------------------------------------------------
// Scripted nodes: a gRPC server whose Subscribe does what the test says.
// ---------------------------------------------------------------------------

type Script = (call: SubscribeCall) => Promise<void> | void;

class ScriptedNode {
  readonly requests: SubscribeRequest[] = [];
  /** Replies the node has handed to gRPC (their write callbacks ran). */
  written = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  /** `others`: handlers of other methods of the service, by name. */
  static async start(name: string, script: Script, others: grpc.UntypedServiceImplementation = {}): Promise<ScriptedNode> {
    const server = new grpc.Server();
    let node: ScriptedNode | null = null;
    server.addService(raftLogService, {
      ...others,
      Subscribe: (call: SubscribeCall) => {
        const self = node as ScriptedNode;
        self.requests.push(call.request);
        Promise.resolve(script(call)).catch((error: unknown) => {
          call.emit('error', { code: grpc.status.INTERNAL, details: `script of ${name} failed: ${String(error)}` });
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    node = new ScriptedNode(server, `127.0.0.1:${port}`);
    scripted.push(node);
    return node;
  }

  /** Writes a reply and resolves once gRPC has taken it (flow control may hold it back). */
  async send(call: SubscribeCall, reply: OutgoingReply): Promise<void> {
    await new Promise<void>((resolve) => call.write(reply, () => resolve()));
    this.written++;
  }

  stop(): void {
    this.server.forceShutdown();
  }
}

function appendEntry(index: number, record = `r${index}`) {
  return { index, term: 1, kind: 'LOG_ENTRY_KIND_APPEND' as const, record: Buffer.from(record), key: Buffer.alloc(0) };
}

/** A reply covering first..last holding appends at `indexes`. */
function reply(first: number, last: number, indexes: readonly number[] = range(first, last), node = 'n1'): OutgoingReply {
  return {
    entries: indexes.map((index) => appendEntry(index)),
    firstIndex: first,
    lastIndex: last,
    commitIndex: Math.max(last, 1),
    node,
    leader: 'n1',
  };
}

function endWith(call: SubscribeCall, code: grpc.status, details: string, trailers: Record<string, string> = {}): void {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  call.emit('error', { code, details, metadata });
}

/** Never answers again; the call ends when the client cancels it. */
function hang(call: SubscribeCall): Promise<void> {
  return new Promise((resolve) => call.on('cancelled', () => resolve()));
}

describe('subscribe() against scripted nodes', () => {
  it('throws when a reply skips an index, after handing out the entries before the gap', async () => {
    const node = await ScriptedNode.start('n1', async (call) => {
      await node.send(call, reply(1, 2));
      await node.send(call, reply(4, 5)); // index 3 is neither delivered nor covered
      await hang(call);
    });
    const subscription = subscribe(client([node.address]), {});

    const first = await take(subscription, 2);
    expect(first.map((entry) => entry.index)).toEqual([1, 2]);
    const error = await rejection(subscription.next());
    expect(error).toBeInstanceOf(RaftLogError);
    expect((error as RaftLogError).message).toMatch(/covering 4\.\.5; expected it to start at 3/);
    expect((error as RaftLogError).message).toMatch(/indexes 3\.\.3 would be skipped/);
    expect(subscription.coveredThrough).toBe(2);
    expect(await subscription.next()).toEqual({ done: true, value: undefined });
  });

  it('throws when a reply holds an entry outside the range it covers, or entries out of order', async () => {
    const outside = await ScriptedNode.start('n1', async (call) => {
      await outside.send(call, reply(1, 3, [1, 4]));
      await hang(call);
    });
    const outOfOrder = await ScriptedNode.start('n2', async (call) => {
      await outOfOrder.send(call, reply(1, 3, [2, 1]));
      await hang(call);
    });

    const error1 = await rejection(subscribe(client([outside.address]), {}).next());
    expect((error1 as RaftLogError).message).toMatch(/sent entry 4 outside the range 1\.\.3/);
    const error2 = await rejection(subscribe(client([outOfOrder.address]), {}).next());
    expect((error2 as RaftLogError).message).toMatch(/sent entry 1 after entry 2: out of order/);
  });

  it('after a node fails mid-stream, resumes on the next endpoint right after the last index covered, heartbeats included', async () => {
    const a = await ScriptedNode.start('a', async (call) => {
      await a.send(call, reply(1, 3));
      await a.send(call, reply(4, 3, [])); // a heartbeat: covers nothing
      await a.send(call, reply(4, 6, [5])); // 4 and 6 filtered out
      endWith(call, grpc.status.UNAVAILABLE, 'node a is shutting down');
    });
    const b = await ScriptedNode.start('b', async (call) => {
      const from = Number(call.request.fromIndex);
      await b.send(call, reply(from, 8, range(from, 8), 'b'));
      await hang(call);
    });
    const subscription = subscribe(client([a.address, b.address]), { from: 1 });

    const entries = await take(subscription, 6);
    expect(entries.map((entry) => entry.index)).toEqual([1, 2, 3, 5, 7, 8]);
    expect(b.requests.map((request) => request.fromIndex)).toEqual(['7']);
    expect(subscription.reconnects).toBe(1);
    expect(subscription.node).toBe('b');
    expect(subscription.coveredThrough).toBe(8);
  });

  it('moves on when no reply comes for stallTimeoutMs', async () => {
    const a = await ScriptedNode.start('a', async (call) => {
      await a.send(call, reply(1, 2));
      await hang(call); // alive, but silent: no heartbeat
    });
    const b = await ScriptedNode.start('b', async (call) => {
      await b.send(call, reply(3, 3, [3], 'b'));
      await hang(call);
    });
    const subscription = subscribe(client([a.address, b.address]), { stallTimeoutMs: 2000 });

    expect((await take(subscription, 3)).map((entry) => entry.index)).toEqual([1, 2, 3]);
    expect(b.requests[0]?.fromIndex).toBe('3');
  });

  it('moves on when the node has known no leader for stallTimeoutMs, heartbeats or not', async () => {
    const a = await ScriptedNode.start('a', async (call) => {
      await a.send(call, reply(1, 1));
      while (!call.cancelled) await a.send(call, { ...reply(2, 1, []), leader: '' });
    });
    const b = await ScriptedNode.start('b', async (call) => {
      await b.send(call, reply(2, 2, [2], 'b'));
      await hang(call);
    });
    const subscription = subscribe(client([a.address, b.address]), { stallTimeoutMs: 2000 });

    expect((await take(subscription, 2)).map((entry) => entry.index)).toEqual([1, 2]);
    expect(subscription.node).toBe('b');
  });

  it('ends with RaftLogCompactedError, giving the first index the node holds, when the start was compacted', async () => {
    const node = await ScriptedNode.start('n1', (call) =>
      endWith(call, grpc.status.OUT_OF_RANGE, 'node n1: cannot read from index 1: the log starts at 5001', { [FIRST_INDEX_METADATA_KEY]: '5001' }),
    );
    const error = await rejection(subscribe(client([node.address]), { from: 1 }).next());
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect((error as RaftLogCompactedError).firstIndex).toBe(5001);
    expect((error as RaftLogCompactedError).fromIndex).toBe(1);
    expect(node.requests).toHaveLength(1);
  });

  it('a start one node no longer holds is read from another node that still does: nodes compact (and keep changes) each on its own', async () => {
    const compacted = await ScriptedNode.start('a', (call) =>
      endWith(call, grpc.status.OUT_OF_RANGE, 'node a: cannot read changes from index 1: the changes view starts at 40', {
        [FIRST_INDEX_METADATA_KEY]: '40',
      }),
    );
    const holding = await ScriptedNode.start('b', async (call) => {
      await holding.send(call, reply(1, 2, [1, 2], 'b'));
      await hang(call);
    });
    const subscription = subscribe(client([compacted.address, holding.address]), { from: 1 });
    expect((await take(subscription, 2)).map((entry) => entry.index)).toEqual([1, 2]);
    expect(compacted.requests).toHaveLength(1);
    expect(subscription.node).toBe('b');
  });

  it('a start one node no longer holds and the other node is down: the subscription ends with RaftLogCompactedError, not a wait for ever', async () => {
    const compacted = await ScriptedNode.start('a', (call) =>
      endWith(call, grpc.status.OUT_OF_RANGE, 'node a: cannot read from index 1: the log starts at 40', { [FIRST_INDEX_METADATA_KEY]: '40' }),
    );
    const down = `127.0.0.1:${await freePort()}`;
    const error = await rejection(subscribe(client([compacted.address, down]), { from: 1 }).next());
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect((error as RaftLogCompactedError).firstIndex).toBe(40);
  });

  it('ends with RaftLogInvalidArgumentError when the node rejects the request, without trying again', async () => {
    const a = await ScriptedNode.start('a', (call) => endWith(call, grpc.status.INVALID_ARGUMENT, 'cannot filter by entry kind LOG_ENTRY_KIND_X'));
    const b = await ScriptedNode.start('b', hang);
    const error = await rejection(subscribe(client([a.address, b.address]), {}).next());
    expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect((error as Error).message).toMatch(/LOG_ENTRY_KIND_X/);
    expect(b.requests).toHaveLength(0);
  });

  it('rejects malformed options before sending anything', async () => {
    const node = await ScriptedNode.start('n1', hang);
    const c = client([node.address]);
    const malformed: unknown[] = [
      { from: 0 },
      { from: 1.5 },
      { from: 3, fromTail: true },
      { consumer: 'c', from: 2, fromTail: true },
      { consumer: '' },
      { consumer: 'x'.repeat(201) },
      { view: 'physical' },
      { kinds: ['append', 'upsert'] },
      { keyPrefix: 'k'.repeat(4097) },
      { stallTimeoutMs: 500 },
      { endpoint: 'not an endpoint' },
      { autoCommit: { everyEntries: 10 } },
      { consumer: 'c', autoCommit: {} },
      { consumer: 'c', autoCommit: { everyEntries: 0 } },
      { fromIndex: 5 },
    ];
    for (const options of malformed) {
      expect(() => c.subscribe(options as SubscribeOptions), JSON.stringify(options)).toThrow(RaftLogInvalidArgumentError);
    }
    expect(node.requests).toHaveLength(0);
  });

  it('ends cleanly, without an error, when its signal aborts or it is closed while waiting', async () => {
    const node = await ScriptedNode.start('n1', async (call) => {
      await node.send(call, reply(1, 1));
      await hang(call);
    });
    const c = client([node.address]);
    const controller = new AbortController();
    const aborted = subscribe(c, { signal: controller.signal });
    const seen: number[] = [];
    const loop = (async () => {
      for await (const entry of aborted) {
        seen.push(entry.index);
        controller.abort();
      }
    })();
    await loop;
    expect(seen).toEqual([1]);

    const closed = subscribe(c, {});
    await take(closed, 1);
    const pending = closed.next();
    await closed.close();
    expect(await pending).toEqual({ done: true, value: undefined });
  });

  it('ends with an error saying so when the client is closed under it', async () => {
    const node = await ScriptedNode.start('n1', async (call) => {
      await node.send(call, reply(1, 1));
      await hang(call);
    });
    const c = client([node.address]);
    const subscription = subscribe(c, {});
    await take(subscription, 1);
    const pending = subscription.next();
    c.close();
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(RaftLogError);
    expect((error as Error).message).toMatch(/the client is closed/);
  });

  it('autoCommit tries a failed commit again at the next occasion, with the position taken by then', async () => {
    const commits: string[] = [];
    const node = await ScriptedNode.start(
      'n1',
      async (call) => {
        for (let i = 1; i <= 5; i++) await node.send(call, reply(i, i));
        await hang(call);
      },
      {
        CommitPosition: (
          call: grpc.ServerUnaryCall<RaftLogMethods['CommitPosition']['request'], RaftLogMethods['CommitPosition']['outgoingReply']>,
          callback: grpc.sendUnaryData<RaftLogMethods['CommitPosition']['outgoingReply']>,
        ) => {
          commits.push(String(call.request.position));
          if (commits.length === 1) callback({ code: grpc.status.FAILED_PRECONDITION, details: 'scripted refusal' });
          else callback(null, { entry: { index: 100 + commits.length, term: 1 }, leader: 'n1', position: call.request.position });
        },
      },
    );
    const subscription = subscribe(client([node.address]), { consumer: 'c', autoCommit: { everyEntries: 1 } });

    await take(subscription, 2); // has taken entry 1: commits 1, which the node refuses
    await waitFor('the first commit to fail', () => subscription.lastCommitError !== null, WAIT_MS);
    expect(subscription.lastCommitError?.message).toMatch(/scripted refusal/);
    await take(subscription, 1); // has taken entry 2: commits 2
    await waitFor('the second commit', () => subscription.committedPosition === 2, WAIT_MS);
    expect(commits).toEqual(['1', '2']);
    expect(subscription.lastCommitError).toBeNull();
    await subscription.close(); // holds entry 3: has taken 2, already committed
    expect(commits).toEqual(['1', '2']);
  });

  it('reads nothing more while the caller holds back: the node is held up by flow control, and nothing is lost', async () => {
    const TOTAL = 60;
    const big = 'x'.repeat(256 * 1024);
    const node = await ScriptedNode.start('n1', async (call) => {
      for (let i = 1; i <= TOTAL && !call.cancelled; i++) {
        await node.send(call, { ...reply(i, i, []), entries: [appendEntry(i, `${i}:${big}`)] });
      }
      await hang(call);
    });
    const subscription = subscribe(client([node.address]), {});

    expect((await take(subscription, 1))[0]?.index).toBe(1);
    // Wait until the node's writes stop moving: the caller holds entry 1 and takes nothing more.
    let seen = -1;
    await waitFor(
      'the node to stop getting replies out',
      () => {
        const settled = node.written === seen;
        seen = node.written;
        return settled;
      },
      { timeoutMs: WAIT_MS, intervalMs: 1000 },
    );
    // 256 KiB replies: the one handed out, one queued, one held at the gate, and what HTTP/2's
    // windows take. Reading on into grpc-js's own buffer (16 replies) would exceed this.
    expect(node.written).toBeLessThan(12);

    const rest = await take(subscription, TOTAL - 1);
    expect(rest.map((entry) => entry.index)).toEqual(range(2, TOTAL));
    expect(rest.every((entry) => text(entry.record)?.startsWith(`${entry.index}:`))).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Real node processes.
// ---------------------------------------------------------------------------

/** A client of every node of the cluster, with node ids so that it can go straight to the leader. */
function clusterClient(c: ProcessCluster): RaftLogClient {
  return client(c.ids.map((id) => `${id}=${c.address(id)}`));
}

/** Takes entries until one at `index` or beyond, failing if the indexes are not contiguous from the subscription's start. */
async function takeThrough(subscription: LogSubscription, index: number, into: SubscribedEntry[] = []): Promise<SubscribedEntry[]> {
  while ((into.at(-1)?.index ?? 0) < index) {
    const next = await subscription.next();
    if (next.done === true) throw new Error(`the subscription ended at index ${into.at(-1)?.index ?? 0}, before ${index}`);
    const previous = into.at(-1);
    if (previous !== undefined && next.value.index !== previous.index + 1) {
      throw new Error(`entry ${next.value.index} came after entry ${previous.index}`);
    }
    into.push(next.value);
  }
  return into;
}

/** Indexes that are not 1, 2, 3, ... in order, as readable lines (none when they are). */
function gapsAndRepeats(indexes: readonly number[]): string[] {
  const problems: string[] = [];
  indexes.forEach((index, i) => {
    if (index !== i + 1) problems.push(`position ${i} holds index ${index}, expected ${i + 1}`);
  });
  return problems.slice(0, 10);
}

describe('subscribe() on a cluster of node processes', () => {
  it('delivers the whole log from index 1 in order without a gap, then entries committed later', async () => {
    cluster = await ProcessCluster.start(3);
    await cluster.waitForLeader(cluster.ids, WAIT_MS);
    const c = clusterClient(cluster);
    const acknowledged = new Map<number, string>();
    for (let i = 1; i <= 40; i++) acknowledged.set((await c.append(`before-${i}`)).index, `before-${i}`);
    await c.put('k', 'v');
    const lastBefore = Math.max(...acknowledged.keys());

    const subscription = subscribe(c, {});
    const entries = await takeThrough(subscription, lastBefore);
    expect(entries[0]?.index).toBe(1);
    for (let i = 1; i <= 10; i++) acknowledged.set((await c.append(`after-${i}`)).index, `after-${i}`);
    const last = Math.max(...acknowledged.keys());
    await takeThrough(subscription, last, entries);

    expect(gapsAndRepeats(entries.map((entry) => entry.index))).toEqual([]);
    for (const [index, record] of acknowledged) {
      expect(entries[index - 1]?.kind).toBe('append');
      expect(text(entries[index - 1]?.record ?? null)).toBe(record);
    }
    expect(entries.some((entry) => entry.kind === 'put' && text(entry.key) === 'k' && text(entry.value) === 'v')).toBe(true);
    expect(subscription.coveredThrough).toBeGreaterThanOrEqual(last);
    expect(cluster.ids).toContain(subscription.node);
    expect(subscription.reconnects).toBe(0);
  });

  it('filters by kind and key prefix, and shows the changes view, covering the indexes it leaves out', async () => {
    cluster = await ProcessCluster.start(3);
    await cluster.waitForLeader(cluster.ids, WAIT_MS);
    const c = clusterClient(cluster);
    await c.put('user/1', 'a');
    await c.put('other/1', 'b');
    const appended = await c.append('a record');
    await c.compareAndSwap('user/1', 'a', 'c'); // succeeds
    await c.compareAndSwap('user/1', 'zz', 'd'); // fails its comparison: changes nothing
    await c.delete('user/1');
    const last = await c.put('user/2', 'e');

    const appends = subscribe(c, { kinds: ['append'] });
    const [onlyAppend] = await take(appends, 1);
    expect(onlyAppend?.index).toBe(appended.index);
    expect(text(onlyAppend?.record ?? null)).toBe('a record');
    await waitFor('the append subscription to cover the entries it filters out', () => appends.coveredThrough >= last.index, WAIT_MS);

    const users = await take(subscribe(c, { keyPrefix: 'user/' }), 5);
    expect(users.map((entry) => entry.kind)).toEqual(['put', 'cas', 'cas', 'delete', 'put']);
    expect(users.map((entry) => text(entry.key))).toEqual(['user/1', 'user/1', 'user/1', 'user/1', 'user/2']);
    expect([text(users[1]?.expected ?? null), text(users[1]?.value ?? null)]).toEqual(['a', 'c']);
    expect(users.every((entry) => entry.changes.length === 0)).toBe(true);

    const changes = await take(subscribe(c, { view: 'changes', keyPrefix: 'user/' }), 4);
    const described = changes.map((entry) =>
      entry.changes.map((change) => `${entry.kind} ${text(change.key)}: ${text(change.before)} -> ${text(change.after)}`).join('; '),
    );
    expect(described).toEqual(['put user/1: null -> a', 'cas user/1: a -> c', 'delete user/1: c -> null', 'put user/2: null -> e']);
    expect(changes.every((entry) => entry.value === null && entry.record === null)).toBe(true);
  });

  it.each([
    ['killed (SIGKILL)', (c: ProcessCluster, id: string) => c.kill(id)],
    ['stopped (SIGTERM)', (c: ProcessCluster, id: string) => c.stop(id)],
    // Frozen with its connections open: only the stall timeout (5 s by default) tells.
    ['paused (SIGSTOP)', (c: ProcessCluster, id: string) => c.pause(id)],
  ])('a subscriber whose node is %s resumes on another node and sees every acknowledged append exactly once, in order', async (_how, fault) => {
    cluster = await ProcessCluster.start(3);
    const c = cluster;
    const leader = await c.waitForLeader(c.ids, WAIT_MS);
    const follower = c.ids.find((id) => id !== leader) as string;
    const writer = clusterClient(c);
    const subscription = subscribe(clusterClient(c), { endpoint: c.address(follower) });

    const received: SubscribedEntry[] = [];
    let readError: unknown = null;
    const reading = (async () => {
      for await (const entry of subscription) received.push(entry);
    })().catch((error: unknown) => (readError = error));
    const acknowledged = new Map<number, string>();
    let writing = true;
    let failedWrites = 0;
    const writes = (async () => {
      for (let n = 1; writing; n++) {
        try {
          acknowledged.set((await writer.append(`w${n}`)).index, `w${n}`);
        } catch {
          failedWrites++; // not acknowledged: it may or may not be in the log, and either is fine
        }
      }
    })();

    try {
      await waitFor(
        'appends acknowledged and received on the follower',
        () => readError !== null || (acknowledged.size >= 30 && received.length >= 20),
        WAIT_MS,
      );
      expect(subscription.node).toBe(follower);
      await fault(c, follower);
      const atFault = acknowledged.size;
      await waitFor('appends acknowledged after the fault', () => acknowledged.size >= atFault + 30, WAIT_MS);
    } finally {
      writing = false;
      await writes;
    }
    const last = Math.max(...acknowledged.keys());
    await waitFor(`the subscriber to receive index ${last}`, () => readError !== null || (received.at(-1)?.index ?? 0) >= last, WAIT_MS);
    await subscription.close();
    await reading;
    expect(readError).toBeNull();

    expect(gapsAndRepeats(received.map((entry) => entry.index))).toEqual([]);
    const missing = [...acknowledged].filter(([index, record]) => text(received[index - 1]?.record ?? null) !== record);
    expect(missing).toEqual([]);
    expect(subscription.reconnects).toBeGreaterThanOrEqual(1);
    expect(subscription.node).not.toBe(follower);
    expect(failedWrites).toBeLessThan(acknowledged.size);
  });

  it('a start the node has compacted away ends with RaftLogCompactedError, and a start at its firstIndex works', async () => {
    cluster = await ProcessCluster.start(3, ['--snapshot-entries', '50', '--retain-entries', '10']);
    await cluster.waitForLeader(cluster.ids, WAIT_MS);
    const c = clusterClient(cluster);
    let last = 0;
    for (let i = 1; i <= 200; i++) last = (await c.append(`r${i}`)).index;
    // Settled on every node (the subscription asks each before it gives up): no snapshot is due (fewer
    // than 50 applied since the latest), and the log behind the latest is compacted down to the 10 retained.
    const firstIndexes = new Map<string, number>();
    for (const id of cluster.ids) {
      const address = cluster.address(id);
      const status = await waitFor(
        `${id} to snapshot and compact its log`,
        async () => {
          const s = await c.status(address);
          const settled =
            s.appliedIndex >= last && s.appliedIndex - s.snapshotIndex < 50 && s.snapshotIndex > 0 && s.firstLogIndex === s.snapshotIndex - 9;
          return settled ? s : undefined;
        },
        WAIT_MS,
      );
      expect(status.firstLogIndex).toBeGreaterThan(1);
      firstIndexes.set(address, status.firstLogIndex);
    }

    const error = await rejection(subscribe(c, { from: 1, endpoint: cluster.address('n1') }).next());
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    const { endpoint, firstIndex } = error as RaftLogCompactedError;
    expect(firstIndexes.has(endpoint as string)).toBe(true);
    expect(firstIndex).toBe(firstIndexes.get(endpoint as string));

    const [first] = await take(subscribe(c, { from: firstIndex, endpoint: endpoint as string }), 1);
    expect(first?.index).toBe(firstIndex);
  });

  it("a caller that holds on to an entry holds up neither its client's other calls nor anything it is shown later", async () => {
    cluster = await ProcessCluster.start(3);
    const leader = await cluster.waitForLeader(cluster.ids, WAIT_MS);
    const follower = cluster.ids.find((id) => id !== leader) as string;
    // One endpoint: the subscription and the other calls share one connection.
    const c = client([cluster.address(follower)]);
    const big = 'x'.repeat(100 * 1024);
    let last = 0;
    for (let i = 1; i <= 30; i++) last = (await c.append(`${i}:${big}`)).index;

    const subscription = subscribe(c, {});
    const entries = await takeThrough(subscription, 1);
    const put = await c.put('during', 'the hold');
    expect(put.index).toBeGreaterThan(last);
    expect(text((await c.get('during')).value)).toBe('the hold');

    await takeThrough(subscription, put.index, entries);
    expect(gapsAndRepeats(entries.map((entry) => entry.index))).toEqual([]);
    expect(entries.filter((entry) => entry.kind === 'append')).toHaveLength(30);
  });
});
