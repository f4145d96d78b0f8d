/**
 * The `membership` nemesis: while the workload runs and the other nemeses
 * kill, pause and cut nodes, it changes the cluster's membership the way an
 * operator would, through the Cluster API:
 *
 * - add: a spare id (never used before: see below) starts with an empty data
 *   dir and --join, is added as a learner, and promoted once it has caught up.
 *   Promotion is retried while the leader refuses it (the learner is behind);
 *   past PROMOTE_WITHIN_MS the node stays a learner, and the next step
 *   promotes it before anything else.
 * - remove: a running voter (the leader half the time) is removed, keeping at
 *   least `minVoters`; the removed process exits by itself (SIGKILL after
 *   EXIT_WITHIN_MS: one cut off while it was removed never hears of it) and
 *   its slot is free for a new id.
 * - replace: a voter dies with its disk and a spare takes its place. A spare
 *   is started first (waiting to be added), then the voter is killed, the
 *   spare added and promoted, and the dead voter removed; with no room for
 *   another voter, the dead one is removed first and then a spare added (in
 *   the dead one's slot, under the slot's next id, when no other is free). A
 *   dead voter's data is never used again once its removal is committed: had
 *   the removal not happened, it restarts from its data, as after any kill.
 *
 * Voters stay between `minVoters` and `maxVoters`. Each step first reads the
 * configuration from the leader (MemberList), never trusting its own
 * bookkeeping: a change the cluster refused (a change pending, quorum at risk,
 * no leader) or whose outcome is unknown is recorded, and the next step starts
 * from what the leader says.
 *
 * Ids are never reused: the leader refuses to add a removed id (its old
 * process or disk could still speak for it), as etcd does. Every new member
 * takes an id never started before, in a free slot (roster.ts, node-slots.ts):
 * n4, then n4.2, n4.3, ... in slot n4. Each id gets a data dir of its own
 * (nothing is wiped), and reaches and is reached through its slot's proxies
 * or network namespace. A joiner stopped after an add whose outcome was
 * unknown keeps its slot's id until a step finds it no member; should the
 * add commit after its slot moved on, that member (which can never run
 * again) is removed.
 */
