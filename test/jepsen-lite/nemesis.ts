import { SeededRandom } from '../../src/raft/random.js';
import type { StatusReply } from '../../src/node/client-proto.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import type { FaultNetwork } from './fault-proxy.js';
import type { HistoryRecorder } from './recorder.js';

export const NEMESIS_KINDS = ['kill', 'pause', 'partition', 'slow'] as const;
export type NemesisKind = (typeof NEMESIS_KINDS)[number];

export interface NemesisOptions {
  readonly kinds: readonly NemesisKind[];
  readonly cluster: ProcessCluster;
  readonly network: FaultNetwork;
  readonly recorder: HistoryRecorder;
  readonly nodes: readonly string[];
  readonly seed: number;
  /** Mean quiet time before each fault of one kind. */
  readonly intervalMs: number;
  /** A fault lasts between these. */
  readonly minFaultMs: number;
  readonly maxFaultMs: number;
  readonly log: (line: string) => void;
}

interface Fault {
  readonly f: string;
  readonly stopF: string;
  readonly description: string;
  readonly nodes: readonly string[];
  readonly heal: () => Promise<void> | void;
}

/**
 * Injects faults while the workload runs: one loop per kind, each with its own
 * seeded generator, so kinds overlap (a kill during a partition) and the
 * schedule of choices repeats with the seed. Which node is the leader is
 * asked at the time, so targets like "the leader" depend on the run.
 */
export class Nemesis {
  readonly injected = new Map<string, number>();
  private stopping = false;
  private readonly wakers = new Set<() => void>();
  private loops: Promise<void>[] = [];

  constructor(private readonly options: NemesisOptions) {}

  start(): void {
    this.loops = this.options.kinds.map((kind, i) => this.loop(kind, new SeededRandom(this.options.seed * 31 + i + 1)));
  }

  /** Ends every fault and brings every node back: links healed, paused nodes resumed, killed nodes restarted. */
  async stopAndHeal(): Promise<void> {
    this.stopping = true;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
    const { network, cluster, nodes } = this.options;
    network.healCuts();
    network.healSlowness();
    for (const id of nodes) {
      if (cluster.isRunning(id)) cluster.resume(id);
      else cluster.startNode(id);
    }
  }

  private async loop(kind: NemesisKind, random: SeededRandom): Promise<void> {
    const { intervalMs, minFaultMs, maxFaultMs } = this.options;
    while (!this.stopping) {
      await this.sleep(intervalMs * (0.5 + random.next()));
      if (this.stopping) return;
      const fault = await this.inject(kind, random);
      if (fault === null) continue;
      const id = this.options.recorder.faultStarted(fault.f, kind, fault.description, fault.nodes);
      this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
      this.options.log(`nemesis: ${fault.description}`);
      await this.sleep(minFaultMs + random.next() * (maxFaultMs - minFaultMs));
      await fault.heal();
      this.options.recorder.faultStopped(id, fault.stopF, kind, `${fault.stopF} ${fault.nodes.join(' ')}`, fault.nodes);
      this.options.log(`nemesis: ${fault.stopF} ${fault.nodes.join(' ')}`);
    }
  }

  private async inject(kind: NemesisKind, random: SeededRandom): Promise<Fault | null> {
    switch (kind) {
      case 'kill':
        return this.kill(random);
      case 'pause':
        return this.pause(random);
      case 'partition':
        return this.partition(random);
      case 'slow':
        return this.slow(random);
    }
  }

  /** The leader half the time (the interesting case), otherwise any running node. */
  private async target(random: SeededRandom): Promise<{ id: string; leader: boolean } | null> {
    const { cluster, nodes } = this.options;
    const running = nodes.filter((id) => cluster.isRunning(id));
    if (running.length === 0) return null;
    const choice = running[random.nextInt(running.length)] as string;
    if (random.chance(0.5)) {
      const leader = await this.leader();
      if (leader !== null && running.includes(leader)) return { id: leader, leader: true };
    }
    return { id: choice, leader: false };
  }

  private async kill(random: SeededRandom): Promise<Fault | null> {
    const target = await this.target(random);
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
      heal: () => cluster.startNode(target.id),
    };
  }

  private async pause(random: SeededRandom): Promise<Fault | null> {
    const target = await this.target(random);
    if (target === null) return null;
    const { cluster } = this.options;
    if (!cluster.pause(target.id)) return null;
    return {
      f: 'pause',
      stopF: 'resume',
      description: `pause ${target.id}${target.leader ? ' (leader)' : ''}`,
      nodes: [target.id],
      heal: () => {
        // A node killed while paused was restarted by the kill nemesis: SIGCONT to it is harmless.
        cluster.resume(target.id);
      },
    };
  }

  private async partition(random: SeededRandom): Promise<Fault | null> {
    const { network, nodes } = this.options;
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
        if (other === victim) continue;
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

  private async slow(random: SeededRandom): Promise<Fault | null> {
    const { network, nodes } = this.options;
    const everyLink = random.chance(0.3);
    const victim = nodes[random.nextInt(nodes.length)] as string;
    const delayMs = 10 + random.nextInt(90);
    const lossRate = random.chance(0.5) ? 0.05 + random.next() * 0.15 : 0;
    const slow = { delayMs, jitterMs: delayMs / 2, lossRate, retransmitMs: 200 };
    const links = network.allLinks().filter((link) => everyLink || link.from === victim || link.to === victim);
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

  /** The leader that the running nodes agree on, or null. */
  async leader(): Promise<string | null> {
    const { cluster, nodes } = this.options;
    const statuses = await Promise.all(
      nodes.filter((id) => cluster.isRunning(id)).map((id) => cluster.status(id).catch((): StatusReply | null => null)),
    );
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
