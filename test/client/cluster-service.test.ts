/**
 * The node's membership service (src/node/cluster-service.ts) between the
 * real client and stand-in nodes: each stand-in reports a membership view
 * and carries out (or refuses) changes as RaftNode does, so the test sees
 * what the service makes of them: validation, replies, error statuses, and
 * forwarding to the leader, once, with the forwarding node named in the
 * call's metadata.
 */
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RaftLogClient,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import { clusterServiceDefinition, createClusterService } from '../../src/node/cluster-service.js';
import { ClientError, NotLeaderError } from '../../src/node/errors.js';
import type { RaftNode } from '../../src/node/raft-node.js';
import type { ClusterConfig, ConfigChange } from '../../src/raft/types.js';
import { FakeRaftLogServer } from '../support/fake-raftlog-server.js';
import { rejection } from '../support/rejection.js';

type View = ReturnType<RaftNode['membership']>;

let servers: grpc.Server[] = [];
let clients: RaftLogClient[] = [];
let fakes: FakeRaftLogServer[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  for (const server of servers) server.forceShutdown();
  await Promise.all(fakes.map((fake) => fake.stop()));
  clients = [];
  servers = [];
  fakes = [];
});

interface StandInOptions {
  readonly id: string;
  readonly leader: string | null;
  readonly config: ClusterConfig;
  readonly configIndex?: number;
  readonly progress?: View['progress'];
  /** Where this node's address book says the others listen. */
  readonly addressBook?: Record<string, string>;
  /** What the leader makes of a change; by default it commits at lastIndex + 1. */
  readonly carryOut?: (change: ConfigChange) => Promise<{ index: number; view: View }>;
}

interface StandIn {
  readonly node: RaftNode;
  /** Every change the service handed to the node. */
  readonly changes: ConfigChange[];
}

const TERM = 7;
const LAST_INDEX = 120;
const COMMIT_INDEX = 118;

/** A node as the service sees it: RaftNode's membership(), changeMembership(), status() and addressOf(). */
function standIn(options: StandInOptions): StandIn {
  const changes: ConfigChange[] = [];
  const view = (): View => ({
    config: options.config,
    configIndex: options.configIndex ?? 0,
    committed: (options.configIndex ?? 0) <= COMMIT_INDEX,
    leader: options.leader,
    progress: options.leader === options.id ? (options.progress ?? []) : null,
  });
  const node = {
    id: options.id,
    membership: view,
    status: () => ({ id: options.id, term: TERM, lastIndex: LAST_INDEX, commitIndex: COMMIT_INDEX, leader: options.leader }),
    addressOf: (id: string) => options.addressBook?.[id],
    clusterIdentity: { clusterId: '00112233aabbccdd', clusterName: 'stand-in' },
    changeMembership: async (change: ConfigChange) => {
      if (options.leader !== options.id) throw new NotLeaderError(options.id, TERM, options.leader);
      changes.push(change);
      return await (options.carryOut ?? (async () => ({ index: LAST_INDEX + 1, view: view() })))(change);
    },
  } as unknown as RaftNode;
  return { node, changes };
}

/** The Cluster service of `node` on a free port; returns host:port. */
async function serve(node: RaftNode): Promise<string> {
  const server = new grpc.Server();
  servers.push(server);
  server.addService(
    clusterServiceDefinition,
    createClusterService(() => node, pino({ level: 'silent' })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
  });
  return `127.0.0.1:${port}`;
}

function client(endpoint: string, deadlineMs = 5000): RaftLogClient {
  // The configurations served here name addresses nobody listens at: the client must not go there.
  const made = new RaftLogClient({ endpoints: [endpoint], deadlineMs, followMembership: false });
  clients.push(made);
  return made;
}

const THREE_AND_A_LEARNER: ClusterConfig = {
  voters: ['n1', 'n2', 'n3'],
  learners: ['n4'],
  addresses: { n1: '10.0.0.1:7001', n2: '10.0.0.2:7001', n4: '10.0.0.4:7001' },
};

