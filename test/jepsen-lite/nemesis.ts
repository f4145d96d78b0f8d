import type { StatusReply } from '../../src/node/client-proto.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import type { FaultNetwork } from './fault-proxy.js';
import { MembershipNemesis, type MembershipReport } from './membership-nemesis.js';
import { NetnsNetwork } from './netns-network.js';
import { slotOf } from './node-slots.js';
import type { HistoryRecorder } from './recorder.js';
import type { Roster } from './roster.js';

export const NEMESIS_KINDS = ['kill', 'pause', 'partition', 'slow', 'disk', 'membership'] as const;
export type NemesisKind = (typeof NEMESIS_KINDS)[number];

export interface NemesisOptions {
  readonly kinds: readonly NemesisKind[];
  readonly cluster: ProcessCluster;
  /**
   * The TCP proxies (every partition flavour, and slow) or the network
   * namespaces (two-way cuts by moving links between bridges; one-way cuts
   * and slowness through the transport's failpoints). Both are made per
   * slot and take node ids, each standing for its slot (node-slots.ts).
   */
  readonly network: FaultNetwork | NetnsNetwork;
  readonly recorder: HistoryRecorder;
  /** The members now: every fault picks its nodes from the configuration the leader last reported. */
  readonly roster: Roster;
  /** Voters the membership nemesis keeps (at least 3, at most the roster's slots). */
  readonly minVoters: number;
  readonly maxVoters: number;
  readonly seed: number;
  /** Mean quiet time before each fault of one kind. */
  readonly intervalMs: number;
  /** A fault lasts between these. */
  readonly minFaultMs: number;
  readonly maxFaultMs: number;
  readonly log: (line: string) => void;
  /** Sets a failpoint on a running node (its HTTP failpoint control); the disk nemesis needs it, and slow and one-way cuts with --network netns. */
  readonly setFailpoint?: (id: string, name: string, action: string) => Promise<void>;
}

/**
 * Faults that set failpoints over a node's HTTP control stay off a paused
 * node, and a pause stays off a node with failpoints set: a request to a
 * stopped process times out here but waits in its socket, and would take
 * effect once the process resumes, after the fault was given up for lost (a
 * soak saw a node fail-stop on an EIO set that way, with no fault recorded).
 */
const FAILPOINTS_CLAIM = 'failpoints';
const FAILPOINT_HOLDERS: Record<NemesisKind, readonly string[]> = {
  pause: ['disk', FAILPOINTS_CLAIM],
  disk: ['pause'],
  kill: [],
  partition: [],
  slow: [],
  membership: [],
};

interface Fault {
  readonly f: string;
  readonly stopF: string;
  readonly description: string;
  readonly nodes: readonly string[];
  readonly heal: () => Promise<void> | void;
  /** The node this fault holds (Roster.claim), released once healed. */
  readonly claimed?: string;
  /** Nodes a failpoint fault holds (claimed as FAILPOINTS_CLAIM), released once healed. */
  readonly claimedAll?: readonly string[];
}

/**
 * Injects faults while the workload runs: one loop per kind, each with its own
 * seeded generator, so kinds overlap (a kill during a partition) and the
 * schedule of choices repeats with the seed. Which node is the leader is
 * asked at the time, so targets like "the leader" depend on the run. Targets
 * are the members of the moment (the roster): the membership kind
 * (membership-nemesis.ts) changes them, and a node it is working on is left
 * to it, as a node killed or paused is left alone by the membership changes.
 */
export class Nemesis {
  readonly injected = new Map<string, number>();
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private loops: Promise<void>[] = [];
  private readonly membership: MembershipNemesis | null;
  private healed: Promise<void> | null = null;
  private finalConfiguration: MembershipReport['final'] = null;

  constructor(private readonly options: NemesisOptions) {
    this.membership = options.kinds.includes('membership')
      ? new MembershipNemesis({
          cluster: options.cluster,
          roster: options.roster,
          recorder: options.recorder,
          minVoters: options.minVoters,
          maxVoters: options.maxVoters,
          log: options.log,
          stopping: () => this.stopping,
          sleep: (ms) => this.sleep(ms),
        })
      : null;
  }

  start(): void {
    this.loops = this.options.kinds.map((kind, i) => this.loop(kind, new SeededRandom(this.options.seed * 31 + i + 1)));
  }

  /** What the membership nemesis did, and the configuration after the heal; null when it did not run. */
  get membershipReport(): MembershipReport | null {
    if (this.membership === null) return null;
    return {
      counts: { ...this.membership.counts },
      final: this.finalConfiguration,
      steps: [...this.membership.steps],
      unexpectedExits: [...this.membership.unexpectedExits],
    };
  }

