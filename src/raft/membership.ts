import type { ClusterConfig, ConfigChange, Entry, NodeId } from './types.js';

/**
 * Configurations as the log carries them, and the rules of a single change.
 * A config entry's data is the whole new configuration, so a node never needs
 * the history of changes to know what is in force.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfig(config: ClusterConfig): Uint8Array {
  const removed = removedOf(config);
  const normalised: ClusterConfig = {
    voters: [...config.voters],
    learners: [...(config.learners ?? [])],
    addresses: { ...(config.addresses ?? {}) },
    // Absent until the first removal, so configurations of clusters that never removed anyone keep their bytes.
    ...(removed.length > 0 ? { removed: [...removed] } : {}),
  };
  return encoder.encode(JSON.stringify(normalised));
}

export function decodeConfig(data: Uint8Array, where: string): ClusterConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (error) {
    throw new Error(`${where}: config entry is not valid JSON (${(error as Error).message})`);
  }
  const value = parsed as Partial<Record<keyof ClusterConfig, unknown>> | null;
  const isIds = (ids: unknown): ids is NodeId[] => Array.isArray(ids) && ids.every((id) => typeof id === 'string' && id !== '');
  if (value === null || typeof value !== 'object' || !isIds(value.voters) || !isIds(value.learners ?? [])) {
    throw new Error(`${where}: config entry does not hold voters and learners`);
  }
  const removed = value.removed ?? [];
  if (!isIds(removed)) throw new Error(`${where}: config entry's removed ids are not a list of ids`);
  const addresses = value.addresses ?? {};
  if (typeof addresses !== 'object' || addresses === null || Object.values(addresses).some((a) => typeof a !== 'string')) {
    throw new Error(`${where}: config entry's addresses are not a map of strings`);
  }
  return {
    voters: value.voters,
    learners: (value.learners ?? []) as NodeId[],
    addresses: addresses as Record<NodeId, string>,
    ...(removed.length > 0 ? { removed } : {}),
  };
}

export function learnersOf(config: ClusterConfig): readonly NodeId[] {
  return config.learners ?? [];
}

export function removedOf(config: ClusterConfig): readonly NodeId[] {
  return config.removed ?? [];
}

export function isMember(config: ClusterConfig, id: NodeId): boolean {
  return config.voters.includes(id) || learnersOf(config).includes(id);
}

/** The configuration after `change`, or why the change is not valid for `config`. */
export function applyChange(config: ClusterConfig, change: ConfigChange): ClusterConfig | string {
  const learners = learnersOf(config);
  const addresses = { ...(config.addresses ?? {}) };
  const removed = removedOf(config);
  const keepRemoved = removed.length > 0 ? { removed: [...removed] } : {};
  switch (change.type) {
    case 'add-learner': {
      if (isMember(config, change.id)) {
        return `${change.id} is already a ${config.voters.includes(change.id) ? 'voter' : 'learner'}`;
      }
      if (removed.includes(change.id)) {
        return `${change.id} was removed from this cluster, and a removed id never becomes a member again (its old process or disk could still speak for it): add the replacement under a new id`;
      }
      if (change.address === '') return `${change.id} needs an address`;
      const taken = Object.entries(addresses).find(([id, address]) => address === change.address && id !== change.id);
      if (taken !== undefined) return `address ${change.address} is already ${taken[0]}'s`;
      addresses[change.id] = change.address;
      return { voters: [...config.voters], learners: [...learners, change.id], addresses, ...keepRemoved };
    }
    case 'promote':
      if (config.voters.includes(change.id)) return `${change.id} is already a voter`;
      if (!learners.includes(change.id)) return `${change.id} is not a learner of this cluster (add it as a learner first)`;
      return { voters: [...config.voters, change.id], learners: learners.filter((id) => id !== change.id), addresses, ...keepRemoved };
    case 'remove': {
      if (!isMember(config, change.id)) return `${change.id} is not a member of this cluster`;
      const voters = config.voters.filter((id) => id !== change.id);
      if (voters.length === 0) return `${change.id} is the last voter: a cluster cannot run without one`;
      delete addresses[change.id];
      return { voters, learners: learners.filter((id) => id !== change.id), addresses, removed: [...removed, change.id] };
    }
  }
}

export function describeConfig(config: ClusterConfig): string {
  const learners = learnersOf(config);
  return `voters ${config.voters.join(', ') || 'none'}${learners.length > 0 ? `; learners ${learners.join(', ')}` : ''}`;
}

/**
 * The configurations a log holds: the one in force at its start (from the
 * snapshot or the bootstrap) and every config entry after it. The latest is
 * in force, committed or not; entries replaced by a conflicting append take
 * their configurations with them.
 */
export class ConfigHistory {
  private readonly changes: { readonly index: number; readonly config: ClusterConfig }[] = [];

  constructor(
    private base: ClusterConfig,
    private baseIndex: number,
    private readonly nodeId: NodeId,
  ) {}

  // Read on every message and tick. `changes[length - 1]` of an empty array is index -1, a property
  // lookup through the prototype chain that showed as the simulator's busiest function; `.at(-1)` is not.
  latest(): ClusterConfig {
    return this.changes.at(-1)?.config ?? this.base;
  }

  latestIndex(): number {
    return this.changes.at(-1)?.index ?? this.baseIndex;
  }

  /** The configuration in force once everything up to `index` is applied. */
  at(index: number): ClusterConfig {
    for (let i = this.changes.length - 1; i >= 0; i--) {
      const change = this.changes[i] as { index: number; config: ClusterConfig };
      if (change.index <= index) return change.config;
    }
    return this.base;
  }

  /** Entries appended (or replacing everything from entries[0].index on). */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.truncateFrom(first.index);
    for (const entry of entries) {
      if (entry.kind === 'config') {
        this.changes.push({ index: entry.index, config: decodeConfig(entry.data, `node ${this.nodeId}, entry ${entry.index}`) });
      }
    }
  }

  /** Entries from `index` on are gone (a conflicting suffix). */
  truncateFrom(index: number): void {
    while ((this.changes.at(-1)?.index ?? 0) >= index) this.changes.pop();
  }

  /** A snapshot replaced the log: its configuration is the base. */
  restore(config: ClusterConfig, index: number): void {
    this.changes.length = 0;
    this.base = config;
    this.baseIndex = index;
  }
}
