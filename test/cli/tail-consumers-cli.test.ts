/**
 * `raftlog tail`, `consumers` and the exactly-once `append` against scripted
 * nodes: what real nodes do only by chance or never (a gap in a stream, a
 * retried write the cluster had applied before, a reply that runs past the
 * end of a tail), and bytes that are not UTF-8.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  AppendRecordRequest,
  CommitPositionReply,
  CommitPositionRequest,
  ConsumersReply,
  ConsumersRequest,
  LogEntry,
  RegisterProducerReply,
  SubscribeReply,
  SubscribeRequest,
  WireLogEntryKind,
  WriteReply,
} from '../../src/api/client-api.js';
import { collectRun, type Run } from '../support/collect-run.js';
import { type ScriptedHandlers, ScriptedNode } from './scripted-node.js';

const BIN = fileURLToPath(new URL('../../bin/raftlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** How long one CLI run may take before the test kills it. */
const RUN_LIMIT_MS = 30_000;

let children: ChildProcess[] = [];
let nodes: ScriptedNode[] = [];

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const node of nodes) node.stop();
  children = [];
  nodes = [];
});

async function scripted(handlers: ScriptedHandlers): Promise<ScriptedNode> {
  const node = await ScriptedNode.start(handlers);
  nodes.push(node);
  return node;
}

function raftlog(node: ScriptedNode, args: readonly string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RAFTLOG_ENDPOINTS;
  const all = ['--endpoints', node.endpoint, ...args];
  const child = spawn(process.execPath, [BIN, ...all], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return collectRun(child, `raftlog ${all.join(' ')}`, RUN_LIMIT_MS);
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

type OutgoingEntry = LogEntry<number, Uint8Array>;
type OutgoingReply = SubscribeReply<number, Uint8Array>;

function entry(index: number, kind: WireLogEntryKind, fields: Partial<OutgoingEntry> = {}): OutgoingEntry {
  return { index, term: 2, kind, record: new Uint8Array(0), key: new Uint8Array(0), ...fields };
}

function reply(first: number, last: number, entries: OutgoingEntry[], commitIndex = last): OutgoingReply {
  return { entries, firstIndex: first, lastIndex: last, commitIndex, node: 'n1', leader: 'n1' };
}

const text = (value: string) => Buffer.from(value);

/** Subscribe that writes these replies, then keeps the stream open (as a node does while nothing new is committed). */
function subscribeWith(replies: OutgoingReply[], requests: SubscribeRequest[] = []): grpc.UntypedHandleCall {
  return (call: grpc.ServerWritableStream<SubscribeRequest, OutgoingReply>) => {
    requests.push(call.request);
    for (const message of replies) call.write(message);
  };
}

function consumersAt(commitIndex: number): grpc.UntypedHandleCall {
  return (_call: grpc.ServerUnaryCall<ConsumersRequest, ConsumersReply<number>>, callback: grpc.sendUnaryData<ConsumersReply<number>>) =>
    callback(null, { consumers: [], commitIndex, readIndex: commitIndex, node: 'n1' });
}

describe('raftlog tail against a scripted node', () => {
  it('ends at the commit index the cluster reported when it began, though the stream goes on', async () => {
    const requests: SubscribeRequest[] = [];
    const node = await scripted({
      Consumers: consumersAt(3),
      Subscribe: subscribeWith(
        [
          reply(
            1,
            5,
            [1, 2, 3, 4, 5].map((i) => entry(i, 'LOG_ENTRY_KIND_APPEND', { record: text(`event ${i}`) })),
          ),
        ],
        requests,
      ),
    });
    const run = await raftlog(node, ['tail', '--from', '1']);
    expect(run).toEqual({
      code: 0,
      stdout: ['1  term 2  append  "event 1"', '2  term 2  append  "event 2"', '3  term 2  append  "event 3"', ''].join('\n'),
      stderr: '',
    });
    expect(requests).toMatchObject([{ fromIndex: '1', view: 'SUBSCRIBE_VIEW_COMMANDS', consumer: '' }]);
  });

  it('ends once filtered-out ranges cover the end, with no entry to print past it', async () => {
    const requests: SubscribeRequest[] = [];
    const node = await scripted({
      Consumers: consumersAt(8),
      // Only puts under "user/": the node sends the one that matches, then ranges that hold none.
      Subscribe: subscribeWith(
        [reply(3, 4, [entry(4, 'LOG_ENTRY_KIND_PUT', { key: text('user/1'), value: text('ann') })]), reply(5, 9, [])],
        requests,
      ),
    });
    const run = await raftlog(node, ['tail', '--from', '3', '--kinds', 'put', '--prefix', 'user/']);
    expect(run).toEqual({ code: 0, stdout: '4  term 2  put  user/1="ann"\n', stderr: '' });
    expect(requests).toMatchObject([{ fromIndex: '3', kinds: ['LOG_ENTRY_KIND_PUT'], keyPrefix: Buffer.from('user/') }]);
  });

  it('prints bytes that are not UTF-8 as hex, and in --json as base64 with the encoding named', async () => {
    const binary = new Uint8Array([0xff, 0x00, 0x41]);
    const node = await scripted({
      Consumers: consumersAt(3),
      Subscribe: subscribeWith([
        reply(1, 3, [
          entry(1, 'LOG_ENTRY_KIND_APPEND', { record: binary, producer: { producerId: 9, sequence: 4, acknowledgedBelow: 4 } }),
          entry(2, 'LOG_ENTRY_KIND_COMPARE_AND_SWAP', { key: binary, value: text('new'), expectAbsent: true }),
          entry(3, 'LOG_ENTRY_KIND_COMMIT_POSITION', { consumer: 'billing', position: 2 }),
        ]),
      ]),
    });
    expect(await raftlog(node, ['tail'])).toEqual({
      code: 0,
      stdout: [
        '1  term 2  append  0xff0041  (producer 9 seq 4)',
        '2  term 2  cas  0xff0041="new" if absent',
        '3  term 2  commit-position  billing at 2',
        '',
      ].join('\n'),
      stderr: '',
    });
    const json = await raftlog(node, ['--json', 'tail']);
    expect(json.code).toBe(0);
    expect(lines(json.stdout).map((line) => JSON.parse(line) as unknown)).toEqual([
      { index: 1, term: 2, kind: 'append', record: { value: '/wBB', encoding: 'base64' }, producer: { id: 9, sequence: 4 } },
      { index: 2, term: 2, kind: 'cas', key: { value: '/wBB', encoding: 'base64' }, value: { value: 'new', encoding: 'utf8' }, expectAbsent: true },
      { index: 3, term: 2, kind: 'commit-position', consumer: 'billing', position: 2 },
    ]);
  });

  it('exits 5 naming the gap when a node skips indexes, after printing what came before it', async () => {
    const node = await scripted({
      Subscribe: subscribeWith([
        reply(1, 2, [entry(1, 'LOG_ENTRY_KIND_APPEND', { record: text('one') }), entry(2, 'LOG_ENTRY_KIND_APPEND', { record: text('two') })], 5),
        reply(4, 5, [entry(4, 'LOG_ENTRY_KIND_APPEND', { record: text('four') })], 5),
      ]),
    });
    const run = await raftlog(node, ['tail', '-f']);
    expect(run.code).toBe(5);
    expect(lines(run.stdout)).toEqual(['1  term 2  append  "one"', '2  term 2  append  "two"']);
    expect(lines(run.stderr)).toEqual([
      expect.stringMatching(
        /^error: subscribe: node n1 at 127\.0\.0\.1:\d+ sent a reply covering 4\.\.5; expected it to start at 3, .*\(indexes 3\.\.3 would be skipped\)/,
      ),
    ]);

    const json = await raftlog(node, ['--json', 'tail', '-f']);
    expect(json.code).toBe(5);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { kind: 'error', code: 'INTERNAL', operation: 'subscribe' } });
  });

  it('with --consumer, commits on exit the last index it printed, not the one past the end it was handed', async () => {
    const commits: CommitPositionRequest[] = [];
    const requests: SubscribeRequest[] = [];
    const node = await scripted({
      Consumers: consumersAt(5),
      // The consumer is at 3: the node starts after it.
      Subscribe: subscribeWith(
        [
          reply(
            4,
            6,
            [4, 5, 6].map((i) => entry(i, 'LOG_ENTRY_KIND_APPEND', { record: text(`event ${i}`) })),
          ),
        ],
        requests,
      ),
      CommitPosition: (
        call: grpc.ServerUnaryCall<CommitPositionRequest, CommitPositionReply<number>>,
        callback: grpc.sendUnaryData<CommitPositionReply<number>>,
      ) => {
        commits.push(call.request);
        callback(null, { entry: { index: 7, term: 2 }, leader: 'n1', position: Number(call.request.position) });
      },
    });
    const run = await raftlog(node, ['tail', '--consumer', 'billing']);
    expect(run).toEqual({ code: 0, stdout: '4  term 2  append  "event 4"\n5  term 2  append  "event 5"\n', stderr: '' });
    expect(requests).toMatchObject([{ consumer: 'billing', fromIndex: '1', fromTail: false }]);
    expect(commits).toEqual([{ consumer: 'billing', position: '5', allowBackwards: false }]);
  });
});

