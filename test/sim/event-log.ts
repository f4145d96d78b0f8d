/**
 * What happened during a run, one record per event. Records hold references to
 * the (immutable) data involved and are only turned into text when someone
 * reads them: when tracing, each is printed as it happens; otherwise the last
 * `capacity` records stay in a ring buffer to be printed if the run fails.
 */
import type { Entry, HardState, Message, NodeId, ProposeResult, ReadIndexResult, RoleChange, TransferResult } from '../../src/raft/types.js';
import { describeData } from './invariants.js';

export type TraceRecord =
  | { readonly k: 'deliver'; readonly m: Message; readonly duplicate: boolean }
  | { readonly k: 'drop'; readonly m: Message; readonly why: 'loss' | 'partition' | 'down' | 'overtaken' | 'old-sender' }
  | { readonly k: 'role'; readonly change: RoleChange }
  | { readonly k: 'persist'; readonly hardState: HardState | null; readonly entries: readonly Entry[] }
  | {
      readonly k: 'write';
      readonly hardState: HardState | null;
      readonly entries: readonly Entry[];
      readonly messages: number;
      readonly committed: number;
      readonly reads: number;
      readonly doneAt: number;
    }
  | { readonly k: 'apply'; readonly first: Entry; readonly last: Entry; readonly count: number }
  | { readonly k: 'propose'; readonly data: Uint8Array; readonly result: ProposeResult; readonly forwarded: boolean }
  | { readonly k: 'read'; readonly requestId: string; readonly result: ReadIndexResult }
  | { readonly k: 'read-ready'; readonly requestId: string; readonly index: number; readonly applied: number }
  | { readonly k: 'read-failed'; readonly requestId: string; readonly reason: string }
  | { readonly k: 'transfer'; readonly to: NodeId; readonly result: TransferResult }
  | { readonly k: 'crash'; readonly downFor: number; readonly writes?: { readonly completed: number; readonly lost: number } }
  | { readonly k: 'restart'; readonly hardState: HardState; readonly lastIndex: number }
  | { readonly k: 'note'; readonly text: string }
  /** A commit notice held back (Scenario.commitNoticeDelay), replaced by a newer one, or made unneeded by an append. */
  | { readonly k: 'notice'; readonly m: Message; readonly what: 'held' | 'replaced' | 'folded' };

export interface LoggedEvent {
  readonly time: number;
  /** The node the event happened at, or a pseudo-actor: "net", "client", "sim". */
  readonly actor: string;
  readonly record: TraceRecord;
}

export class EventLog {
  private readonly ring: (LoggedEvent | undefined)[];
  private next = 0;
  private count = 0;

  /** `sink` receives each line as it happens when tracing; null keeps only the ring buffer. */
  constructor(
    private readonly sink: ((line: string) => void) | null,
    readonly capacity = 200,
  ) {
    this.ring = new Array<LoggedEvent | undefined>(capacity);
  }

  get tracing(): boolean {
    return this.sink !== null;
  }

  record(time: number, actor: string, record: TraceRecord): void {
    const event: LoggedEvent = { time, actor, record };
    this.ring[this.next] = event;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    if (this.sink !== null) this.sink(formatEvent(event));
  }

  /** The most recent events, oldest first, as text. */
  recentLines(): string[] {
    const lines: string[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const event = this.ring[(start + i) % this.capacity];
      if (event !== undefined) lines.push(formatEvent(event));
    }
    return lines;
  }
}

export function formatEvent(event: LoggedEvent): string {
  return `${String(event.time).padStart(7)} ${event.actor.padEnd(6)} ${formatRecord(event.record)}`;
}

function dropReason(m: Message, why: Extract<TraceRecord, { k: 'drop' }>['why']): string {
  switch (why) {
    case 'down':
      return `${m.to} is down`;
    case 'overtaken':
      return `meant for ${m.to}'s old process, before its disk was wiped; newer ones from ${m.from} came first`;
    case 'old-sender':
      return `sent by ${m.from}'s old process, before its disk was wiped`;
    default:
      return why;
  }
}

