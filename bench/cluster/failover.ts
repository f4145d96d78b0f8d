/**
 * Leader failover under a light closed-loop write load, as the etcd anchor's
 * failover.mjs measures it: SIGKILL the leader, then time the gap until a
 * write sent after the kill succeeds. Optionally with subscribers attached,
 * the first on the leader that gets killed: then the load appends stamped
 * records, and each subscriber reports how long after the kill it received
 * entries again, and that it lost none on the way.
 */
import type { StatusReply } from '../../src/node/client-proto.js';
import { BenchClient, sleep } from './client.js';
import { DRAIN_MS } from './delivery.js';
import { IndexSet, stampedRecord } from './delivery-check.js';
import { closedLoop, type LoadShape, now } from './load.js';
import { median, r1 } from './stats.js';
import { type AfterMark, SubscriberGroup, type SubscriberReport } from './subscribers.js';
import type { BenchTarget } from './target.js';

export interface FailoverOptions extends LoadShape {
  /** Subscribers attached during each trial (0: none, and the load is the shape's op, Put by default). */
  readonly subscribers?: number;
  readonly trials: number;
  /** Seconds of load before the kill, so the kill lands in steady state. */
  readonly settleS: number;
  /** Seconds of load after the first success, to see the cluster keeps serving. */
  readonly afterS: number;
  readonly timeoutMs: number;
  /** Called with each trial's result as it completes. */
  readonly onTrial: (t: FailoverTrial) => void;
}

export interface FailoverTrial {
  readonly trial: number;
  readonly killed: string;
  readonly pid: number | null;
  readonly new_leader: string | null;
  /** Kill → first success of a Put sent after the kill. */
  readonly unavail_ms: number | null;
  /** Last success of a Put sent before the kill → that same first success (smaller when a reply was in flight). */
  readonly gap_ms: number | null;
  /** More than 1: the election needed more than one round (e.g. a split vote). */
  readonly term_delta: number | null;
  readonly errors_after_kill: number;
  readonly ok_before: number;
  readonly ok_after: number;
  /** Restart of the killed node → every node applied everything committed (not part of unavailability). */
  readonly catch_up_ms: number;
  /** With subscribers: each one's delivery after the kill and its checks over the whole trial. */
  readonly subscribers?: FailoverSubscriber[];
}

export interface FailoverSubscriber extends AfterMark {
  /** The node it was reading from when the leader was killed. */
  readonly on_at_kill: string;
  readonly on_killed_node: boolean;
  readonly nodes: string[];
  readonly resubscribes: number;
  readonly coverage_problems: number;
  readonly problems: string[];
  readonly undelivered_after_drain: number;
  readonly acked: number;
}

export interface FailoverSummary {
  readonly summary: 'failover';
  readonly op: 'put' | 'append';
  readonly trials: number;
  readonly concurrency: number;
  readonly subscribers: number;
  /** Median over trials and subscribers of kill → the next entry delivered (null without subscribers). */
  readonly median_subscriber_next_delivery_ms: number | null;
  /** Median of kill → the first delivered record sent after the kill. */
  readonly median_subscriber_fresh_delivery_ms: number | null;
  /** Over every trial and subscriber: breaks of contiguity, and acknowledged appends never received. */
  readonly subscriber_coverage_problems: number;
  readonly subscriber_undelivered: number;
  readonly median_unavail_ms: number | null;
  readonly median_gap_ms: number | null;
  readonly unavail_ms: (number | null)[];
  readonly gap_ms: (number | null)[];
  readonly term_delta: (number | null)[];
  readonly results: FailoverTrial[];
}

