/**
 * ReadLog at compacted positions, from RaftNode.readCommittedLog through the
 * real client service to the real client, without a node process: the node
 * is a RaftNode whose consensus core is a stand-in holding entries
 * firstIndex..commitIndex, as a core does after compacting into a snapshot.
 * (A test with real processes, where the node compacts on its own, belongs
 * with the compaction wiring.)
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftLogCompactedError, RaftLogError } from '../../src/client/index.js';
import { DescribedEntries } from '../../src/node/described-entries.js';
import { ClientError } from '../../src/node/errors.js';
import { encodeCommand } from '../../src/node/kv-commands.js';
import { RaftNode } from '../../src/node/raft-node.js';
import type { Entry } from '../../src/raft/types.js';
import { ClientServiceHarness } from '../support/client-service-harness.js';
import { rejection } from '../support/rejection.js';

const FIRST_INDEX = 5001;
const COMMIT_INDEX = 5010;

const wire = new ClientServiceHarness();
afterEach(() => wire.close());

/** A RaftNode n1 whose core holds the appends firstIndex..commitIndex, all committed; readCommittedLog reads nothing else. */
function nodeHolding(firstIndex: number, commitIndex: number): RaftNode {
  const core = {
    status: () => ({ firstIndex, commitIndex }),
    entryAt: (index: number): Entry | null =>
      index < firstIndex || index > commitIndex
        ? null
        : { index, term: 2, kind: 'command', data: encodeCommand({ op: 'append', record: new TextEncoder().encode(`record ${index}`) }) },
  };
  return Object.assign(Object.create(RaftNode.prototype) as RaftNode, { options: { id: 'n1' }, core, described: new DescribedEntries() });
}

describe('RaftNode.readCommittedLog after compaction', () => {
  it('answers OUT_OF_RANGE with the first index held, in words and as a fact, for any index before it', () => {
    const node = nodeHolding(FIRST_INDEX, COMMIT_INDEX);
    for (const from of [1, 4000, FIRST_INDEX - 1]) {
      const error = (() => {
        try {
          node.readCommittedLog(from, 10);
        } catch (thrown) {
          return thrown;
        }
        throw new Error(`reading from ${from} succeeded`);
      })();
      expect(error).toBeInstanceOf(ClientError);
      expect(error).toMatchObject({
        code: grpc.status.OUT_OF_RANGE,
        facts: { firstIndex: FIRST_INDEX },
        message: `node n1: cannot read from index ${from}: entries before ${FIRST_INDEX} were compacted into a snapshot; the log starts at ${FIRST_INDEX}`,
      });
    }
  });

  it('reads from the first index held, and past the commit index reads nothing, as before', () => {
    const node = nodeHolding(FIRST_INDEX, COMMIT_INDEX);
    const page = node.readCommittedLog(FIRST_INDEX, 3);
    expect(page.commitIndex).toBe(COMMIT_INDEX);
    expect(page.entries.map((entry) => [entry.index, entry.kind, new TextDecoder().decode(entry.record)])).toEqual([
      [5001, 'LOG_ENTRY_KIND_APPEND', 'record 5001'],
      [5002, 'LOG_ENTRY_KIND_APPEND', 'record 5002'],
      [5003, 'LOG_ENTRY_KIND_APPEND', 'record 5003'],
    ]);
    expect(node.readCommittedLog(COMMIT_INDEX + 1, 10)).toEqual({ entries: [], commitIndex: COMMIT_INDEX });
  });
});

describe('ReadLog over gRPC after compaction', () => {
  it('reaches the client as RaftLogCompactedError with the first index from the trailing metadata; reading from it works', async () => {
    const endpoint = await wire.serve(nodeHolding(FIRST_INDEX, COMMIT_INDEX));
    const c = wire.client(endpoint);

    const error = await rejection(c.readLog(10));
    expect(error).toBeInstanceOf(RaftLogCompactedError);
    expect(error).toBeInstanceOf(RaftLogError);
    expect(error).toMatchObject({
      code: grpc.status.OUT_OF_RANGE,
      codeName: 'OUT_OF_RANGE',
      operation: 'readLog',
      endpoint,
      fromIndex: 10,
      firstIndex: FIRST_INDEX,
    });
    expect((error as Error).message).toBe(
      `readLog on ${endpoint}: node n1: cannot read from index 10: entries before 5001 were compacted into a snapshot; the log starts at 5001 (OUT_OF_RANGE)`,
    );

    const page = await c.readLog((error as RaftLogCompactedError).firstIndex, { maxEntries: 2 });
    expect(page).toMatchObject({ node: 'n1', commitIndex: COMMIT_INDEX });
    expect(page.entries.map((entry) => entry.index)).toEqual([5001, 5002]);
  });
});