  /**
   * Ends every fault and brings every member back: links healed, paused
   * nodes resumed, killed members restarted (a removed node is not); with
   * the membership nemesis, the configuration is read from the leader and
   * every member of it is running and no other node. Once: a second call
   * waits for the first.
   */
  stopAndHeal(settleWithinMs = 30_000): Promise<void> {
    this.healed ??= this.heal(settleWithinMs);
    return this.healed;
  }

  private async heal(settleWithinMs: number): Promise<void> {
    this.stopping = true;
    for (const wake of this.wakers) wake();
    // Each loop heals its own fault before it ends (a killed member restarted, a paused one resumed).
    await Promise.all(this.loops);
    const { network, cluster, roster } = this.options;
    if (network instanceof NetnsNetwork) await network.heal();
    else {
      network.healCuts();
      network.healSlowness();
    }
    for (const id of roster.ids) if (cluster.isRunning(id)) cluster.resume(id);
    if (this.membership !== null) {
      this.finalConfiguration = await this.membership.settle(settleWithinMs);
      return;
    }
    for (const id of roster.members()) if (!cluster.isRunning(id)) cluster.startNode(id);
  }

  private async loop(kind: NemesisKind, random: SeededRandom): Promise<void> {
    const { intervalMs, roster } = this.options;
    // Membership changes start every interval on average, however long one takes (under faults, many
    // seconds: the next may follow at once); other faults come an interval after the last one healed.
    let quietFrom = Date.now();
    while (!this.stopping) {
      if (kind !== 'membership') quietFrom = Date.now();
      await this.sleep(quietFrom + intervalMs * (0.5 + random.next()) - Date.now());
      if (this.stopping) return;
      if (kind === 'membership') {
        // A change is a step of its own, recorded as a window from its start to its outcome.
        quietFrom = Date.now();
        if (await this.membership?.step(random)) this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
        continue;
      }
      const fault = await this.inject(kind, random);
      if (fault === null) continue;
      const id = this.options.recorder.faultStarted(fault.f, kind, fault.description, fault.nodes);
      this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
      this.options.log(`nemesis: ${fault.description}`);
      await this.sleep(this.faultDurationMs(kind, random));
      try {
        await fault.heal();
      } finally {
        if (fault.claimed !== undefined) roster.release(fault.claimed, kind);
        for (const id of fault.claimedAll ?? []) roster.release(id, FAILPOINTS_CLAIM);
      }
      this.options.recorder.faultStopped(id, fault.stopF, kind, `${fault.stopF} ${fault.nodes.join(' ')}`, fault.nodes);
      this.options.log(`nemesis: ${fault.stopF} ${fault.nodes.join(' ')}`);
    }
  }

  /**
   * How long a fault lasts. Long faults (minFaultMs..maxFaultMs) outlast
   * every client deadline: calls fail, and what is left to check is the
   * aftermath. Bugs that turn a failure into a wrong answer need the call to
   * outlive the fault instead, so a share of faults is short: partitions,
   * kills and disk faults under a second (below the default 1 s deadline),
   * and pauses just over an election timeout (200-400 ms by default), long
   * enough for the others to elect a leader, short enough for the paused
   * node to wake up still believing it leads.
   */
  private faultDurationMs(kind: NemesisKind, random: SeededRandom): number {
    const { minFaultMs, maxFaultMs } = this.options;
    if (kind === 'pause' && random.chance(0.5)) return 450 + random.next() * 350;
    if (kind !== 'pause' && random.chance(0.4)) return 200 + random.next() * 700;
    return minFaultMs + random.next() * (maxFaultMs - minFaultMs);
  }

  private async inject(kind: Exclude<NemesisKind, 'membership'>, random: SeededRandom): Promise<Fault | null> {
    switch (kind) {
      case 'kill':
        return this.kill(random);
      case 'pause':
        return this.pause(random);
      case 'partition':
        return this.partition(random);
      case 'slow':
        return this.slow(random);
      case 'disk':
        return this.disk(random);
    }
  }