describe('the Cluster service on the leader', () => {
  it('lists the configuration with addresses, roles and match indexes (its own: its last index)', async () => {
    const leader = standIn({
      id: 'n1',
      leader: 'n1',
      config: THREE_AND_A_LEARNER,
      configIndex: 119,
      progress: [
        { id: 'n2', matchIndex: 120 },
        { id: 'n3', matchIndex: 117 },
        { id: 'n4', matchIndex: 40 },
      ],
      // n3's address is not in the configuration (a cluster bootstrapped from --peers): the address book has it.
      addressBook: { n3: '10.0.0.3:7001' },
    });
    const endpoint = await serve(leader.node);

    expect(await client(endpoint).memberList()).toEqual({
      members: [
        { id: 'n1', address: '10.0.0.1:7001', role: 'voter', matchIndex: 120 },
        { id: 'n2', address: '10.0.0.2:7001', role: 'voter', matchIndex: 120 },
        { id: 'n3', address: '10.0.0.3:7001', role: 'voter', matchIndex: 117 },
        { id: 'n4', address: '10.0.0.4:7001', role: 'learner', matchIndex: 40 },
      ],
      configIndex: 119,
      committed: false,
      leader: 'n1',
      commitIndex: COMMIT_INDEX,
      clusterId: '00112233aabbccdd',
      clusterName: 'stand-in',
      endpoint,
    });
  });

  it('hands add, promote and remove to the node as single changes and answers with the committed configuration and its index', async () => {
    const after: ClusterConfig = {
      voters: ['n1', 'n2', 'n3'],
      learners: ['n4', 'n5'],
      addresses: { ...THREE_AND_A_LEARNER.addresses, n5: '10.0.0.5:7001' },
    };
    const leader = standIn({
      id: 'n1',
      leader: 'n1',
      config: THREE_AND_A_LEARNER,
      addressBook: { n3: '10.0.0.3:7001' },
      carryOut: async () => ({ index: 121, view: { config: after, configIndex: 121, committed: true, leader: 'n1', progress: [] } }),
    });
    const c = client(await serve(leader.node));

    const added = await c.memberAdd('n5', '10.0.0.5:07001', { learner: true });
    expect(added).toMatchObject({ index: 121, leader: 'n1' });
    expect(added.members.map(({ id, role }) => `${id}:${role}`)).toEqual(['n1:voter', 'n2:voter', 'n3:voter', 'n4:learner', 'n5:learner']);
    await c.memberPromote('n4');
    await c.memberRemove('n3');

    expect(leader.changes).toEqual([
      { type: 'add-learner', id: 'n5', address: '10.0.0.5:7001' },
      { type: 'promote', id: 'n4' },
      { type: 'remove', id: 'n3' },
    ]);
  });

  it('refuses to add a voter directly, and malformed ids or addresses, before the node sees them', async () => {
    const leader = standIn({ id: 'n1', leader: 'n1', config: THREE_AND_A_LEARNER });
    const c = client(await serve(leader.node));

    const voter = await rejection(c.memberAdd('n5', '10.0.0.5:7001', { learner: false }));
    expect(voter).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect((voter as Error).message).toContain(
      'adding n5 as a voter directly is not supported: add it as a learner (learner: true; raftlog member add --learner), let it catch up, then promote it',
    );
    const badId = await rejection(c.memberPromote('n 4'));
    expect((badId as Error).message).toContain('member id "n 4" is not a node id');
    const badAddress = await rejection(c.memberAdd('n5', 'n5=10.0.0.5:7001', { learner: true }));
    expect(badAddress).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(leader.changes).toEqual([]);
  });

  it("passes the node's refusals on with their status: FAILED_PRECONDITION (how far behind), INVALID_ARGUMENT, and DEADLINE_EXCEEDED as indeterminate", async () => {
    const refusals = [
      new ClientError(grpc.status.FAILED_PRECONDITION, 'learner n4 is 80 entries behind the leader (match index 40, last index 120)'),
      new ClientError(grpc.status.INVALID_ARGUMENT, 'n9 is not a member of this cluster'),
      new ClientError(grpc.status.DEADLINE_EXCEEDED, 'node n1: the change at index 121 was not committed before the deadline'),
    ];
    const leader = standIn({
      id: 'n1',
      leader: 'n1',
      config: THREE_AND_A_LEARNER,
      carryOut: async () => {
        throw refusals.shift();
      },
    });
    const c = client(await serve(leader.node));

    const behind = await rejection(c.memberPromote('n4'));
    expect(behind).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect((behind as Error).message).toContain('learner n4 is 80 entries behind the leader (match index 40, last index 120)');
    expect(await rejection(c.memberRemove('n9'))).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(await rejection(c.memberRemove('n3'))).toBeInstanceOf(RaftLogIndeterminateError);
  });
});

