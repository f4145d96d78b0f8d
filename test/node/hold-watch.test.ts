/**
 * The waiting behind held requests, without processes: LeadershipWatch
 * settles each waiter once (condition, time limit or stop) and leaves no
 * timer or waiter behind; holdWhileLeaderChanges holds only refusals that
 * changed nothing while the leadership is in flux, tries again once it is
 * steady (a leader known, not handing over), and gives up at its limit or the request's deadline. Fake timers:
 * time moves only when the test moves it.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ClientError, LeaderChangingError, LeaderUnreachableError, NotLeaderError } from '../../src/node/errors.js';
import { type HoldingNode, holdWhileLeaderChanges, RefusedByFormerLeader } from '../../src/node/leader-hold.js';
import { type LeadershipView, LeadershipWatch } from '../../src/node/leadership-watch.js';

const noLeader: LeadershipView = { role: 'follower', term: 3, leader: null, transferringTo: null };
const ledBy = (leader: string, term = 3): LeadershipView => ({ role: 'follower', term, leader, transferringTo: null });

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeadershipWatch', () => {
  it('answers at once when the view is ready already, and waits for nothing', async () => {
    const watch = new LeadershipWatch();
    await expect(watch.wait(ledBy('n2'), Date.now() + 1000, (v) => v.leader !== null)).resolves.toEqual(ledBy('n2'));
    expect(watch.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('settles a waiter with the first view that satisfies it, and clears its timer', async () => {
    const watch = new LeadershipWatch();
    const waiting = watch.wait(noLeader, Date.now() + 1000, (v) => v.leader !== null);
    watch.update({ ...noLeader, role: 'candidate', term: 4 });
    expect(watch.size).toBe(1);
    watch.update(ledBy('n3', 4));
    await expect(waiting).resolves.toEqual(ledBy('n3', 4));
    expect(watch.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives null at the time limit, and forgets the waiter', async () => {
    const watch = new LeadershipWatch();
    const waiting = watch.wait(noLeader, Date.now() + 1000, (v) => v.leader !== null);
    await vi.advanceTimersByTimeAsync(999);
    expect(watch.size).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(waiting).resolves.toBeNull();
    expect(watch.size).toBe(0);
    watch.update(ledBy('n1'));
  });

  it('releases every waiter with null when the node stops, and answers later waits with null at once', async () => {
    const watch = new LeadershipWatch();
    const waits = [1, 2, 3].map(() => watch.wait(noLeader, Date.now() + 60_000, (v) => v.leader !== null));
    watch.stop();
    await expect(Promise.all(waits)).resolves.toEqual([null, null, null]);
    expect(vi.getTimerCount()).toBe(0);
    await expect(watch.wait(noLeader, Date.now() + 60_000, () => true)).resolves.toBeNull();
  });
});

/** A node whose view the test sets, and whose waits go through a real LeadershipWatch. */
class FakeNode implements HoldingNode {
  readonly id = 'n1';
  readonly electionTimeoutMs = 200;
  readonly watch = new LeadershipWatch();
  isStopped = false;
  view: LeadershipView = noLeader;

  constructor(readonly holdWithoutLeaderMs: number) {}

  leadershipView(): LeadershipView {
    return this.view;
  }

  awaitLeadership(until: number, ready: (view: LeadershipView) => boolean): Promise<LeadershipView | null> {
    return this.watch.wait(this.view, until, ready);
  }

  set(view: LeadershipView): void {
    this.view = view;
    this.watch.update(view);
  }

  stop(): void {
    this.isStopped = true;
    this.watch.stop();
  }
}

/** An attempt that fails with `errors` in turn, then answers 'served'. */
function attempts(...errors: Error[]) {
  const calls = { count: 0 };
  const attempt = async (): Promise<string> => {
    const error = errors[calls.count++];
    if (error !== undefined) throw error;
    return 'served';
  };
  return { calls, attempt };
}

const failure = async (promise: Promise<unknown>): Promise<ClientError> => {
  try {
    await promise;
  } catch (error) {
    return error as ClientError;
  }
  throw new Error('expected a failure');
};

