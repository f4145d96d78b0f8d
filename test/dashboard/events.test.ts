/**
 * The dashboard's timeline, derived by comparing two samples of the cluster
 * (no browser, no processes): each scenario is a sample before and one after,
 * and the events the change must produce.
 */
import { describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/client/index.js';
import { type ClusterSample, type ConfigMember, clusterSample, type NodeSample } from '../../src/dashboard/cluster-sample.js';
import { deriveEvents } from '../../src/dashboard/events.js';

const VOTERS = ['n1', 'n2', 'n3'];

function status(node: string, fields: Partial<NodeStatus> = {}): NodeStatus {
  const members = fields.members ?? VOTERS;
  return {
    endpoint: `127.0.0.1:700${node.slice(1)}`,
    node,
    role: 'follower',
    term: 2,
    leader: 'n1',
    commitIndex: 100,
    appliedIndex: 100,
    lastLogIndex: 100,
    firstLogIndex: 1,
    snapshotIndex: 0,
    members,
    digest: 'ab'.repeat(32),
    memberStatus: members.map((id) => ({ id, address: `127.0.0.1:700${id.slice(1)}`, role: 'voter', matchIndex: 0 })),
    progress: [],
    ...fields,
  };
}

const leaderOf = (node: string, term: number, fields: Partial<NodeStatus> = {}) => status(node, { role: 'leader', leader: node, term, ...fields });

function up(s: NodeStatus): NodeSample {
  return { id: s.node, address: s.endpoint, up: true, status: s, answeredAtMs: 1_000, error: null, member: true };
}

function down(s: NodeStatus | null, id = s?.node ?? 'n?', error = 'connect ECONNREFUSED'): NodeSample {
  return { id, address: s?.endpoint ?? '127.0.0.1:7009', up: false, status: s, answeredAtMs: s === null ? null : 1_000, error, member: true };
}

let clock = 10_000;
function sample(nodes: NodeSample[], previousMembers: readonly ConfigMember[] = []): ClusterSample {
  clock += 1_000;
  return clusterSample(clock, nodes, null, previousMembers);
}

const kinds = (previous: ClusterSample | null, next: ClusterSample) => deriveEvents(previous, next).map((e) => `${e.kind}: ${e.message}`);

describe('a cluster sample', () => {
  it('names the leader of the highest term among the nodes that answer, and the highest commit index as the clock', () => {
    // n1 led term 2 and has not heard yet that n2 leads term 3.
    const s = sample([
      up(leaderOf('n1', 2, { commitIndex: 90 })),
      up(leaderOf('n2', 3, { commitIndex: 120 })),
      up(status('n3', { term: 3, leader: 'n2' })),
    ]);
    expect(s.leader).toEqual({ id: 'n2', term: 3 });
    expect(s.term).toBe(3);
    expect(s.commitIndex).toBe(120);
  });

  it('ignores what a down node said last: its old leadership does not count', () => {
    const s = sample([down(leaderOf('n1', 2)), up(status('n2', { term: 2 })), up(status('n3', { term: 2 }))]);
    expect(s.leader).toBeNull();
    expect(s.nodes.map((n) => [n.id, n.up, n.status?.role])).toEqual([
      ['n1', false, 'leader'],
      ['n2', true, 'follower'],
      ['n3', true, 'follower'],
    ]);
  });

  it('keeps the last known configuration while no node answers, and marks a node outside it as not a member (still shown)', () => {
    const before = sample([up(leaderOf('n1', 2, { members: ['n1', 'n2'] })), up(status('n2', { members: ['n1', 'n2'] })), up(status('n3'))]);
    expect(before.members.map((m) => m.id)).toEqual(['n1', 'n2']);
    expect(before.nodes.map((n) => [n.id, n.member])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', false],
    ]);
    const silent = sample([down(leaderOf('n1', 2)), down(status('n2')), down(status('n3'))], before.members);
    expect(silent.members).toEqual(before.members);
    expect(silent.term).toBe(0);
  });
});