describe('the Cluster service on a follower', () => {
  it('forwards a change to the leader once, naming itself in the metadata, and relays the answer', async () => {
    const leader = await FakeRaftLogServer.start({ node: 'n1' });
    fakes.push(leader);
    const follower = standIn({ id: 'n2', leader: 'n1', config: THREE_AND_A_LEARNER, addressBook: { n1: leader.endpoint } });
    const c = client(await serve(follower.node));

    const added = await c.memberAdd('n5', '10.0.0.5:7001', { learner: true });
    expect(added).toMatchObject({ index: 1, leader: 'n1' });
    expect(added.members.map(({ id, role }) => `${id}:${role}`)).toEqual(['n1:voter', 'n5:learner']);
    const list = await c.memberList();
    expect(list.leader).toBe('n1');

    expect(leader.received.map(({ method, request, metadata }) => [method, request, metadata.get('raftlog-forwarded-by')])).toEqual([
      ['MemberAdd', { id: 'n5', address: '10.0.0.5:7001', learner: true }, ['n2']],
      ['MemberList', {}, ['n2']],
    ]);
  });

  it("relays the leader's refusal as the leader gave it", async () => {
    const leader = await FakeRaftLogServer.start({ node: 'n1' });
    fakes.push(leader);
    leader.cluster.learners.push('n4');
    leader.cluster.matchIndexes.set('n4', 0);
    leader.cluster.lastIndex = 500;
    const follower = standIn({ id: 'n2', leader: 'n1', config: THREE_AND_A_LEARNER, addressBook: { n1: leader.endpoint } });

    const error = await rejection(client(await serve(follower.node)).memberPromote('n4'));

    expect(error).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect((error as Error).message).toContain('learner n4 is 500 entries behind the leader');
  });

  it('a forwarded call that reaches a node which is not the leader is answered UNAVAILABLE there, not forwarded again', async () => {
    const realLeader = await FakeRaftLogServer.start({ node: 'n1' });
    fakes.push(realLeader);
    // n3 was told n2 leads, and n2 that n1 does: a forward from n3 lands on n2, which must not pass it on.
    const n2 = standIn({ id: 'n2', leader: 'n1', config: THREE_AND_A_LEARNER, addressBook: { n1: realLeader.endpoint } });
    const n2Endpoint = await serve(n2.node);
    const n3 = standIn({ id: 'n3', leader: 'n2', config: THREE_AND_A_LEARNER, addressBook: { n2: n2Endpoint } });

    const error = await rejection(client(await serve(n3.node), 1000).memberRemove('n4'));

    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    expect((error as Error).message).toContain('node n2 is not the leader; n1 leads term 7');
    expect(realLeader.totalCalls).toBe(0);
  });

  it('with no leader known, answers UNAVAILABLE: nothing changed, the client may retry', async () => {
    const orphan = standIn({ id: 'n2', leader: null, config: THREE_AND_A_LEARNER });
    const error = await rejection(client(await serve(orphan.node), 1000).memberList());
    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    expect((error as Error).message).toContain('no leader is known to node n2 in term 7');
  });
});
