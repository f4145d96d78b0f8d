import type { SeededRandom } from '../../src/raft/random.js';
import type { NodeId } from '../../src/raft/types.js';

/** How unreliable the simulated network is. Times are in simulation units. */
export interface NetworkProfile {
  /** Every delivery takes a uniform delay in [minDelay, maxDelay]. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** Probability that a message vanishes. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice (the copy gets its own delay). */
  readonly duplicateRate: number;
  /** Probability that a message is held back for a long time: stale messages arrive long after the fact. */
  readonly longDelayRate: number;
  readonly longDelayMax: number;
}

/** A set of cut directed links, with a description for the trace. */
export interface Partition {
  readonly description: string;
  /** Directed links `from>to` that carry nothing while the partition lasts. */
  readonly cutLinks: ReadonlySet<string>;
}

export function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

/** Nodes in different groups cannot talk in either direction. */
export function splitPartition(groups: readonly (readonly NodeId[])[]): Partition {
  const cut = new Set<string>();
  groups.forEach((group, gi) => {
    groups.forEach((other, oi) => {
      if (gi === oi) return;
      for (const a of group) for (const b of other) cut.add(linkKey(a, b));
    });
  });
  return { description: groups.map((g) => `{${g.join(',')}}`).join(' | '), cutLinks: cut };
}

/** Messages from each `from` node to each `to` node are lost; the reverse direction still works. */
export function oneWayPartition(from: readonly NodeId[], to: readonly NodeId[]): Partition {
  const cut = new Set<string>();
  for (const a of from) for (const b of to) if (a !== b) cut.add(linkKey(a, b));
  return { description: `one-way {${from.join(',')}} -/-> {${to.join(',')}}`, cutLinks: cut };
}

export type DropReason = 'loss' | 'partition';

/** The fate of one sent message: when its copies arrive (empty when it is dropped). */
export interface DeliveryPlan {
  readonly delays: readonly number[];
  readonly dropped: DropReason | null;
}

/**
 * Decides what happens to each message: delay (and so reordering), loss,
 * duplication and partitions. A message crosses a link only if the link is up
 * both when it is sent and when it would arrive, so a partition also swallows
 * what is already in flight.
 */
export class Network {
  private partition: Partition | null = null;
  private partitionSerial = 0;

  constructor(
    private readonly random: SeededRandom,
    private profileValue: NetworkProfile,
  ) {}

  get profile(): NetworkProfile {
    return this.profileValue;
  }

  setProfile(profile: NetworkProfile): void {
    this.profileValue = profile;
  }

  get currentPartition(): Partition | null {
    return this.partition;
  }

  /** Installs a partition (replacing any other) and returns its serial number for a later heal. */
  partitionWith(partition: Partition): number {
    this.partition = partition;
    return ++this.partitionSerial;
  }

  /** Heals the partition with this serial, if it is still the current one; true if something healed. */
  heal(serial: number): boolean {
    if (this.partition === null || serial !== this.partitionSerial) return false;
    this.partition = null;
    return true;
  }

  healAll(): boolean {
    const had = this.partition !== null;
    this.partition = null;
    return had;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.partition !== null && this.partition.cutLinks.has(linkKey(from, to));
  }

  plan(from: NodeId, to: NodeId): DeliveryPlan {
    if (this.isCut(from, to)) return { delays: [], dropped: 'partition' };
    const p = this.profileValue;
    if (p.lossRate > 0 && this.random.chance(p.lossRate)) return { delays: [], dropped: 'loss' };
    const first = this.delay();
    if (p.duplicateRate > 0 && this.random.chance(p.duplicateRate)) {
      return { delays: [first, this.delay()], dropped: null };
    }
    return { delays: [first], dropped: null };
  }

  private delay(): number {
    const p = this.profileValue;
    if (p.longDelayRate > 0 && this.random.chance(p.longDelayRate)) {
      return p.maxDelay + 1 + this.random.nextInt(Math.max(1, p.longDelayMax - p.maxDelay));
    }
    return p.minDelay + this.random.nextInt(p.maxDelay - p.minDelay + 1);
  }
}
