import type { RaftOptions } from '../../src/raft/config.js';
import type { RaftStorage } from '../../src/raft/storage.js';
import type {
  ClusterConfig,
  ConfigChange,
  Message,
  NodeId,
  ProposeResult,
  RaftBrief,
  RaftOutput,
  RaftStatus,
  ReadIndexResult,
  TransferResult,
} from '../../src/raft/types.js';

/** The part of RaftCore the simulator drives. RaftCore satisfies it structurally. */
export interface SimCore {
  readonly id: NodeId;
  tick(): void;
  step(message: Message): void;
  propose(data: Uint8Array): ProposeResult;
  readIndex(requestId: string): ReadIndexResult;
  transferLeadership(to: NodeId): TransferResult;
  reportSnapshot(to: NodeId, ok: boolean): void;
  proposeConfigChange(change: ConfigChange): ProposeResult;
  hasOutput(): boolean;
  takeOutput(): RaftOutput;
  persisted(output: RaftOutput): void;
  status(): RaftStatus;
  /** The fields the checks read after every event, without the allocations of status(). */
  brief(): RaftBrief;
  termAt(index: number): number | null;
  lastIndex(): number;
  firstIndex(): number;
  configAt(index: number): ClusterConfig;
}

/**
 * How the simulator builds a core for a node's new life. Tests inject a factory
 * that builds a subclass of RaftCore with a planted bug.
 */
export type CoreFactory = (options: RaftOptions, storage: RaftStorage) => SimCore;
