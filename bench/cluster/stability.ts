/**
 * Stability under heavy write load: with C=256 Puts in flight, does the
 * cluster keep its leader? Leadership flapping under load (heartbeats stuck
 * behind fsyncs or a busy event loop) shows up as failed or slow writes that
 * a throughput figure hides, so it is counted directly.
 */
import { readFileSync } from 'node:fs';
import type { StatusReply } from '../../src/node/client-proto.js';
import { BenchClient, sleep } from './client.js';
import { type LoadShape, type MeasuredLoad, measureClosedLoop, now } from './load.js';
import { r1 } from './stats.js';
import type { BenchTarget } from './target.js';

export interface StabilityOptions extends LoadShape {
  readonly seconds: number;
  readonly warmupS: number;
  readonly pollMs: number;
  readonly timeoutMs: number;
}

export interface StabilityEvent {
  readonly t_s: number;
  readonly kind: 'leader' | 'term' | 'no-leader';
  readonly from: string | number | null;
  readonly to: string | number | null;
}

export interface StabilityResult extends MeasuredLoad {
  readonly op: 'put';
  readonly concurrency: number;
  readonly seconds: number;
  readonly leader_start: string | null;
  readonly leader_end: string | null;
  readonly term_start: number | null;
  readonly term_end: number | null;
  /** Highest term at the end minus at the start: every election, even one too short for the polls to see. */
  readonly term_delta: number | null;
  /** Changes of the polled leader from one node to another (a leaderless stretch in between counts once). */
  readonly leader_changes: number;
  /** Increases of the highest polled term. */
  readonly term_changes: number;
  /** Polls in which no answering node knew a leader. */
  readonly leaderless_polls: number;
  readonly polls: number;
  readonly status_errors: number;
  /** Slowest Status round trip: a node too busy to answer Status is also too busy to heartbeat. */
  readonly status_max_ms: number;
  /** From the nodes' own logs (spawned clusters): "became leader" lines during the run, per term. */
  readonly log_elections: { node: string; term: number; t_s: number }[] | null;
  readonly events: StabilityEvent[];
  readonly target_met: boolean;
}

export async function runStability(target: BenchTarget, o: StabilityOptions): Promise<StabilityResult> {
  const client = new BenchClient(target.endpoints, o.timeoutMs);
  let stopping = false;
  try {
    const first = await client.findLeaderWithin(15_000);
    if (first === null) throw new Error('no leader found within 15 s');
    const wallStart = Date.now();
    const tStart = now();
    const start = await statusAll(client, 1_000);
    const termStart = maxTerm(start);

    // The poller runs from the first Put to the last: the onset of load is when elections are likeliest.
    const events: StabilityEvent[] = [];
    let polls = 0;
    let statusErrors = 0;
    let statusMax = 0;
    let leaderless = 0;
    let leaderChanges = 0;
    let termChanges = 0;
    let lastLeader: string | null = leaderOf(start);
    let lastTerm = termStart;
    let wasLeaderless = false;
    const poller = (async () => {
      while (!stopping) {
        const t0 = now();
        const statuses = await Promise.all(
          client.members.map((m) =>
            client.status(m, 1_000).then(
              (s) => {
                statusMax = Math.max(statusMax, now() - t0);
                return s;
              },
              () => {
                statusErrors++;
                return null;
              },
            ),
          ),
        );
        polls++;
        const t_s = r1((now() - tStart) / 1000);
        const term = maxTerm(statuses);
        if (term !== null && lastTerm !== null && term > lastTerm) {
          termChanges++;
          events.push({ t_s, kind: 'term', from: lastTerm, to: term });
        }
        if (term !== null) lastTerm = term;
        const leader = leaderOf(statuses);
        if (leader === null) {
          leaderless++;
          if (!wasLeaderless) events.push({ t_s, kind: 'no-leader', from: lastLeader, to: null });
        } else if (leader !== lastLeader) {
          if (lastLeader !== null) leaderChanges++;
          events.push({ t_s, kind: 'leader', from: lastLeader, to: leader });
          lastLeader = leader;
        }
        wasLeaderless = leader === null;
        await sleep(Math.max(0, o.pollMs - (now() - t0)));
      }
    })();

    let measured: MeasuredLoad;
    try {
      ({ measured } = await measureClosedLoop(client, o, { warmupS: o.warmupS, durationS: o.seconds, tracked: () => target.tracked() }));
    } finally {
      stopping = true;
      await poller;
    }

    const end = await statusAll(client, 1_000);
    const termEnd = maxTerm(end);
    const termDelta = termStart === null || termEnd === null ? null : termEnd - termStart;
    const logElections = electionsInLogs(target, wallStart);
    return {
      op: 'put',
      concurrency: o.concurrency,
      seconds: o.seconds,
      leader_start: leaderOf(start),
      leader_end: leaderOf(end),
      term_start: termStart,
      term_end: termEnd,
      term_delta: termDelta,
      leader_changes: leaderChanges,
      term_changes: termChanges,
      leaderless_polls: leaderless,
      polls,
      status_errors: statusErrors,
      status_max_ms: r1(statusMax),
      log_elections: logElections,
      events: events.slice(0, 100),
      ...measured,
      target_met: leaderChanges === 0 && termDelta === 0 && (logElections?.length ?? 0) === 0,
    };
  } finally {
    stopping = true;
    client.close();
  }
}

function statusAll(client: BenchClient, timeoutMs: number): Promise<(StatusReply | null)[]> {
  return Promise.all(client.members.map((m) => client.status(m, timeoutMs).catch(() => null)));
}

function maxTerm(statuses: readonly (StatusReply | null)[]): number | null {
  let term: number | null = null;
  for (const s of statuses) if (s !== null && (term === null || s.term > term)) term = s.term;
  return term;
}

/** The leader as the node(s) in the highest term see it; null when none of them knows one. */
function leaderOf(statuses: readonly (StatusReply | null)[]): string | null {
  const term = maxTerm(statuses);
  for (const s of statuses) if (s !== null && s.term === term && s.leader !== '') return s.leader;
  return null;
}

/** Role lines the nodes logged since `sinceMs` in which they became leader: elections too brief to poll. */
function electionsInLogs(target: BenchTarget, sinceMs: number): { node: string; term: number; t_s: number }[] | null {
  const files = target.logFiles();
  if (files === null) return null;
  const out: { node: string; term: number; t_s: number }[] = [];
  for (const [node, file] of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"event":"role"')) continue;
      try {
        const rec = JSON.parse(line) as { time?: number; role?: string; term?: number };
        if (rec.role === 'leader' && typeof rec.time === 'number' && rec.time >= sinceMs && typeof rec.term === 'number') {
          out.push({ node, term: rec.term, t_s: r1((rec.time - sinceMs) / 1000) });
        }
      } catch {
        // a torn last line of a node that is still writing
      }
    }
  }
  return out.sort((a, b) => a.t_s - b.t_s);
}