  /**
   * The leader half the time (the interesting case), otherwise any running
   * member; one a membership change is working on is left alone. The target
   * is claimed for `kind` until the fault is healed.
   */
  private async target(kind: NemesisKind, random: SeededRandom): Promise<{ id: string; leader: boolean } | null> {
    const { roster } = this.options;
    const running = roster.runningMembers().filter((id) => !FAILPOINT_HOLDERS[kind].some((other) => roster.isClaimedBy(id, other)));
    if (running.length === 0) return null;
    const choice = running[random.nextInt(running.length)] as string;
    let target = { id: choice, leader: false };
    if (random.chance(0.5)) {
      const leader = await this.leader();
      if (leader !== null && running.includes(leader)) target = { id: leader, leader: true };
    }
    // Checked again as the claim is taken: another nemesis may have claimed the node while the leader was asked.
    if (FAILPOINT_HOLDERS[kind].some((other) => roster.isClaimedBy(target.id, other))) return null;
    return roster.claim(target.id, kind) ? target : null;
  }

  private async kill(random: SeededRandom): Promise<Fault | null> {
    const target = await this.target('kill', random);
    if (target === null) return null;
    const { cluster } = this.options;
    // Mostly SIGKILL (a crash); sometimes SIGTERM, whose graceful stop must still tell waiting clients the truth.
    const graceful = random.chance(0.25);
    if (graceful) await cluster.stop(target.id);
    else await cluster.kill(target.id);
    return {
      f: 'kill',
      stopF: 'restart',
      description: `${graceful ? 'stop (SIGTERM)' : 'kill'} ${target.id}${target.leader ? ' (leader)' : ''}`,
      nodes: [target.id],
      // While it is claimed no membership change touches it: it is still a member, and comes back.
      heal: () => {
        if (!cluster.isRunning(target.id)) cluster.startNode(target.id);
      },
      claimed: target.id,
    };
  }

  private async pause(random: SeededRandom): Promise<Fault | null> {
    const target = await this.target('pause', random);
    if (target === null) return null;
    const { cluster, roster } = this.options;
    if (!cluster.pause(target.id)) {
      roster.release(target.id, 'pause');
      return null;
    }
    return {
      f: 'pause',
      stopF: 'resume',
      description: `pause ${target.id}${target.leader ? ' (leader)' : ''}`,
      nodes: [target.id],
      heal: () => {
        // A node killed while paused was restarted by the kill nemesis: SIGCONT to it is harmless.
        cluster.resume(target.id);
      },
      claimed: target.id,
    };
  }

  private async partition(random: SeededRandom): Promise<Fault | null> {
    const { network } = this.options;
    const nodes = this.options.roster.members();
    if (nodes.length < 2) return null;
    if (network instanceof NetnsNetwork) return this.partitionBridges(network, nodes, random);
    const shuffled = shuffle(nodes, random);
    const flavour = random.nextInt(4);
    let description: string;
    if (flavour === 0) {
      // Majority and minority halves: the minority can elect no one.
      const minority = shuffled.slice(0, 1 + random.nextInt(Math.floor((nodes.length - 1) / 2)));
      const majority = shuffled.filter((id) => !minority.includes(id));
      network.cutBetween(minority, majority);
      description = `partition ${minority.join(' ')} | ${majority.join(' ')}`;
    } else if (flavour === 1) {
      const leader = (await this.leader()) ?? (shuffled[0] as string);
      const rest = nodes.filter((id) => id !== leader);
      network.cutBetween([leader], rest);
      description = `partition isolate leader ${leader} | ${rest.join(' ')}`;
    } else if (flavour === 2) {
      // A bridge sees both halves, which cannot see each other.
      const [bridge, ...others] = shuffled as [string, ...string[]];
      const half = Math.ceil(others.length / 2);
      const left = others.slice(0, half);
      const right = others.slice(half);
      network.cutBetween(left, right);
      description = `partition bridge ${left.join(' ')} <${bridge}> ${right.join(' ')}`;
    } else {
      const victim = shuffled[0] as string;
      const outbound = random.chance(0.5);
      for (const other of nodes) {
        if (slotOf(other) === slotOf(victim)) continue;
        if (outbound) network.link(victim, other).setCut(true);
        else network.link(other, victim).setCut(true);
      }
      description = outbound ? `partition one-way: ${victim} cannot send` : `partition one-way: ${victim} cannot receive`;
    }
    return {
      f: 'start-partition',
      stopF: 'stop-partition',
      description,
      nodes: [...nodes],
      heal: () => network.healCuts(),
    };
  }