describe('raftlog append, exactly once', () => {
  it('stamps the record with a producer session, and says so when the cluster had applied it before', async () => {
    const appends: AppendRecordRequest[] = [];
    const node = await scripted({
      RegisterProducer: (
        _call: grpc.ServerUnaryCall<object, RegisterProducerReply<number>>,
        callback: grpc.sendUnaryData<RegisterProducerReply<number>>,
      ) => callback(null, { producerId: 41, entry: { index: 41, term: 3 }, leader: 'n1' }),
      Append: (call: grpc.ServerUnaryCall<AppendRecordRequest, WriteReply<number>>, callback: grpc.sendUnaryData<WriteReply<number>>) => {
        appends.push(call.request);
        callback(null, { position: { index: 42, term: 3 }, leader: 'n1', duplicate: true });
      },
    });
    expect(await raftlog(node, ['append', 'order 1'])).toEqual({
      code: 0,
      stdout: 'OK  appended at index 42 term 3 (leader n1, a retry of a write applied before)\n',
      stderr: '',
    });
    expect(appends).toMatchObject([{ record: Buffer.from('order 1'), producer: { producerId: '41', sequence: '1' } }]);

    const json = await raftlog(node, ['--json', 'append', 'order 1']);
    expect(JSON.parse(json.stdout)).toEqual({ command: 'append', index: 42, term: 3, leader: 'n1', endpoint: node.endpoint, duplicate: true });
  });

  it('exits 5 and writes nothing when the node knows no producer sessions', async () => {
    const appends: AppendRecordRequest[] = [];
    const node = await scripted({
      Append: (call: grpc.ServerUnaryCall<AppendRecordRequest, WriteReply<number>>, callback: grpc.sendUnaryData<WriteReply<number>>) => {
        appends.push(call.request);
        callback(null, { position: { index: 1, term: 1 }, leader: 'n1' });
      },
    });
    const run = await raftlog(node, ['append', 'order 1']);
    expect(run.code).toBe(5);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: append: no producer session could be registered \(.*RegisterProducer.*\); the write was not sent\n$/);
    expect(appends).toEqual([]);
  });
});