import {
  type RaftLogClient,
  RaftLogError,
  RaftLogFailedPreconditionError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import type { SeededRandom } from '../../src/raft/random.js';
import type { ProcessCluster } from '../support/process-cluster.js';
import { slotOf } from './node-slots.js';
import type { HistoryRecorder } from './recorder.js';
import { type Configuration, describeConfiguration, type Roster } from './roster.js';

/** Who owns a node while a membership step works on it (see Roster.claim). */
export const MEMBERSHIP_CLAIM = 'membership';

/** Each Cluster API call's deadline. */
const CHANGE_DEADLINE_MS = 5_000;
/** A joining node must answer Status within this (process start, --join discovery). */
const JOINER_UP_MS = 30_000;
/** Promotion is retried (the learner catching up, no leader for a while) for this long. */
const PROMOTE_WITHIN_MS = 30_000;
/** A refused removal of a dead voter is retried for this long before it is restarted instead. */
const REMOVE_WITHIN_MS = 15_000;
/** A removed node exits by itself once it learns of its removal; one cut off may never learn. */
const EXIT_WITHIN_MS = 20_000;
const EXIT_WHILE_STOPPING_MS = 5_000;
/** How long to wait for a leader with a committed configuration. */
const READ_WITHIN_MS = 10_000;
const RETRY_MS = 300;
/**
 * A refusal is mostly passing (no leader during a partition, a leader that has
 * not committed in its term yet, the previous change not committed, a removal
 * refused while another voter is killed): an add or a removal is retried for
 * this long before the step gives up.
 */
const CHANGE_WITHIN_MS = 10_000;

export interface MembershipNemesisOptions {
  readonly cluster: ProcessCluster;
  readonly roster: Roster;
  readonly recorder: HistoryRecorder;
  readonly minVoters: number;
  readonly maxVoters: number;
  readonly log: (line: string) => void;
  /** True once the run is ending: waits are cut short. */
  readonly stopping: () => boolean;
  /** A sleep that ends early when the run stops. */
  readonly sleep: (ms: number) => Promise<void>;
}

export interface MembershipCounts {
  /** Steps taken (each one a window in the history). */
  steps: number;
  /** Learners added (MemberAdd committed), within replaces too. */
  added: number;
  promoted: number;
  /** Voters removed (MemberRemove committed), within replaces too; `leaderRemoved` of them the leader. */
  removed: number;
  leaderRemoved: number;
  /** Replaces that both removed the dead voter and added another member. */
  replaced: number;
  /** Changes the cluster refused for good: an add, a removal, a promotion given up (retries while a learner catches up are not counted). */
  refused: number;
  /** Calls whose outcome the call did not tell; MemberList told it afterwards, or the next step did. */
  unknown: number;
  /** Removed nodes that exited by themselves, and those that did not in time and were killed. */
  exitedByThemselves: number;
  killedAfterRemoval: number;
}

export interface MembershipReport {
  readonly counts: MembershipCounts;
  /** The configuration after the heal, as the leader reported it; null when none was read. */
  readonly final: Configuration | null;
  /** One line per step: what it set out to do and what came of it. */
  readonly steps: readonly string[];
  /**
   * Members whose process ended though no nemesis stopped it (every
   * deliberate stop holds a claim on the node): a member must not exit by
   * itself. Each line names the node, the configuration and the exit.
   */
  readonly unexpectedExits: readonly string[];
}

type Change = { readonly outcome: 'done' } | { readonly outcome: 'refused' | 'unknown'; readonly reason: string };

type Action = 'add' | 'remove' | 'replace';

interface Added {
  readonly added: boolean;
  readonly text: string;
}

export class MembershipNemesis {
  readonly counts: MembershipCounts = {
    steps: 0,
    added: 0,
    promoted: 0,
    removed: 0,
    leaderRemoved: 0,
    replaced: 0,
    refused: 0,
    unknown: 0,
    exitedByThemselves: 0,
    killedAfterRemoval: 0,
  };
  readonly steps: string[] = [];
  readonly unexpectedExits: string[] = [];
  /** Joiners stopped here after an add whose outcome was unknown and not (yet) visible: the add may still commit. */
  private readonly stoppedAfterUnknownAdd = new Set<string>();

  constructor(private readonly options: MembershipNemesisOptions) {}

  /** One change, chosen from the configuration the leader reports now; false when none could be made. */
  async step(random: SeededRandom): Promise<boolean> {
    const { roster, cluster, minVoters, maxVoters } = this.options;
    const config = await roster.readCommitted(READ_WITHIN_MS, this.options.stopping);
    if (config === null) {
      this.note('no leader reported a committed configuration: no change this time');
      return false;
    }
    await this.tidy(config);
    if (this.options.stopping()) return false;
    // A learner left by an earlier step is promoted before anything else changes.
    const learner = config.learners.find((id) => cluster.isRunning(id) && !roster.isClaimed(id));
    if (learner !== undefined && roster.claim(learner, MEMBERSHIP_CLAIM, true)) {
      return this.run('promote', `promote learner ${learner}`, [learner], () => this.promote(learner), [learner]);
    }
    const voters = config.voters.length;
    const spares = roster.spares();
    const candidates = config.voters.filter((id) => cluster.isRunning(id) && !roster.isClaimed(id));
    const weights: Record<Action, number> = {
      // Drawn towards the middle of the range, so that a short run sees both growth and shrinkage.
      add: voters < maxVoters && spares.length > 0 ? (voters === minVoters ? 3 : 1) : 0,
      remove: voters > minVoters && candidates.length > 0 ? 2 : 0,
      replace: candidates.length > 0 && ((voters < maxVoters && spares.length > 0) || voters > minVoters) ? 1 : 0,
    };
    const action = pickWeighted(weights, random);
    if (action === null) {
      const exhausted = roster.exhaustedSlots();
      this.note(
        `no change possible with ${describeConfiguration(config)} and spares ${spares.join(' ') || 'none'}` +
          `${exhausted.length > 0 ? ` (slots ${exhausted.join(' ')} used all their ${roster.generations} ids)` : ''}`,
      );
      return false;
    }
    if (action === 'add') {
      const id = spares[random.nextInt(spares.length)] as string;
      if (!roster.takeSpare(id, MEMBERSHIP_CLAIM)) return false;
      return this.run('add', `add ${id} (learner, then promote)`, [id], async () => (await this.add(id)).text, [id]);
    }
    const victim = await this.chooseVictim(candidates, config, random);
    if (victim === null) return false;
    if (action === 'remove') {
      return this.run('remove', `remove ${victim.id}${victim.leader ? ' (leader)' : ''}`, [victim.id], () => this.remove(victim.id, victim.leader), [
        victim.id,
      ]);
    }
    const description = `replace ${victim.id}${victim.leader ? ' (leader)' : ''} with a spare (kill, add, remove)`;
    return this.run('replace', description, [victim.id], () => this.replace(victim.id, victim.leader, random), [victim.id]);
  }

  /**
   * After the heal: every member of the configuration running, every other
   * node stopped. Returns the configuration, or null when no leader reported
   * a committed one in time.
   */
  async settle(timeoutMs: number): Promise<Configuration | null> {
    const { roster, cluster } = this.options;
    const deadline = Date.now() + timeoutMs;
    // Every nemesis has brought back what it stopped, so a leader should answer soon.
    let config = await roster.readCommitted(Math.min(timeoutMs, READ_WITHIN_MS));
    if (config === null) {
      // Without some members there may be no leader to ask: start those last known not to be running.
      for (const id of roster.members()) {
        // An id whose slot hosts a newer one never runs again (tidy removes it).
        if (cluster.isRunning(id) || !roster.isCurrent(id)) continue;
        this.note(
          `no leader answered after the heal; ${id}, a member as last read (${describeConfiguration(roster.configuration)}), is not running: starting it`,
        );
        cluster.startNode(id);
      }
      config = await roster.readCommitted(Math.max(1, deadline - Date.now()));
    }
    if (config !== null) await this.tidy(config);
    return config;
  }

  /**
   * Nodes left over by earlier steps: a member not running is started, a
   * running non-member stopped, and a member whose slot hosts a newer id
   * removed (an add whose outcome was unknown that committed late).
   */
  private async tidy(config: Configuration): Promise<void> {
    const { roster, cluster } = this.options;
    for (const id of [...roster.ids]) {
      if (roster.isClaimed(id)) continue;
      const member = config.voters.includes(id) || config.learners.includes(id);
      if (member && !roster.isCurrent(id)) {
        this.stoppedAfterUnknownAdd.delete(id);
        this.note(
          `${id} is a member though its slot hosts ${roster.currentOf(slotOf(id))} now (an add whose outcome was unknown committed late): removing it`,
        );
        const removal = await this.removeMember(id, CHANGE_WITHIN_MS);
        this.note(`${id}: ${removal}`);
      } else if (member && !cluster.isRunning(id) && this.stoppedAfterUnknownAdd.has(id)) {
        this.stoppedAfterUnknownAdd.delete(id);
        this.note(`${id}'s add, whose outcome was unknown, committed after all: starting it from its data`);
        cluster.startNode(id);
      } else if (member && !cluster.isRunning(id)) {
        // Every deliberate stop holds a claim: this member's process ended by itself.
        this.exitedUnexpectedly(
          id,
          `a ${config.voters.includes(id) ? 'voter' : 'learner'} of ${describeConfiguration(config)} (index ${config.configIndex})`,
        );
        this.note(`member ${id} is not running: starting it from its data`);
        cluster.startNode(id);
      } else if (!member && cluster.isRunning(id)) {
        this.note(`${id} is running though not a member (a removal it never learned of, or an add that did not happen): SIGKILL`);
        await cluster.kill(id);
      }
    }
  }

  private async chooseVictim(
    candidates: readonly string[],
    config: Configuration,
    random: SeededRandom,
  ): Promise<{ id: string; leader: boolean } | null> {
    const { roster } = this.options;
    const leaderFirst = random.chance(0.5);
    const choice = candidates[random.nextInt(candidates.length)] as string;
    const id = leaderFirst && config.leader !== null && candidates.includes(config.leader) ? config.leader : choice;
    if (!roster.claim(id, MEMBERSHIP_CLAIM, true)) return null;
    return { id, leader: id === config.leader };
  }

  /** Records the step as a window in the history around `body`, which returns what came of it. */
  private async run(
    action: string,
    description: string,
    nodes: readonly string[],
    body: () => Promise<string>,
    claimed: readonly string[] = [],
  ): Promise<boolean> {
    const { recorder, roster, log } = this.options;
    const fault = recorder.faultStarted(`start-member-${action}`, 'membership', description, nodes);
    this.counts.steps++;
    log(`nemesis: membership: ${description}`);
    let outcome: string;
    try {
      outcome = await body();
    } catch (error) {
      outcome = `failed: ${(error as Error).message}`;
    } finally {
      for (const id of claimed) roster.release(id, MEMBERSHIP_CLAIM);
    }
    const after = describeConfiguration(roster.configuration);
    recorder.faultStopped(fault, `stop-member-${action}`, 'membership', `${outcome} (${after})`, nodes);
    log(`nemesis: membership: ${description}: ${outcome} (${after})`);
    this.steps.push(`${description}: ${outcome} (${after})`);
    return true;
  }

  /** Starts `id` (claimed by the caller) with an empty data dir and --join, adds it as a learner, and promotes it. */
  private async add(id: string): Promise<Added> {
    const joiner = await this.startJoiner(id);
    return typeof joiner === 'string' ? { added: false, text: joiner } : this.addJoiner(id, joiner.address);
  }

  /** Starts spare `id` (never started before: its data dir is empty) with --join through the running members; waits until it answers. */
  private async startJoiner(id: string): Promise<{ address: string } | string> {
    const { cluster, roster } = this.options;
    const via = roster.runningMembers();
    const started = Date.now();
    const address = await cluster.startJoining(id, via);
    const up = await this.until(
      JOINER_UP_MS,
      async () =>
        cluster.isRunning(id) &&
        (await cluster.status(id).then(
          () => true,
          () => false,
        )),
    );
    if (up) return { address };
    await cluster.kill(id);
    return `${id} did not come up with --join ${via.join(',')} within ${((Date.now() - started) / 1000).toFixed(1)} s${this.options.stopping() ? ' (the run ended)' : ''}; not added`;
  }

  /** MemberAdd of a started joiner as a learner, then its promotion. */
  private async addJoiner(id: string, address: string): Promise<Added> {
    const { cluster, roster } = this.options;
    const deadline = Date.now() + CHANGE_WITHIN_MS;
    let change = await this.change((client) => client.memberAdd(id, address, { learner: true }));
    while (change.outcome === 'refused' && Date.now() < deadline && !this.options.stopping() && cluster.isRunning(id)) {
      await this.options.sleep(RETRY_MS);
      change = await this.change((client) => client.memberAdd(id, address, { learner: true }));
    }
    if (change.outcome !== 'done') {
      const config = change.outcome === 'unknown' ? await roster.readCommitted(READ_WITHIN_MS) : null;
      if (config === null || !(config.learners.includes(id) || config.voters.includes(id))) {
        // Not a member, or not known to be one: the next step's tidy-up sorts out the latter.
        if (config !== null || change.outcome === 'refused') {
          await cluster.kill(id);
          if (change.outcome === 'unknown') this.stoppedAfterUnknownAdd.add(id);
        }
        if (change.outcome === 'refused') this.counts.refused++;
        return {
          added: false,
          text: `add of ${id} ${change.outcome}: ${change.reason}${config === null && change.outcome === 'unknown' ? '; left to the next step' : ''}`,
        };
      }
    }
    this.counts.added++;
    await this.refresh();
    return { added: true, text: `${id} added as a learner; ${await this.promote(id)}` };
  }

  /** Promotes learner `id`, retrying while the leader refuses (it is catching up, or a change is pending). */
  private async promote(id: string): Promise<string> {
    const deadline = Date.now() + PROMOTE_WITHIN_MS;
    let last = '';
    while (Date.now() < deadline && !this.options.stopping()) {
      if (!this.options.cluster.isRunning(id)) {
        // Claimed by this step: nothing stopped it.
        this.exitedUnexpectedly(id, 'a learner waiting to be promoted');
        return `${id}'s process exited by itself while a learner (see its log); not promoted`;
      }
      const change = await this.change((client) => client.memberPromote(id));
      if (change.outcome === 'done') {
        this.counts.promoted++;
        await this.refresh();
        return `${id} promoted to voter`;
      }
      last = `${change.outcome}: ${change.reason}`;
      if (change.outcome === 'unknown') {
        const config = await this.options.roster.readCommitted(READ_WITHIN_MS, this.options.stopping);
        if (config?.voters.includes(id) === true) {
          this.counts.promoted++;
          return `${id} promoted to voter (the call's outcome was unknown; MemberList shows it)`;
        }
        if (config !== null && !config.learners.includes(id)) return `${id} is no longer a member: ${describeConfiguration(config)}`;
      }
      await this.options.sleep(RETRY_MS);
    }
    if (!this.options.stopping()) this.counts.refused++;
    return `${id} left a learner: not promoted within ${PROMOTE_WITHIN_MS / 1000} s${this.options.stopping() ? ' (the run ended)' : ''} (last: ${last})`;
  }

  /** Removes voter `id` (claimed by the caller) and waits for its process to exit. */
  private async remove(id: string, leader: boolean): Promise<string> {
    const config = await this.refresh();
    if (config !== null && config.voters.length - 1 < this.options.minVoters)
      return `not removed: ${describeConfiguration(config)} is at the minimum`;
    const removal = await this.removeMember(id, CHANGE_WITHIN_MS);
    if (removal !== 'removed') return removal;
    if (leader) this.counts.leaderRemoved++;
    return `removed; ${await this.awaitExit(id)}`;
  }

  /**
   * Replaces voter `victim` (claimed by the caller) as after a machine dies
   * with its disk. With room for another voter: a spare is started (and
   * waits to be added), the victim is killed, the spare is added and
   * promoted, and the victim removed. With none: the victim is killed and
   * removed, then a spare is added (the next id of the victim's slot when no
   * other slot is free).
   */
  private async replace(victim: string, leader: boolean, random: SeededRandom): Promise<string> {
    const { cluster, roster, maxVoters, minVoters } = this.options;
    const config = (await this.refresh()) ?? roster.configuration;
    // `freed`: the victim, once removed, leaves its slot to a new id (it holds this step's claim until the step ends).
    const takeSpare = (freed: readonly string[]): string | null => {
      const spares = roster.spares(freed);
      const id = spares.length === 0 ? null : (spares[random.nextInt(spares.length)] as string);
      return id !== null && roster.takeSpare(id, MEMBERSHIP_CLAIM, freed) ? id : null;
    };
    const parts: string[] = [];
    let replacement: string | null = null;
    let added = false;
    let removed = false;
    let killed = false;
    try {
      if (config.voters.length < maxVoters) {
        replacement = takeSpare([]);
        if (replacement === null) return 'no spare id is free: nothing done';
        // The new machine is ready before the old one dies: the cluster runs a voter short only meanwhile.
        const joiner = await this.startJoiner(replacement);
        if (typeof joiner === 'string') return `${joiner}; ${victim} left alone`;
        await cluster.kill(victim);
        killed = true;
        parts.push(`killed ${victim}`);
        const add = await this.addJoiner(replacement, joiner.address);
        added = add.added;
        parts.push(add.text);
      } else {
        await cluster.kill(victim);
        killed = true;
        parts.push(`killed ${victim}`);
      }
      const now = (await this.refresh()) ?? roster.configuration;
      if (now.voters.length - 1 >= minVoters) {
        const removal = await this.removeMember(victim, REMOVE_WITHIN_MS);
        removed = removal === 'removed';
        parts.push(removed ? `${victim} removed` : removal);
        if (removed && leader) this.counts.leaderRemoved++;
      } else {
        parts.push(`${victim} not removed: ${describeConfiguration(now)} is at the minimum`);
      }
      if (removed && replacement === null) {
        // The victim's slot is free now too (under its next id): a removed id never comes back.
        replacement = takeSpare([victim]);
        if (replacement === null) parts.push('no spare id is free: nothing added');
        else {
          const add = await this.add(replacement);
          added = add.added;
          parts.push(add.text);
        }
      }
    } finally {
      if (replacement !== null) roster.release(replacement, MEMBERSHIP_CLAIM);
      if (killed && !removed) {
        // Still a member (or not known not to be one): it comes back from its data, as after any kill.
        cluster.startNode(victim);
        parts.push(`${victim} restarted from its data`);
      }
    }
    if (removed && added) this.counts.replaced++;
    return parts.join('; ');
  }

  /** MemberRemove until done, refused for good or `withinMs` passed; an unknown outcome is settled with MemberList. */
  private async removeMember(id: string, withinMs = 0): Promise<'removed' | string> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const change = await this.change((client) => client.memberRemove(id));
      let failure = change.outcome === 'done' ? null : `remove ${change.outcome}: ${change.reason}`;
      if (change.outcome === 'unknown') {
        const config = await this.options.roster.readCommitted(READ_WITHIN_MS);
        if (config === null) return `${failure}; MemberList did not tell`;
        if (!config.voters.includes(id) && !config.learners.includes(id)) failure = null;
      }
      if (failure === null) {
        this.counts.removed++;
        await this.refresh();
        return 'removed';
      }
      if (Date.now() >= deadline || this.options.stopping()) {
        if (change.outcome === 'refused') this.counts.refused++;
        return failure;
      }
      await this.options.sleep(RETRY_MS);
    }
  }

  /** Waits for a removed node's process to end by itself, then SIGKILLs it. */
  private async awaitExit(id: string): Promise<string> {
    const { cluster } = this.options;
    if (!cluster.isRunning(id)) {
      // Claimed since before the removal, so nothing else stopped it.
      await cluster.waitForExit(id, 0);
      this.counts.exitedByThemselves++;
      return `${id} exited by itself`;
    }
    const bound = this.options.stopping() ? EXIT_WHILE_STOPPING_MS : EXIT_WITHIN_MS;
    const started = Date.now();
    if (await cluster.waitForExit(id, bound)) {
      this.counts.exitedByThemselves++;
      return `${id} exited by itself after ${((Date.now() - started) / 1000).toFixed(1)} s`;
    }
    this.counts.killedAfterRemoval++;
    return `${id} had not exited after ${bound / 1000} s: SIGKILL`;
  }

  /** One Cluster API call through any running node, classified. */
  private async change(call: (client: RaftLogClient) => Promise<unknown>): Promise<Change> {
    let client: RaftLogClient;
    try {
      client = this.options.roster.client(CHANGE_DEADLINE_MS);
    } catch (error) {
      return { outcome: 'refused', reason: (error as Error).message };
    }
    try {
      await call(client);
      return { outcome: 'done' };
    } catch (error) {
      if (!(error instanceof RaftLogError)) throw error;
      const reason = `${error.codeName}: ${error.message}`;
      // Definite refusals: nothing was changed. Anything else may or may not have taken effect.
      const refused =
        error instanceof RaftLogFailedPreconditionError || error instanceof RaftLogUnavailableError || error instanceof RaftLogInvalidArgumentError;
      if (!refused) this.counts.unknown++;
      return { outcome: refused ? 'refused' : 'unknown', reason };
    } finally {
      client.close();
    }
  }

  /** Rereads the configuration after a change (so other nemeses and clients use it); null when no leader answered. */
  private async refresh(): Promise<Configuration | null> {
    try {
      return await this.options.roster.read();
    } catch {
      return null;
    }
  }

  private async until(timeoutMs: number, check: () => Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return true;
      if (this.options.stopping()) return false;
      await this.options.sleep(RETRY_MS);
    }
    return false;
  }

  private exitedUnexpectedly(id: string, what: string): void {
    const child = this.options.cluster.processes.get(id);
    const exit = child === undefined ? 'not started' : child.signalCode !== null ? `signal ${child.signalCode}` : `exit code ${child.exitCode}`;
    const line = `${id} (${what}) exited by itself (${exit}) at ${(this.options.recorder.now() / 1e9).toFixed(1)} s`;
    this.unexpectedExits.push(line);
    this.note(`UNEXPECTED: ${line}`);
  }

  private note(line: string): void {
    this.options.log(`nemesis: membership: ${line}`);
  }
}

function pickWeighted<K extends string>(weights: Record<K, number>, random: SeededRandom): K | null {
  const entries = (Object.entries(weights) as [K, number][]).filter(([, w]) => w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (total === 0) return null;
  let at = random.next() * total;
  for (const [key, weight] of entries) {
    at -= weight;
    if (at < 0) return key;
  }
  return (entries[entries.length - 1] as [K, number])[0];
}
