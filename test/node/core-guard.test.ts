/**
 * A broken invariant of the consensus core stops the node (fail-stop), on
 * every path into the core, not only on peer messages: a client's write,
 * linearizable read and membership change, and the clock's tick. The core
 * answers refusals as values, so anything it throws is such a break; the
 * fault is planted by making one method of a running node's core throw. The
 * caller hears UNAVAILABLE "node n1 is stopping: ..." (the step that threw
 * had no effect outside the process), never INTERNAL from a node that goes on
 * with a half-updated core. One in-process node of a one-node cluster per
 * test, on a free port and a temp dir, both removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogGrpcClient } from '../../src/node/client-proto.js';
import { ClientError } from '../../src/node/errors.js';
import { RaftNode } from '../../src/node/raft-node.js';
import type { RaftCore } from '../../src/raft/core.js';
import { capturingLogger, type LogLine } from '../support/capturing-logger.js';
import { rejection } from '../support/rejection.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 30_000;
const BROKEN = 'planted: the commit index is beyond the last index';

interface Started {
  readonly node: RaftNode;
  readonly lines: LogLine[];
  /** What onFatal was called with, in order. */
  readonly fatal: string[];
}

let running: { node: RaftNode; dir: string } | null = null;

afterEach(async () => {
  if (running === null) return;
  const { node, dir } = running;
  running = null;
  await node.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

async function startLeader(): Promise<Started> {
  const dir = await mkdtemp(join(tmpdir(), 'raftlog-core-guard-'));
  const { logger, lines } = capturingLogger();
  const fatal: string[] = [];
  let node: RaftNode;
  try {
    node = await RaftNode.start({
      id: 'n1',
      listen: '127.0.0.1:0',
      peers: new Map([['n1', '127.0.0.1:0']]),
      dataDir: join(dir, 'n1'),
      logger,
      onFatal: (reason) => fatal.push(reason),
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  running = { node, dir };
  await waitFor('n1 to lead its one-node cluster', () => node.status().role === 'leader', WAIT_MS);
  return { node, lines, fatal };
}

/** Makes `method` of the node's core throw from now on, as a broken invariant would. */
function breakCore(node: RaftNode, method: 'propose' | 'readIndex' | 'proposeConfigChange' | 'tick'): void {
  const core = (node as unknown as { core: RaftCore }).core;
  core[method] = () => {
    throw new Error(BROKEN);
  };
}

const put = { op: 'put', key: Buffer.from('k'), value: Buffer.from('v') } as const;

/** What a node call failed with, whether it threw at once (a refusal) or rejected later. */
function refusal(call: () => Promise<unknown>): Promise<unknown> {
  return rejection((async () => call())());
}

/** The node stopped by itself, said why once, and its stop has finished. */
async function expectFailStopped(started: Started, what: string): Promise<void> {
  const { node, lines, fatal } = started;
  const reason = `${what} failed: ${BROKEN}`;
  expect(node.isStopped).toBe(true);
  expect(node.fatal).toBe(reason);
  expect(fatal).toEqual([reason]);
  await node.stop();
  const fatalLines = lines.filter((line) => line.event === 'fatal');
  expect(fatalLines.map((line) => line.failed)).toEqual([what]);
  expect(lines.some((line) => line.event === 'stopped')).toBe(true);
  // After the stop a caller is told why, not served.
  const later = await refusal(() => node.propose(put, Date.now() + 5_000));
  expect(later).toMatchObject({ code: grpc.status.UNAVAILABLE, message: `node n1 is stopping: ${reason}` });
}

describe('a core that throws on a call from a client', () => {
  it('stops the node, and the gRPC client of the write gets UNAVAILABLE saying why, not INTERNAL', async () => {
    const started = await startLeader();
    const { node } = started;
    const written = await node.propose(put, Date.now() + 10_000);
    expect(written.index).toBeGreaterThan(0);
    breakCore(node, 'propose');

    const client = new RaftLogGrpcClient(`127.0.0.1:${node.port}`, grpc.credentials.createInsecure());
    type Unary = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void) => void;
    const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
      (client as unknown as { put: Unary }).put.call(
        client,
        { key: Buffer.from('k2'), value: Buffer.from('v') },
        { deadline: Date.now() + 10_000 },
        resolve,
      ),
    ).finally(() => client.close());

    expect(refused?.code).toBe(grpc.status.UNAVAILABLE);
    expect(refused?.details).toBe(`node n1 is stopping: proposing a command failed: ${BROKEN}`);
    await expectFailStopped(started, 'proposing a command');
  });

  it('stops the node on a linearizable read', async () => {
    const started = await startLeader();
    breakCore(started.node, 'readIndex');

    const refused = await refusal(() => started.node.linearizableGet(Buffer.from('k'), Date.now() + 10_000));

    expect(refused).toBeInstanceOf(ClientError);
    expect(refused).toMatchObject({ code: grpc.status.UNAVAILABLE, message: `node n1 is stopping: asking for a read index failed: ${BROKEN}` });
    await expectFailStopped(started, 'asking for a read index');
  });

  it('stops the node on a membership change', async () => {
    const started = await startLeader();
    breakCore(started.node, 'proposeConfigChange');

    const refused = await refusal(() =>
      started.node.changeMembership({ type: 'add-learner', id: 'n2', address: '127.0.0.1:1' }, Date.now() + 10_000),
    );

    expect(refused).toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expectFailStopped(started, 'proposing configuration change add-learner n2');
  });
});

describe('a core that throws on a tick of the clock', () => {
  it('stops the node by itself, with no uncaught exception', async () => {
    const started = await startLeader();

    breakCore(started.node, 'tick');
    await waitFor('n1 to fail-stop', () => started.node.fatal !== null, WAIT_MS);

    await expectFailStopped(started, 'a tick of the logical clock');
  });
});