describe('holdWhileLeaderChanges', () => {
  it('holds a request refused for want of a leader until one is known, then tries it again', async () => {
    const node = new FakeNode(2000);
    const { calls, attempt } = attempts(new NotLeaderError('n1', 3, null));
    const served = holdWhileLeaderChanges(node, Date.now() + 5000, attempt);
    await vi.advanceTimersByTimeAsync(300);
    expect(calls.count).toBe(1);
    node.set(ledBy('n2', 4));
    await expect(served).resolves.toBe('served');
    expect(calls.count).toBe(2);
    expect(node.watch.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('holds a write refused during a handover until the handover ends', async () => {
    const node = new FakeNode(2000);
    node.view = { role: 'leader', term: 3, leader: 'n1', transferringTo: 'n2' };
    const { calls, attempt } = attempts(new LeaderChangingError('node n1 is handing leadership to n2'));
    const served = holdWhileLeaderChanges(node, Date.now() + 5000, attempt);
    await vi.advanceTimersByTimeAsync(50);
    node.set({ role: 'follower', term: 4, leader: null, transferringTo: null });
    expect(calls.count).toBe(1);
    node.set(ledBy('n2', 4));
    await expect(served).resolves.toBe('served');
  });

  it('tries a forward to an unreachable leader again after an election timeout, or as soon as another leader is known', async () => {
    const node = new FakeNode(5000);
    node.view = ledBy('n3');
    const unreachable = () => new LeaderUnreachableError('n3', 3, 'leader at 127.0.0.1:1 unreachable from n1');
    const { calls, attempt } = attempts(unreachable(), unreachable());
    const served = holdWhileLeaderChanges(node, Date.now() + 10_000, attempt);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls.count).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.count).toBe(2);
    node.set(ledBy('n2', 4));
    await expect(served).resolves.toBe('served');
    expect(calls.count).toBe(3);
  });

  it('holds a forward its old leader refused (it had handed over) until another leader is known, then forwards again', async () => {
    const node = new FakeNode(5000);
    node.view = ledBy('n3');
    const { calls, attempt } = attempts(new RefusedByFormerLeader('n3', 3, 'node n3 is not the leader; n2 leads term 4'));
    const served = holdWhileLeaderChanges(node, Date.now() + 10_000, attempt);
    await vi.advanceTimersByTimeAsync(50);
    expect(calls.count).toBe(1);
    node.set(ledBy('n2', 4));
    await expect(served).resolves.toBe('served');
    expect(calls.count).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('forwards a refused call again at once when this node already knows the new leader', async () => {
    const node = new FakeNode(5000);
    node.view = ledBy('n2', 4);
    const { calls, attempt } = attempts(new RefusedByFormerLeader('n3', 3, 'node n3 is not the leader; n2 leads term 4'));
    await expect(holdWhileLeaderChanges(node, Date.now() + 10_000, attempt)).resolves.toBe('served');
    expect(calls.count).toBe(2);
  });

  it('never holds a refusal that is not UNAVAILABLE, nor anything when holding is off', async () => {
    const refused = new ClientError(grpc.status.FAILED_PRECONDITION, 'consumer c1 is at 9');
    expect(await failure(holdWhileLeaderChanges(new FakeNode(2000), Date.now() + 5000, attempts(refused).attempt))).toBe(refused);
    const noLeaderError = new NotLeaderError('n1', 3, null);
    expect(await failure(holdWhileLeaderChanges(new FakeNode(0), Date.now() + 5000, attempts(noLeaderError).attempt))).toBe(noLeaderError);
  });

  it('answers UNAVAILABLE, saying how long it held, once the hold limit is over', async () => {
    const node = new FakeNode(1000);
    const settled = failure(
      holdWhileLeaderChanges(node, Date.now() + 30_000, attempts(new NotLeaderError('n1', 3, null), new NotLeaderError('n1', 3, null)).attempt),
    );
    await vi.advanceTimersByTimeAsync(1000);
    const error = await settled;
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.message).toMatch(/^no leader is known to node n1 in term 3 .* \(held 1000 ms waiting for a leader\)$/);
    expect(node.watch.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives up before the request deadline, so that the answer arrives while the client still waits', async () => {
    const node = new FakeNode(60_000);
    const settled = failure(
      holdWhileLeaderChanges(node, Date.now() + 1000, attempts(new NotLeaderError('n1', 3, null), new NotLeaderError('n1', 3, null)).attempt),
    );
    await vi.advanceTimersByTimeAsync(800);
    const error = await settled;
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.message).toContain('(held 800 ms waiting for a leader)');
  });

  it('releases a held request with UNAVAILABLE when the node stops', async () => {
    const node = new FakeNode(60_000);
    const settled = failure(holdWhileLeaderChanges(node, Date.now() + 30_000, attempts(new NotLeaderError('n1', 3, null)).attempt));
    await vi.advanceTimersByTimeAsync(10);
    node.stop();
    const error = await settled;
    expect(error.code).toBe(grpc.status.UNAVAILABLE);
    expect(error.message).toBe('node n1 is shutting down');
    expect(vi.getTimerCount()).toBe(0);
  });
});
