/**
 * A node listens before it has loaded its log (so that a node that cannot
 * listen never touches its data dir). Meanwhile its peers' messages must be
 * answered UNAVAILABLE, "starting", which a sender takes for a peer not
 * reachable yet and retries quietly, not UNIMPLEMENTED, which it takes for a
 * refusal and logs as a warning (it did, on every restart of a peer, and a
 * process test that expected the real refusal read that one first). The
 * failpoint node-start holds one in-process node in that state.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Failpoints } from '../../src/node/failpoints.js';
import { RaftNode } from '../../src/node/raft-node.js';
import { streamMethod } from '../../src/node/raft-proto.js';
import { snapshotOfferMethod, type WireSnapshotOffer } from '../../src/node/snapshot-transfer.js';
import { capturingLogger } from '../support/capturing-logger.js';
import { freePort } from '../support/free-ports.js';
import { waitFor } from '../support/wait-for.js';

const WAIT_MS = 30_000;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** How a peer's Stream call with no batch ends at `address`: the error, or null for an answer. */
function streamStatus(client: grpc.Client): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(streamMethod.path, streamMethod.requestSerialize, streamMethod.responseDeserialize, (error) =>
      resolve(error ?? null),
    );
    call.end();
  });
}

const offer: WireSnapshotOffer = {
  from: 'n2',
  to: 'n1',
  cluster: 'default',
  term: 1,
  index: 1,
  snapshotTerm: 1,
  voters: ['n1', 'n2'],
  totalBytes: 1,
  sha256: new Uint8Array(32),
};

function offerStatus(client: grpc.Client): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      snapshotOfferMethod.path,
      snapshotOfferMethod.requestSerialize,
      snapshotOfferMethod.responseDeserialize,
      offer,
      (error: grpc.ServiceError | null) => resolve(error ?? null),
    );
  });
}

describe('a node that is still loading its log', () => {
  it("answers peers' calls UNAVAILABLE (starting), not UNIMPLEMENTED, and serves them once loaded", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-starting-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { logger } = capturingLogger();
    const failpoints = new Failpoints(logger);
    // The fault: the node is held after it listens, before it opens its log.
    failpoints.set('node-start', 'pause');
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const starting = RaftNode.start({
      id: 'n1',
      listen: address,
      peers: new Map([['n1', address]]),
      dataDir: join(dir, 'n1'),
      logger,
      failpoints,
    });
    cleanups.push(async () => {
      failpoints.set('node-start', 'off');
      await (await starting).stop();
    });
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    cleanups.push(async () => client.close());

    // The first call may find nothing listening yet: wait until one is answered.
    const whileStarting = await waitFor(
      'n1 to listen',
      async () => {
        const error = await streamStatus(client);
        return error?.details.includes('starting') ? error : undefined;
      },
      { timeoutMs: WAIT_MS, intervalMs: 100 },
    );
    expect(whileStarting.code).toBe(grpc.status.UNAVAILABLE);
    expect(whileStarting.details).toBe('node n1 is starting');
    const offered = await offerStatus(client);
    expect({ code: offered?.code, details: offered?.details }).toEqual({ code: grpc.status.UNAVAILABLE, details: 'node n1 is starting' });

    // Released, the node loads its log and the real peer service answers: an empty stream is not refused as starting.
    failpoints.set('node-start', 'off');
    const node = await starting;
    await waitFor('n1 to lead its one-node cluster', () => node.status().role === 'leader', WAIT_MS);
    const loaded = await streamStatus(client);
    expect(loaded?.details ?? 'answered').not.toContain('starting');
    expect(loaded?.code).not.toBe(grpc.status.UNIMPLEMENTED);
  });
});
