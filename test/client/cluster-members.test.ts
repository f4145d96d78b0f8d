/**
 * RaftLogClient's membership calls (memberList, memberAdd, memberPromote,
 * memberRemove) against fake nodes that serve raftlog.v1.Cluster with a
 * node's rules: members join as learners, a learner is promoted only once
 * caught up, the last voter stays. Changes follow the rules of writes: retried
 * only when certainly not carried out, indeterminate once sent and lost.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RaftLogClient,
  type RaftLogClientOptions,
  type RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import { FakeRaftLogServer, startFakeCluster } from '../support/fake-raftlog-server.js';
import { rejection } from '../support/rejection.js';
import { waitFor } from '../support/wait-for.js';

let clients: RaftLogClient[] = [];
let fakes: FakeRaftLogServer[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  await Promise.all(fakes.map((fake) => fake.stop()));
  clients = [];
  fakes = [];
});

async function cluster(count: number, leader = 'n1'): Promise<FakeRaftLogServer[]> {
  const started = await startFakeCluster(count, leader);
  fakes.push(...started);
  return started;
}

function client(endpoints: readonly string[], options: Partial<RaftLogClientOptions> = {}): RaftLogClient {
  const made = new RaftLogClient({ endpoints, deadlineMs: 3000, ...options });
  clients.push(made);
  return made;
}

const total = (method: keyof FakeRaftLogServer['calls']) => fakes.reduce((sum, fake) => sum + fake.calls[method], 0);
const roles = (members: readonly { id: string; role: string }[]) => members.map(({ id, role }) => `${id}:${role}`);

describe('RaftLogClient membership: the lifecycle of a new member', () => {
  it('lists the members as the leader sees them, whichever node answers', async () => {
    const nodes = await cluster(3, 'n2');
    nodes[0]!.cluster.commit('LOG_ENTRY_KIND_PUT');
    nodes[0]!.cluster.matchIndexes.set('n3', 0);

    const list = await client([nodes[0]!.endpoint]).memberList();

    expect(list).toEqual({
      members: [
        { id: 'n1', address: nodes[0]!.endpoint, role: 'voter', matchIndex: 1 },
        { id: 'n2', address: nodes[1]!.endpoint, role: 'voter', matchIndex: 1 },
        { id: 'n3', address: nodes[2]!.endpoint, role: 'voter', matchIndex: 0 },
      ],
      configIndex: 0,
      committed: true,
      leader: 'n2',
      commitIndex: 1,
      clusterId: '0123456789abcdef',
      clusterName: 'fake',
      endpoint: nodes[0]!.endpoint,
    });
  });

  it('adds a learner, refuses to promote it while it is behind (saying how far), promotes it once caught up, then removes a voter', async () => {
    const nodes = await cluster(3);
    for (let i = 0; i < 50; i++) nodes[0]!.cluster.commit('LOG_ENTRY_KIND_PUT');
    const c = client(nodes.map((node) => node.endpoint));

    const added = await c.memberAdd('n4', '127.0.0.1:7004', { learner: true });
    expect(added).toMatchObject({ index: 51, leader: 'n1', endpoint: nodes[0]!.endpoint });
    expect(roles(added.members)).toEqual(['n1:voter', 'n2:voter', 'n3:voter', 'n4:learner']);
    expect(added.members[3]).toEqual({ id: 'n4', address: '127.0.0.1:7004', role: 'learner', matchIndex: 0 });
    expect(nodes[0]!.received.at(-1)).toMatchObject({ method: 'MemberAdd', request: { id: 'n4', address: '127.0.0.1:7004', learner: true } });

    // n4 has nothing yet: the cluster refuses, the client does not retry it elsewhere.
    const refused = await rejection(c.memberPromote('n4'));
    expect(refused).toBeInstanceOf(RaftLogFailedPreconditionError);
    expect(refused).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, codeName: 'FAILED_PRECONDITION', operation: 'memberPromote' });
    expect((refused as Error).message).toMatch(/^memberPromote refused by 127\.0\.0\.1:\d+: learner n4 is 51 entries behind the leader/);
    expect((refused as Error).message).toMatch(/\(FAILED_PRECONDITION\)$/);
    expect(total('MemberPromote')).toBe(1);
    expect(roles((await c.memberList()).members)).toContain('n4:learner');

    nodes[0]!.cluster.matchIndexes.set('n4', 50);
    const promoted = await c.memberPromote('n4');
    expect(promoted.index).toBe(52);
    expect(roles(promoted.members)).toEqual(['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter']);

    const removed = await c.memberRemove('n3');
    expect(removed.index).toBe(53);
    expect(roles(removed.members)).toEqual(['n1:voter', 'n2:voter', 'n4:voter']);
    const list = await c.memberList();
    expect(list).toMatchObject({ configIndex: 53, committed: true });
    expect(roles(list.members)).toEqual(['n1:voter', 'n2:voter', 'n4:voter']);
  });

  it("shows the learner and its role in every node's Status", async () => {
    const nodes = await cluster(2);
    const c = client(nodes.map((node) => node.endpoint));
    await c.memberAdd('n3', '127.0.0.1:7003', { learner: true });

    const [leader, follower] = await Promise.all(nodes.map((node) => c.status(node.endpoint)));
    expect(leader!.memberStatus).toEqual([
      { id: 'n1', address: nodes[0]!.endpoint, role: 'voter', matchIndex: 1 },
      { id: 'n2', address: nodes[1]!.endpoint, role: 'voter', matchIndex: 1 },
      { id: 'n3', address: '127.0.0.1:7003', role: 'learner', matchIndex: 0 },
    ]);
    // Only the leader knows how far each member has got.
    expect(follower!.memberStatus.map(({ id, role, matchIndex }) => [id, role, matchIndex])).toEqual([
      ['n1', 'voter', 0],
      ['n2', 'voter', 0],
      ['n3', 'learner', 0],
    ]);
  });
});

describe('RaftLogClient membership: refusals and failures', () => {
  it('adding a voter directly is refused by the node with INVALID_ARGUMENT, naming the way to do it, and is not retried', async () => {
    const nodes = await cluster(2);
    const error = await rejection(client(nodes.map((node) => node.endpoint)).memberAdd('n3', '127.0.0.1:7003', { learner: false }));
    expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect((error as Error).message).toMatch(/as a voter directly is not supported: add it as a learner, then promote it/);
    expect(total('MemberAdd')).toBe(1);
    expect(nodes[0]!.cluster.learners).toEqual([]);
  });

  it('changes that make no sense for the configuration are INVALID_ARGUMENT: a member twice, a promotion of a voter, removing a stranger or the last voter', async () => {
    const nodes = await cluster(1);
    const c = client([nodes[0]!.endpoint]);
    const errors = [
      await rejection(c.memberAdd('n1', '127.0.0.1:7009', { learner: true })),
      await rejection(c.memberPromote('n1')),
      await rejection(c.memberRemove('n9')),
      await rejection(c.memberRemove('n1')),
    ];
    for (const error of errors) expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(errors.map((error) => (error as Error).message)).toEqual([
      expect.stringContaining('n1 is already a member'),
      expect.stringContaining('n1 is not a learner'),
      expect.stringContaining('n9 is not a member'),
      expect.stringContaining('n1 is the last voter'),
    ]);
    expect(nodes[0]!.cluster.members).toEqual(['n1']);
  });

  it('rejects an empty id or a malformed address before sending anything', async () => {
    const nodes = await cluster(1);
    const c = client([nodes[0]!.endpoint]);
    const errors = [
      await rejection(c.memberAdd('', '127.0.0.1:7004', { learner: true })),
      await rejection(c.memberAdd('n4', 'localhost', { learner: true })),
      await rejection(c.memberAdd('n4', 'n4=127.0.0.1:7004', { learner: true })),
      await rejection(c.memberPromote(' ')),
      await rejection(c.memberRemove('')),
    ];
    for (const error of errors) expect(error).toMatchObject({ name: 'RaftLogInvalidArgumentError', endpoint: null });
    expect((errors[1] as Error).message).toBe('memberAdd: endpoint "localhost" is not host:port (rejected before sending)');
    expect(nodes[0]!.totalCalls).toBe(0);
  });

  it('moves on to the next node when one answers UNAVAILABLE (nothing changed there)', async () => {
    const nodes = await cluster(2);
    nodes[0]!.cluster.learners.push('n3');
    nodes[0]!.unavailable('MemberPromote', 1);

    const promoted = await client(nodes.map((node) => node.endpoint)).memberPromote('n3');

    expect(promoted.endpoint).toBe(nodes[1]!.endpoint);
    expect(nodes.map((node) => node.calls.MemberPromote)).toEqual([1, 1]);
    expect(roles(promoted.members)).toEqual(['n1:voter', 'n2:voter', 'n3:voter']);
  });

  it('a change that was sent and got no answer in time is indeterminate and not retried; listing shows it took effect after all', async () => {
    const nodes = await cluster(2);
    // n1 commits the change only after the client has given up.
    nodes[0]!.script('MemberAdd', { kind: 'delay', ms: 1500 });
    const c = client(nodes.map((node) => node.endpoint));

    const error = await rejection(c.memberAdd('n3', '127.0.0.1:7003', { learner: true, deadlineMs: 500 }));
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect((error as RaftLogError).message).toMatch(
      // Either side may notice the deadline first on a loaded machine (see test/cli/member-cli.test.ts).
      /^memberAdd on 127\.0\.0\.1:\d+: (no reply before the deadline|the node answered DEADLINE_EXCEEDED: Deadline exceeded); the write may or may not have been committed \(DEADLINE_EXCEEDED\)$/,
    );
    expect(nodes.map((node) => node.calls.MemberAdd)).toEqual([1, 0]);

    const list = await waitFor('the late change to show', async () => {
      const members = await c.memberList();
      return roles(members.members).includes('n3:learner') ? members : undefined;
    });
    expect(list.configIndex).toBe(1);
  }, 20_000);

  it('memberList with no leader anywhere ends UNAVAILABLE after trying every node', async () => {
    const nodes = await cluster(2);
    for (const node of nodes) node.alwaysUnavailable();
    const error = await rejection(
      client(
        nodes.map((node) => node.endpoint),
        { deadlineMs: 800 },
      ).memberList(),
    );
    expect(error).toBeInstanceOf(RaftLogUnavailableError);
    expect(nodes.every((node) => node.calls.MemberList >= 1)).toBe(true);
  });
});

describe('RaftLogClient following the membership (followMembership, on by default)', () => {
  /** The members of the fake cluster become exactly `ids` (voters), in that order. */
  const reconfigure = (nodes: readonly FakeRaftLogServer[], ids: readonly string[]) => {
    const shared = nodes[0]!.cluster;
    shared.members = [...ids];
    shared.learners = [];
    shared.configIndex += 1;
  };

  it('a client made with one node learns the others, and carries on when that node stops', async () => {
    const nodes = await cluster(3, 'n2');
    const c = client([nodes[0]!.endpoint], { deadlineMs: 2000 });

    // The reply names leader n2, at an endpoint the client does not know: it asks for the members.
    await c.put(Buffer.from('k'), Buffer.from('v1'));
    await waitFor('the members learned', () => (c.knownEndpoints.length === 3 ? true : undefined));
    expect(c.knownEndpoints).toEqual(nodes.map((node) => node.endpoint));
    expect(c.knownLeader).toEqual({ node: 'n2', endpoint: nodes[1]!.endpoint });

    await nodes[0]!.stop();
    const put = await c.put(Buffer.from('k'), Buffer.from('v2'));
    expect(put.endpoint).toBe(nodes[1]!.endpoint);
  });

  it('a member that joined after the client was made serves it once every node the client was made with is gone', async () => {
    const nodes = await cluster(2);
    const joined = await FakeRaftLogServer.start({ node: 'n3', cluster: nodes[0]!.cluster });
    fakes.push(joined);
    reconfigure(nodes, ['n3']);
    nodes[0]!.cluster.leader = 'n3';
    const following = client(
      nodes.map((node) => node.endpoint),
      { deadlineMs: 1500, membershipRefreshMs: 100 },
    );
    const pinned = client(
      nodes.map((node) => node.endpoint),
      { deadlineMs: 1500, followMembership: false },
    );
    // The periodic refresh alone, with no call made: what a subscriber that only listens relies on.
    await waitFor('the new member learned', () => (following.knownEndpoints.includes(joined.endpoint) ? true : undefined));
    // Members first; the configured endpoints that are no longer members are kept, and tried last.
    expect(following.knownEndpoints).toEqual([joined.endpoint, nodes[0]!.endpoint, nodes[1]!.endpoint]);

    await Promise.all(nodes.map((node) => node.stop()));
    const put = await following.put(Buffer.from('k'), Buffer.from('v'));
    expect(put.endpoint).toBe(joined.endpoint);
    // The contrast: a client told not to follow knows only the nodes that are gone.
    expect(pinned.knownEndpoints).toEqual(nodes.map((node) => node.endpoint));
    expect(await rejection(pinned.put(Buffer.from('k'), Buffer.from('w')))).toBeInstanceOf(RaftLogUnavailableError);
  });

  it('a learned member that leaves is no longer tried; the configured endpoints always are', async () => {
    const nodes = await cluster(3);
    const c = client([nodes[0]!.endpoint], { membershipRefreshMs: 100 });
    await waitFor('the members learned', () => (c.knownEndpoints.length === 3 ? true : undefined));

    reconfigure(nodes, ['n2']);
    nodes[0]!.cluster.leader = 'n2';
    await waitFor('n1 and n3 gone from the members', () => (c.knownEndpoints.length === 2 ? true : undefined));
    expect(c.knownEndpoints).toEqual([nodes[1]!.endpoint, nodes[0]!.endpoint]);
  });

  it('an address where the member does not answer is not taken: unreachable, or another node there', async () => {
    const nodes = await cluster(3);
    const shared = nodes[0]!.cluster;
    shared.addresses.set('n2', nodes[2]!.endpoint); // n3 answers there
    shared.addresses.set('n3', '127.0.0.1:1'); // nothing listens there
    const c = client([nodes[0]!.endpoint], { membershipRefreshMs: 100 });
    // A refresh starts only once the one before has checked its addresses: two have been taken in after the third starts.
    await waitFor('three refreshes', () => (total('MemberList') >= 3 ? true : undefined));
    expect(c.knownEndpoints).toEqual([nodes[0]!.endpoint]);
    expect((await c.put(Buffer.from('k'), Buffer.from('v'))).endpoint).toBe(nodes[0]!.endpoint);
  });

  it('a configuration that records no addresses changes nothing', async () => {
    const nodes = await cluster(2);
    nodes[0]!.cluster.addresses.clear();
    const c = client([nodes[1]!.endpoint], { membershipRefreshMs: 100 });
    await waitFor('the members asked for twice', () => (total('MemberList') >= 2 ? true : undefined));
    expect(c.knownEndpoints).toEqual([nodes[1]!.endpoint]);
    expect((await c.get(Buffer.from('absent'))).value).toBeNull();
  });
});
