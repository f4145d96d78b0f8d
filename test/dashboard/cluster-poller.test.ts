/**
 * The dashboard's poller against fake nodes (real gRPC, scripted answers):
 * it finds members the configuration names beyond the endpoints it was
 * given, keeps a node that stops answering with its last answer (down, not
 * dropped), and reports it in the timeline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterPoller } from '../../src/dashboard/cluster-poller.js';
import { type FakeRaftLogServer, startFakeCluster } from '../support/fake-raftlog-server.js';

let nodes: FakeRaftLogServer[] = [];
let poller: ClusterPoller | null = null;

afterEach(async () => {
  poller?.close();
  poller = null;
  for (const node of nodes) await node.stop();
  nodes = [];
});

describe('the cluster poller', () => {
  it('polls the members the configuration names beyond its endpoints, and shows a node that stops answering as down with its last answer', async () => {
    nodes = await startFakeCluster(3);
    const [n1, , n3] = nodes as [FakeRaftLogServer, FakeRaftLogServer, FakeRaftLogServer];
    // Given n1 only: n2 and n3 are learned from the configuration n1 reports.
    poller = new ClusterPoller({ endpoints: [`n1=${n1.endpoint}`], callDeadlineMs: 1_000 });
    const first = await poller.poll();
    expect(first.nodes.map((n) => [n.id, n.up])).toEqual([['n1', true]]);
    expect(first.leader).toEqual({ id: 'n1', term: 1 });
    const second = await poller.poll();
    expect(second.nodes.map((n) => [n.id, n.up, n.status?.role])).toEqual([
      ['n1', true, 'leader'],
      ['n2', true, 'follower'],
      ['n3', true, 'follower'],
    ]);

    // The fault: n3's server goes away.
    await n3.stop();
    const third = await poller.poll();
    const down = third.nodes.find((n) => n.id === 'n3');
    expect(down).toMatchObject({ up: false, member: true, status: { node: 'n3', role: 'follower' } });
    expect(down?.error).toMatch(/connect|unavailable/i);
    expect(down?.answeredAtMs).toBe(second.nodes.find((n) => n.id === 'n3')?.answeredAtMs);
    expect(poller.events.map((e) => `${e.seq} ${e.kind} ${e.node}`)).toEqual(['1 leader n1', '2 down n3']);

    // Still there, and not reported down twice.
    const fourth = await poller.poll();
    expect(fourth.nodes.map((n) => [n.id, n.up])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', false],
    ]);
    expect(poller.events).toHaveLength(2);
  });
});