  /**
   * The partitions moving links between bridges can make: majority and
   * minority, the leader isolated, and a bridge node that sees both halves.
   * Always two-way (no one-way cuts without packet filters). The clients stay
   * on the main bridge with the majority, the left half, or the others than
   * the leader: the side moved away is cut from the clients too.
   */
  private async partitionBridges(network: NetnsNetwork, nodes: readonly string[], random: SeededRandom): Promise<Fault | null> {
    // One time in four, a one-way cut, which moving links cannot make: the transport's failpoints do.
    if (random.chance(0.25)) return this.oneWayThroughFailpoints(nodes, random);
    const shuffled = shuffle(nodes, random);
    const flavour = random.nextInt(nodes.length >= 3 ? 3 : 2);
    let description: string;
    if (flavour === 0) {
      const minority = shuffled.slice(0, 1 + random.nextInt(Math.floor((nodes.length - 1) / 2)));
      const majority = shuffled.filter((id) => !minority.includes(id));
      await network.partition([majority, minority]);
      description = `partition ${minority.join(' ')} | ${majority.join(' ')} (links)`;
    } else if (flavour === 1) {
      const leader = (await this.leader()) ?? (shuffled[0] as string);
      const rest = nodes.filter((id) => id !== leader);
      await network.partition([rest, [leader]]);
      description = `partition isolate leader ${leader} | ${rest.join(' ')} (links)`;
    } else {
      const [bridge, ...others] = shuffled as [string, ...string[]];
      const half = Math.ceil(others.length / 2);
      const left = others.slice(0, half);
      const right = others.slice(half);
      await network.bridgePartition(left, bridge, right);
      description = `partition bridge ${left.join(' ')} <${bridge}> ${right.join(' ')} (links)`;
    }
    return {
      f: 'start-partition',
      stopF: 'stop-partition',
      description,
      nodes: [...nodes],
      heal: () => network.heal(),
    };
  }

  private async slow(random: SeededRandom): Promise<Fault | null> {
    const { network } = this.options;
    const nodes = this.options.roster.members();
    const everyLink = random.chance(0.3);
    const victim = nodes[random.nextInt(nodes.length)] as string;
    const delayMs = 10 + random.nextInt(90);
    const lossRate = random.chance(0.5) ? 0.05 + random.next() * 0.15 : 0;
    if (network instanceof NetnsNetwork) return this.slowThroughFailpoints(everyLink ? nodes : [victim], delayMs, lossRate);
    const slow = { delayMs, jitterMs: delayMs / 2, lossRate, retransmitMs: 200 };
    // Links are made per slot (node-slots.ts): a member's are those of the slot it runs in.
    const links = network.allLinks().filter((link) => everyLink || link.from === slotOf(victim) || link.to === slotOf(victim));
    for (const link of links) link.setSlow(slow);
    const where = everyLink ? 'every link' : `links of ${victim}`;
    const loss = lossRate > 0 ? `, ${Math.round(lossRate * 100)}% loss` : '';
    return {
      f: 'start-slow',
      stopF: 'stop-slow',
      description: `slow ${where}: +${delayMs}–${Math.round(delayMs * 1.5)} ms${loss}`,
      nodes: everyLink ? [...nodes] : [victim],
      heal: () => {
        for (const link of links) link.setSlow(null);
      },
    };
  }

  /**
   * Slow links without tc netem (--network netns): the transport's
   * failpoints on each node named hold what it sends for the delay
   * (peer-send) and lose a share of what it receives (peer-receive). Unlike
   * the proxies' slowness there is no jitter, and only the links of the nodes
   * named are slowed (both ways when every node is).
   */
  private async slowThroughFailpoints(victims: readonly string[], delayMs: number, lossRate: number): Promise<Fault | null> {
    const loss = Math.round(lossRate * 100);
    const set = await this.setOnEach(this.claimForFailpoints(victims), [
      ['peer-send', `delay(${delayMs})`],
      ...(loss > 0 ? ([['peer-receive', `${loss}%error(lost)`]] as const) : []),
    ]);
    if (set.length === 0) return null;
    const all = set.length === this.options.roster.members().length;
    return {
      f: 'start-slow',
      stopF: 'stop-slow',
      description: `slow ${all ? 'every node' : `node ${set.join(' ')}`} (failpoints): sends +${delayMs} ms${loss > 0 ? `, ${loss}% of what it receives lost` : ''}`,
      nodes: set,
      heal: () => this.clearOnEach(set, ['peer-send', 'peer-receive']),
      claimedAll: set,
    };
  }