export async function runFailover(target: BenchTarget, o: FailoverOptions): Promise<FailoverSummary> {
  const results: FailoverTrial[] = [];
  for (let trial = 1; trial <= o.trials; trial++) {
    const r = await oneTrial(target, o, trial);
    results.push(r);
    o.onTrial(r);
  }
  const ok = results.filter((r) => r.unavail_ms !== null);
  const subs = results.flatMap((r) => r.subscribers ?? []);
  const known = (xs: (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
  const withSubscribers = (o.subscribers ?? 0) > 0;
  return {
    summary: 'failover',
    op: withSubscribers ? 'append' : o.op === 'append' ? 'append' : 'put',
    trials: results.length,
    concurrency: o.concurrency,
    subscribers: o.subscribers ?? 0,
    median_subscriber_next_delivery_ms: median(known(subs.map((s) => s.next_delivery_ms))),
    median_subscriber_fresh_delivery_ms: median(known(subs.map((s) => s.fresh_delivery_ms))),
    subscriber_coverage_problems: subs.reduce((n, s) => n + s.coverage_problems, 0),
    subscriber_undelivered: subs.reduce((n, s) => n + s.undelivered_after_drain, 0),
    median_unavail_ms: median(ok.map((r) => r.unavail_ms as number)),
    median_gap_ms: median(ok.map((r) => r.gap_ms as number)),
    unavail_ms: results.map((r) => r.unavail_ms),
    gap_ms: results.map((r) => r.gap_ms),
    term_delta: results.map((r) => r.term_delta),
    results,
  };
}

async function oneTrial(target: BenchTarget, o: FailoverOptions, trial: number): Promise<FailoverTrial> {
  // Fresh channels per trial, as the anchor does: no connection state carries over from the last kill.
  const client = new BenchClient(target.endpoints, o.timeoutMs);
  const subscribers = o.subscribers ?? 0;
  let group: SubscriberGroup | null = null;
  let stop = false;
  try {
    const leaderAtStart = await client.findLeaderWithin(15_000);
    if (leaderAtStart === null) throw new Error('no leader before the kill');
    if (subscribers > 0) {
      // Subscribed before the load starts, so every acknowledged append is one they are due.
      group = SubscriberGroup.open(target.endpoints, subscribers, client.members.indexOf(leaderAtStart));
      await group.waitReady(15_000);
    }
    const shape: LoadShape =
      subscribers > 0 ? { ...o, op: 'append', valueSize: Math.max(8, o.valueSize), record: () => stampedRecord(Math.max(8, o.valueSize), now()) } : o;
    const acked = new IndexSet();
    let killAt: number | null = null;
    let lastBefore: number | null = null;
    let firstAfter: number | null = null;
    let errors = 0;
    let okBefore = 0;
    let okAfter = 0;
    const run = closedLoop(
      client,
      shape,
      (ok, t0, t1, _error, index) => {
        if (!ok) {
          if (killAt !== null) errors++;
          return;
        }
        if (index !== undefined) acked.add(index);
        if (killAt === null || t0 < killAt) {
          okBefore++;
          lastBefore = Math.max(lastBefore ?? t1, t1);
        } else {
          okAfter++;
          firstAfter ??= t1;
        }
      },
      () => stop,
    );
    await sleep(o.settleS * 1000);

    // Whoever leads right now; workers may have just lost it, so ask again if needed.
    const old = client.leader ?? (await client.findLeaderWithin(15_000));
    if (old === null) throw new Error('no leader at kill time');
    const termBefore = (await client.status(old, 1_000)).term;
    const victim = old.name;
    const pid = target.tracked().find((t) => t.name === victim)?.pid ?? null;
    const onAtKill = group?.members.map((s) => s.nodes.at(-1) ?? '?') ?? [];
    killAt = now();
    group?.markAt(killAt);
    await target.kill(victim);

    while (firstAfter === null && now() - killAt < 30_000) await sleep(1);
    // New appends must reach the subscribers before the load stops, or there is nothing fresh to time.
    if (group !== null) await Promise.all(group.members.map((s) => s.waitFreshDelivery(DRAIN_MS)));
    await sleep(o.afterS * 1000);
    stop = true;
    await run;
    let subscriberResults: FailoverSubscriber[] | undefined;
    if (group !== null) {
      await group.drain(acked.max, DRAIN_MS);
      subscriberResults = group.members.map((s, i) =>
        failoverSubscriber(s.afterMark(), s.report(acked, acked.max, 1), onAtKill[i] ?? '?', victim, acked.size),
      );
      group.close();
      group = null;
    }
    const leaderNow = client.leader ?? (await client.findLeaderWithin(5_000));
    const termAfter =
      leaderNow === null
        ? null
        : await client.status(leaderNow, 1_000).then(
            (s) => s.term,
            () => null,
          );
    const kill = killAt;
    const first = firstAfter as number | null;
    const last = lastBefore as number | null;

    const restartAt = now();
    target.restart(victim);
    await waitCaughtUp(client, 60_000);
    return {
      trial,
      killed: victim,
      pid,
      new_leader: leaderNow?.name ?? null,
      unavail_ms: first === null ? null : r1(first - kill),
      gap_ms: first === null || last === null ? null : r1(first - last),
      term_delta: termAfter === null ? null : termAfter - termBefore,
      errors_after_kill: errors,
      ok_before: okBefore,
      ok_after: okAfter,
      catch_up_ms: Math.round(now() - restartAt),
      ...(subscriberResults !== undefined ? { subscribers: subscriberResults } : {}),
    };
  } finally {
    stop = true; // on a failed trial too: the workers must not outlive it
    group?.close();
    client.close();
  }
}

function failoverSubscriber(after: AfterMark, r: SubscriberReport, onAtKill: string, victim: string, acked: number): FailoverSubscriber {
  return {
    ...after,
    on_at_kill: onAtKill,
    on_killed_node: onAtKill === victim,
    nodes: r.nodes,
    resubscribes: r.resubscribes,
    coverage_problems: r.coverage_problems,
    problems: r.problems,
    undelivered_after_drain: r.undelivered_after_drain,
    acked,
  };
}

/**
 * Every node answers, follows one leader in one term, and has applied
 * everything the leader had committed when we asked: then the restarted node
 * is a full member again and the next trial starts from a healthy cluster.
 */
export async function waitCaughtUp(client: BenchClient, timeoutMs: number): Promise<void> {
  const deadline = now() + timeoutMs;
  let last = '';
  while (now() < deadline) {
    const statuses = await Promise.all(client.members.map((m) => client.status(m, 1_000).catch(() => null)));
    const all = statuses.filter((s): s is StatusReply => s !== null);
    const leader = all.find((s) => s.role === 'leader');
    if (all.length === client.members.length && leader !== undefined) {
      const agreed = all.every((s) => s.leader === leader.node && s.term === leader.term);
      if (agreed && all.every((s) => s.appliedIndex >= leader.commitIndex)) return;
    }
    last = JSON.stringify(statuses.map((s) => (s === null ? null : [s.node, s.role, s.term, s.appliedIndex])));
    await sleep(50);
  }
  throw new Error(`the restarted node did not catch up within ${timeoutMs} ms (last: ${last})`);
}