describe('events between two samples', () => {
  const steady = () => sample([up(leaderOf('n1', 2)), up(status('n2')), up(status('n3'))]);

  it('at start: who leads, and which nodes do not answer', () => {
    const first = sample([up(leaderOf('n1', 2)), up(status('n2')), down(null, 'n3')]);
    expect(kinds(null, first)).toEqual(['down: n3 does not answer: connect ECONNREFUSED', 'leader: n1 leads in term 2']);
  });

  it('nothing when nothing changed', () => {
    expect(kinds(steady(), steady())).toEqual([]);
  });

  it('the leader killed: it is down and no node answers as leader; then an election in a higher term and the new leader', () => {
    const before = steady();
    const leaderGone = sample([down(leaderOf('n1', 2)), up(status('n2')), up(status('n3'))]);
    expect(kinds(before, leaderGone)).toEqual([
      'down: n1 does not answer: connect ECONNREFUSED',
      'leader: no node answers as leader (was n1 in term 2)',
    ]);
    const elected = sample([down(leaderOf('n1', 2)), up(leaderOf('n2', 3)), up(status('n3', { term: 3, leader: 'n2' }))]);
    expect(kinds(leaderGone, elected)).toEqual(['election: term 2 → 3', 'leader: n2 leads in term 3']);
  });

  it('an election and a new leader seen in the same poll', () => {
    const after = sample([up(status('n1', { term: 3, leader: 'n3' })), up(status('n2', { term: 3, leader: 'n3' })), up(leaderOf('n3', 3))]);
    expect(kinds(steady(), after)).toEqual(['election: term 2 → 3', 'leader: n3 leads in term 3']);
  });

  it('the same node re-elected in a higher term is an election and a new leadership', () => {
    const after = sample([up(leaderOf('n1', 4)), up(status('n2', { term: 4 })), up(status('n3', { term: 4 }))]);
    expect(kinds(steady(), after)).toEqual(['election: term 2 → 4', 'leader: n1 leads in term 4']);
  });

  it('a node that comes back answers again; one that never answered before "answers"', () => {
    const before = sample([up(leaderOf('n1', 2)), down(status('n2')), down(null, 'n3')]);
    const after = steady();
    expect(kinds(before, after)).toEqual(['up: n2 answers again', 'up: n3 answers']);
  });

  it('a node down in both samples is reported once, when it went down', () => {
    const first = sample([up(leaderOf('n1', 2)), up(status('n2')), down(status('n3'))]);
    const second = sample([up(leaderOf('n1', 2)), up(status('n2')), down(status('n3'))]);
    expect(kinds(steady(), first)).toEqual(['down: n3 does not answer: connect ECONNREFUSED']);
    expect(kinds(first, second)).toEqual([]);
  });

  it('a snapshot index that moves is a snapshot, placed at the commit index of the moment', () => {
    const before = sample([up(leaderOf('n1', 2, { snapshotIndex: 1_000 })), up(status('n2')), up(status('n3'))]);
    const after = sample([
      up(leaderOf('n1', 2, { snapshotIndex: 2_000, commitIndex: 2_050 })),
      up(status('n2', { snapshotIndex: 2_048 })),
      up(status('n3')),
    ]);
    const events = deriveEvents(before, after);
    expect(events.map((e) => `${e.kind}: ${e.message}`)).toEqual(['snapshot: n1: snapshot at 2000 (was 1000)', 'snapshot: n2: snapshot at 2048']);
    expect(events.map((e) => [e.node, e.index, e.term, e.atMs])).toEqual([
      ['n1', 2_050, 2, after.atMs],
      ['n2', 2_050, 2, after.atMs],
    ]);
  });

  it('a node that took a snapshot while down reports it when it answers again', () => {
    const before = sample([up(leaderOf('n1', 2)), up(status('n2')), down(status('n3', { snapshotIndex: 0 }))]);
    const after = sample([up(leaderOf('n1', 2)), up(status('n2')), up(status('n3', { snapshotIndex: 4_096 }))]);
    expect(kinds(before, after)).toEqual(['up: n3 answers again', 'snapshot: n3: snapshot at 4096']);
  });

  it('membership: a learner joins, is promoted, and a voter leaves', () => {
    /** The leader reporting a configuration ("n4:learner" for a learner), and one follower. */
    const configured = (...members: string[]) => {
      const roles = members.map((member) => member.split(':')).map(([id, role]) => ({ id: id as string, role: role ?? 'voter' }));
      const memberStatus = roles.map(({ id, role }) => ({ id, address: `127.0.0.1:700${id.slice(1)}`, role, matchIndex: 0 }));
      const voters = roles.filter(({ role }) => role === 'voter').map(({ id }) => id);
      return sample([up(leaderOf('n1', 2, { members: voters, memberStatus })), up(status('n2'))]);
    };
    const learner = configured('n1', 'n2', 'n3', 'n4:learner');
    expect(kinds(steady(), learner)).toContain('membership: n4 joined as learner');
    const promoted = configured('n1', 'n2', 'n3', 'n4');
    expect(kinds(learner, promoted)).toEqual(['membership: n4: learner → voter']);
    const removed = configured('n1', 'n2', 'n4');
    expect(kinds(promoted, removed)).toEqual(['membership: n3 left the configuration']);
  });

  it('a configuration change made while no node answered shows once one answers again', () => {
    const before = steady();
    const silent = sample([down(leaderOf('n1', 2)), down(status('n2')), down(status('n3'))], before.members);
    const twoVoters = { members: ['n1', 'n2'], memberStatus: before.members.filter((m) => m.id !== 'n3').map((m) => ({ ...m, matchIndex: 0 })) };
    const back = sample([up(leaderOf('n1', 3, twoVoters)), up(status('n2', { term: 3, ...twoVoters })), down(status('n3'))], silent.members);
    expect(kinds(silent, back)).toEqual([
      'up: n1 answers again',
      'up: n2 answers again',
      // The term before is unknown (no node answered): no election to report, only who leads now.
      'leader: n1 leads in term 3',
      'membership: n3 left the configuration',
    ]);
  });
});