  /**
   * A one-way cut without packet filters (--network netns): the victim's
   * transport loses everything it sends (peer-send), or everything it
   * receives (peer-receive), until the heal. Clients still reach it.
   */
  private async oneWayThroughFailpoints(nodes: readonly string[], random: SeededRandom): Promise<Fault | null> {
    const leaderFirst = random.chance(0.5) ? await this.leader() : null;
    const victim = leaderFirst !== null && nodes.includes(leaderFirst) ? leaderFirst : (nodes[random.nextInt(nodes.length)] as string);
    const outbound = random.chance(0.5);
    const failpoint = outbound ? 'peer-send' : 'peer-receive';
    if ((await this.setOnEach(this.claimForFailpoints([victim]), [[failpoint, 'error(one-way cut)']])).length === 0) return null;
    return {
      f: 'start-partition',
      stopF: 'stop-partition',
      description: `partition one-way: ${victim}${victim === leaderFirst ? ' (leader)' : ''} cannot ${outbound ? 'send' : 'receive'} (failpoint ${failpoint})`,
      nodes: [...nodes],
      heal: () => this.clearOnEach([victim], [failpoint]),
      claimedAll: [victim],
    };
  }

  /** Claims each of `ids` that is not paused nor held by a membership change; returns those claimed. */
  private claimForFailpoints(ids: readonly string[]): string[] {
    const { roster } = this.options;
    return ids.filter((id) => !roster.isClaimedBy(id, 'pause') && roster.claim(id, FAILPOINTS_CLAIM));
  }

  /** Sets failpoints on each running node of `ids`; returns those where all were set (a node killed meanwhile is left out). */
  private async setOnEach(ids: readonly string[], settings: readonly (readonly [string, string])[]): Promise<string[]> {
    const { setFailpoint, cluster } = this.options;
    if (setFailpoint === undefined) throw new Error('this nemesis needs the nodes started with failpoint control');
    const done = await Promise.all(
      ids.map(async (id) => {
        try {
          if (!cluster.isRunning(id)) throw new Error(`${id} is not running`);
          for (const [name, action] of settings) await setFailpoint(id, name, action);
          return id;
        } catch {
          // Killed meanwhile (a restarted node starts with none set): no fault there.
          this.options.roster.release(id, FAILPOINTS_CLAIM);
          return null;
        }
      }),
    );
    return done.filter((id): id is string => id !== null);
  }

  /** Turns failpoints off on the nodes still running (a restarted node starts with none set). */
  private async clearOnEach(ids: readonly string[], names: readonly string[]): Promise<void> {
    const { setFailpoint, cluster } = this.options;
    await Promise.all(
      ids
        .filter((id) => cluster.isRunning(id))
        .map(async (id) => {
          for (const name of names) await setFailpoint?.(id, name, 'off').catch(() => undefined);
        }),
    );
  }

  /**
   * A disk that stalls: the node's fsync'd log writes hang until the fault
   * heals (a leader must give up leading meanwhile); or, one time in five, a
   * disk that fails: the next write errors and the node must stop (fail-stop),
   * to be restarted at the heal with its data as the last good write left it.
   */
  private async disk(random: SeededRandom): Promise<Fault | null> {
    const { cluster, setFailpoint } = this.options;
    if (setFailpoint === undefined) throw new Error('the disk nemesis needs the nodes started with failpoint control');
    const target = await this.target('disk', random);
    if (target === null) return null;
    const fails = random.chance(0.2);
    const who = `${target.id}${target.leader ? ' (leader)' : ''}`;
    try {
      await setFailpoint(target.id, 'log-write', fails ? 'error(injected EIO: the disk failed)' : 'pause');
    } catch {
      // Killed meanwhile by another nemesis: no fault this time.
      this.options.roster.release(target.id, 'disk');
      return null;
    }
    return {
      f: fails ? 'disk-fail' : 'disk-stall',
      stopF: fails ? 'disk-replace' : 'disk-resume',
      description: fails ? `fail the disk of ${who}` : `stall the disk of ${who}`,
      nodes: [target.id],
      heal: async () => {
        if (cluster.isRunning(target.id)) await setFailpoint(target.id, 'log-write', 'off').catch(() => undefined);
        // A failed disk stopped the node (or a stall outlived a kill): it comes back, like a replaced disk with its data.
        if (!cluster.isRunning(target.id)) cluster.startNode(target.id);
      },
      claimed: target.id,
    };
  }

  /** The leader that the running members agree on, or null. */
  async leader(): Promise<string | null> {
    const { cluster, roster } = this.options;
    const statuses = await Promise.all(roster.runningMembers().map((id) => cluster.status(id).catch((): StatusReply | null => null)));
    const leaders = statuses.filter((s): s is StatusReply => s !== null && s.role === 'leader');
    if (leaders.length === 0) return null;
    // Two nodes may both think they lead for a moment; the higher term is the real one.
    leaders.sort((a, b) => b.term - a.term);
    return (leaders[0] as StatusReply).node;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}

function shuffle<T>(items: readonly T[], random: SeededRandom): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.nextInt(i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}