export function formatRecord(r: TraceRecord): string {
  switch (r.k) {
    case 'deliver':
      return `recv ${formatMessage(r.m)}${r.duplicate ? ' (duplicate)' : ''}`;
    case 'drop':
      return `drop ${formatMessage(r.m)} (${dropReason(r.m, r.why)})`;
    case 'role':
      return `becomes ${r.change.role} in term ${r.change.term}${r.change.leader !== null ? `, leader ${r.change.leader}` : ''} (${r.change.reason})`;
    case 'persist': {
      const parts: string[] = [];
      if (r.entries.length > 0) parts.push(`entries ${formatEntryRange(r.entries)}`);
      if (r.hardState !== null) parts.push(formatHardState(r.hardState));
      return `persist ${parts.join(', ')}`;
    }
    case 'write': {
      const parts: string[] = [];
      if (r.entries.length > 0) parts.push(`entries ${formatEntryRange(r.entries)}`);
      if (r.hardState !== null) parts.push(formatHardState(r.hardState));
      const held: string[] = [];
      if (r.messages > 0) held.push(`${r.messages} message${r.messages === 1 ? '' : 's'}`);
      if (r.committed > 0) held.push(`${r.committed} to apply`);
      if (r.reads > 0) held.push(`${r.reads} read${r.reads === 1 ? '' : 's'}`);
      return (
        `write until t=${r.doneAt}: ${parts.length > 0 ? parts.join(', ') : 'nothing to persist'}` +
        (held.length > 0 ? `; holds ${held.join(', ')}` : '')
      );
    }
    case 'apply':
      return r.count === 1
        ? `apply ${formatEntry(r.first)}`
        : `apply ${r.count} entries ${r.first.index}/${r.first.term}..${r.last.index}/${r.last.term}`;
    case 'propose':
      return `${r.forwarded ? 'client forwards proposal' : 'client proposes'} ${describeData(r.data)}: ${
        r.result.accepted
          ? `accepted at ${r.result.index}/${r.result.term}`
          : `rejected, ${r.result.reason}${r.result.leader !== null ? ` (leader ${r.result.leader})` : ''}`
      }`;
    case 'notice':
      return `${r.what === 'held' ? 'holds' : r.what === 'replaced' ? 'holds instead' : 'folds into the next append'} commit notice ${formatMessage(r.m)}`;
    case 'read':
      return `client reads ${r.requestId}: ${r.result.accepted ? 'pending' : `rejected, ${r.result.reason}`}`;
    case 'read-ready':
      return `read ${r.requestId} ready at index ${r.index} (applied ${r.applied})`;
    case 'read-failed':
      return `read ${r.requestId} failed: ${r.reason}`;
    case 'transfer':
      return `transfer leadership to ${r.to}: ${r.result.accepted ? 'accepted' : `rejected, ${r.result.reason}`}`;
    case 'crash':
      return `CRASH (down for ${r.downFor})${
        r.writes === undefined
          ? ''
          : `: of ${r.writes.completed + r.writes.lost} writes in progress, ${r.writes.completed} completed just before (stored, nothing sent), ${r.writes.lost} lost`
      }`;
    case 'restart':
      return `RESTART from ${formatHardState(r.hardState)}, log ..${r.lastIndex}`;
    case 'note':
      return r.text;
  }
}

function formatHardState(h: HardState): string {
  return `term=${h.term} vote=${h.votedFor ?? '-'} commit=${h.commit}`;
}

function formatEntry(e: Entry): string {
  return e.kind === 'noop' ? `${e.index}/${e.term} noop` : `${e.index}/${e.term} ${describeData(e.data)}`;
}

function formatEntryRange(entries: readonly Entry[]): string {
  const first = entries[0];
  const last = entries[entries.length - 1];
  if (first === undefined || last === undefined) return '[]';
  if (entries.length === 1) return `[${formatEntry(first)}]`;
  return `[${first.index}/${first.term}..${last.index}/${last.term}]`;
}

export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'VoteRequest':
      return `${m.from}->${m.to} ${m.preVote ? 'PreVoteRequest' : 'VoteRequest'} t${m.term} last=${m.lastLogIndex}/${m.lastLogTerm}${m.leadershipTransfer ? ' transfer' : ''}`;
    case 'VoteResponse':
      return `${m.from}->${m.to} ${m.preVote ? 'PreVoteResponse' : 'VoteResponse'} t${m.term} ${m.granted ? 'granted' : 'rejected'}`;
    case 'AppendRequest':
      return `${head} prev=${m.prevLogIndex}/${m.prevLogTerm} ${formatEntryRange(m.entries)} commit=${m.leaderCommit}`;
    case 'AppendResponse':
      return m.success ? `${head} ok match=${m.matchIndex}` : `${head} reject ${m.rejectedIndex} hint=${m.hintIndex}/${m.hintTerm}`;
    case 'Heartbeat':
      return `${head} commit=${m.leaderCommit}${m.readContext !== null ? ` ctx=${m.readContext}` : ''}`;
    case 'HeartbeatResponse':
      return `${head}${m.readContext !== null ? ` ctx=${m.readContext}` : ''}`;
    case 'TimeoutNow':
      return head;
    case 'ReadIndexRequest':
      return `${head} [${m.requestIds.join(',')}]`;
    case 'ReadIndexResponse':
      return `${head} [${m.requestIds.join(',')}] index=${m.index}`;
    case 'InstallSnapshot':
      return `${head} snapshot=${m.snapshot.index}/${m.snapshot.term}`;
  }
}
