/**
 * Asks every node for its Status (and one node for the durable consumers)
 * about once a second through the client library, keeps the last answer of
 * each node, and derives the timeline by comparing each sample with the one
 * before. Members the configuration names that were not among the endpoints
 * given (a node added later) are polled too, once a node reports them.
 */
import { type EndpointSpec, parseEndpoints } from '../client/endpoints.js';
import { type NodeStatus, RaftLogClient, RaftLogError, type TlsOptions } from '../client/index.js';
import { type ClusterSample, type ConsumersSample, clusterSample, type NodeSample } from './cluster-sample.js';
import { type DashboardEvent, deriveEvents } from './events.js';
import { DEFAULT_POLL_INTERVAL_MS } from './listen.js';

/** A live node on a loaded machine answers Status well within this; past it the node counts as down for that poll. */
const DEFAULT_CALL_DEADLINE_MS = 2000;
const DEFAULT_MAX_EVENTS = 500;

export interface PollerOptions {
  /** "host:port" or "id=host:port" of each node to start with. */
  readonly endpoints: readonly string[];
  /** Time from the start of one poll to the start of the next (a slow poll delays the next one). Default 1000 ms. */
  readonly intervalMs?: number;
  /** Deadline of each Status and Consumers call. Default 2000 ms. */
  readonly callDeadlineMs?: number;
  /** The timeline keeps this many events, the newest. Default 500. */
  readonly maxEvents?: number;
  /** Certificates for a cluster that serves TLS (as the CLI's --tls-ca, --tls-cert, --tls-key). */
  readonly tls?: TlsOptions;
}

/** A timeline event with its place in the dashboard's sequence (for the page to tell new ones from those it has). */
export interface SequencedEvent extends DashboardEvent {
  readonly seq: number;
}

export type SampleListener = (sample: ClusterSample, newEvents: readonly SequencedEvent[]) => void;

interface Target {
  id: string;
  readonly address: string;
  readonly client: RaftLogClient;
  status: NodeStatus | null;
  answeredAtMs: number | null;
  error: string | null;
  up: boolean;
}

export class ClusterPoller {
  private readonly targets = new Map<string, Target>();
  private readonly intervalMs: number;
  private readonly callDeadlineMs: number;
  private readonly tls: TlsOptions | undefined;
  private readonly maxEvents: number;
  private readonly listeners = new Set<SampleListener>();
  private readonly timeline: SequencedEvent[] = [];
  private nextSeq = 1;
  private sample: ClusterSample | null = null;
  private lastConsumers: ConsumersSample | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<ClusterSample> | null = null;
  private closed = false;

  /** Throws an Error saying what is wrong with an endpoint. */
  constructor(options: PollerOptions) {
    this.intervalMs = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.callDeadlineMs = options.callDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS;
    this.tls = options.tls;
    this.maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
    for (const spec of parseEndpoints(options.endpoints)) this.addTarget(spec);
  }

  /** The latest sample; null before the first poll ends. */
  get latest(): ClusterSample | null {
    return this.sample;
  }

  /** The timeline, oldest first. */
  get events(): readonly SequencedEvent[] {
    return this.timeline;
  }

  /** Calls `listener` after every poll; returns a function that stops it. */
  onSample(listener: SampleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Polls now and then every intervalMs until close(). */
  start(): void {
    if (this.timer !== null || this.closed) return;
    const loop = async () => {
      const started = Date.now();
      await this.poll();
      if (this.closed) return;
      this.timer = setTimeout(loop, Math.max(0, this.intervalMs - (Date.now() - started)));
    };
    this.timer = setTimeout(loop, 0);
  }

  /** One poll of every node (joined by a poll already under way); resolves to its sample. */
  poll(): Promise<ClusterSample> {
    this.polling ??= this.pollEveryNode().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const target of this.targets.values()) target.client.close();
    this.listeners.clear();
  }

  private async pollEveryNode(): Promise<ClusterSample> {
    const targets = [...this.targets.values()];
    await Promise.all(targets.map((target) => this.askStatus(target)));
    const consumers = await this.askConsumers(targets);
    const previous = this.sample;
    const nodes: NodeSample[] = targets.map((target) => ({
      id: target.id,
      address: target.address,
      up: target.up,
      status: target.status,
      answeredAtMs: target.answeredAtMs,
      error: target.error,
      member: true,
    }));
    const next = clusterSample(Date.now(), nodes, consumers, previous?.members ?? []);
    const added = deriveEvents(previous, next).map((event) => ({ ...event, seq: this.nextSeq++ }));
    this.timeline.push(...added);
    if (this.timeline.length > this.maxEvents) this.timeline.splice(0, this.timeline.length - this.maxEvents);
    this.sample = next;
    for (const member of next.members) this.addTarget({ node: member.id, address: member.address });
    if (!this.closed) for (const listener of this.listeners) listener(next, added);
    return next;
  }

  private async askStatus(target: Target): Promise<void> {
    try {
      const status = await target.client.status(target.address, { deadlineMs: this.callDeadlineMs });
      target.status = status;
      target.id = status.node;
      target.answeredAtMs = Date.now();
      target.error = null;
      target.up = true;
    } catch (error) {
      // The last attempt's reason ("could not connect: connection refused or node down") without the call's preamble.
      target.error =
        error instanceof RaftLogError ? (error.attempts.at(-1)?.reason ?? error.message) : error instanceof Error ? error.message : String(error);
      target.up = false;
    }
  }

  /** Asks the leader (its positions and commit index are the freshest), else any node that answered. */
  private async askConsumers(targets: readonly Target[]): Promise<ConsumersSample | null> {
    const up = targets.filter((target) => target.up);
    const target = up.find((candidate) => candidate.status?.role === 'leader') ?? up[0];
    if (target !== undefined) {
      try {
        const list = await target.client.consumers({ consistency: 'local', deadlineMs: this.callDeadlineMs });
        this.lastConsumers = { consumers: list.consumers, commitIndex: list.commitIndex, node: list.node, atMs: Date.now(), stale: false };
        return this.lastConsumers;
      } catch {
        // Shown as stale below; the node's own failure shows in its Status.
      }
    }
    return this.lastConsumers === null ? null : { ...this.lastConsumers, stale: true };
  }

  /** Starts polling a node, unless one at that address, or with that id, is polled already. */
  private addTarget(spec: EndpointSpec): void {
    if (spec.address === '' || this.targets.has(spec.address)) return;
    if (spec.node !== null && [...this.targets.values()].some((target) => target.id === spec.node)) return;
    const client = new RaftLogClient({
      endpoints: [spec.address],
      deadlineMs: this.callDeadlineMs,
      discoverLeader: false,
      // One client per node, each asking its own node: none should move elsewhere.
      followMembership: false,
      ...(this.tls === undefined ? {} : { tls: this.tls }),
    });
    this.targets.set(spec.address, {
      id: spec.node ?? spec.address,
      address: spec.address,
      client,
      status: null,
      answeredAtMs: null,
      error: null,
      up: false,
    });
  }
}
