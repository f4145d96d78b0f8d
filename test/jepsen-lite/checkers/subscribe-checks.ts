/**
 * The subscribe workload's checks, in the manner of Jepsen's and
 * Maelstrom's Kafka checkers, over the one committed log.
 *
 * *subscriptions*: what every reader was handed (its journal) against the
 * committed log and the history.
 * - Plain subscriber: its indexes run 1, 2, 3, … with no gap and no
 *   duplicate. The only jump allowed is to the first index a node still
 *   held after it answered a start with OUT_OF_RANGE (compaction), and the
 *   journal must say so.
 * - Durable consumer: each subscription (the first, and each resume after a
 *   crash) starts right after the position committed when it began, and runs
 *   on with no gap or duplicate. Entries before that start may come again
 *   (at least once), never be skipped. The position it started after is
 *   worked out from the history: the latest acknowledged commit before the
 *   subscription began, or a later position of a commit whose outcome is
 *   unknown. A consumer commits only positions it was handed (or the one
 *   before the first index a compacted node holds).
 * - Every entry handed out equals the committed log's at its index (term,
 *   kind, record, key). Where every node compacted the index before anyone
 *   read it, the readers that saw it must agree with one another. Nothing
 *   is handed out beyond the last committed index.
 * - Every acknowledged append is at its acknowledged index for every reader
 *   that was handed that index; a definitely failed append is handed to no
 *   one; no record is at two indexes.
 * - After the heal, every reader got as far as the last acknowledged append.
 *
 * *consumer positions*: positions never go backwards in real time. If one
 * observation (an acknowledged commit's resulting position, or a Consumers
 * poll, which is linearizable) completed before another began, the later
 * one's position is at least the earlier's.
 */
import type { ClientEvent } from '../history.js';
import type { JournalEvent, SubscriberRecord } from '../workloads/subscriber-journal.js';
import { type CheckVerdict, type CommittedLog, describeEntry, type FinalEntry, sameEntry, verdict } from './log-checks.js';

const APPEND = 'LOG_ENTRY_KIND_APPEND';

/** Nanoseconds of the history as seconds since the start, for people. */
const at = (ns: number) => `${(ns / 1e9).toFixed(3)} s`;

/** One client operation: its invocation and its completion (null while none came). */
interface Operation {
  readonly invoke: ClientEvent;
  readonly completion: ClientEvent | null;
}

/** The operations of `f`, paired by process (a process has one operation outstanding). */
function operations(history: readonly ClientEvent[], f: ClientEvent['f']): Operation[] {
  const pending = new Map<number, ClientEvent>();
  const ops: Operation[] = [];
  for (const event of history) {
    if (event.f !== f) continue;
    if (event.type === 'invoke') {
      const earlier = pending.get(event.process);
      if (earlier !== undefined) ops.push({ invoke: earlier, completion: null });
      pending.set(event.process, event);
      continue;
    }
    const invoke = pending.get(event.process);
    if (invoke === undefined) continue;
    pending.delete(event.process);
    ops.push({ invoke, completion: event });
  }
  for (const invoke of pending.values()) ops.push({ invoke, completion: null });
  return ops;
}

/** A consumer's commit as the checks need it. */
interface Commit {
  /** The position asked for. */
  readonly asked: number;
  readonly invoked: number;
  readonly completed: number | null;
  readonly type: 'ok' | 'fail' | 'info' | 'pending';
  /** On ok: the consumer's position after it. */
  readonly result: number | null;
}

function commitsByConsumer(history: readonly ClientEvent[]): Map<string, Commit[]> {
  const byConsumer = new Map<string, Commit[]>();
  for (const { invoke, completion } of operations(history, 'commit')) {
    const consumer = String(invoke.key);
    const commit: Commit = {
      asked: Number(invoke.value),
      invoked: invoke.time,
      completed: completion?.time ?? null,
      type: completion === null ? 'pending' : (completion.type as Commit['type']),
      result: completion?.type === 'ok' ? Number(completion.value) : null,
    };
    const list = byConsumer.get(consumer);
    if (list === undefined) byConsumer.set(consumer, [commit]);
    else list.push(commit);
  }
  return byConsumer;
}

/**
 * Where a consumer subscription begun at `time` may start: right after the
 * latest position acknowledged before then, or after the position of a
 * commit begun before then whose outcome was not known by then.
 */
function allowedStarts(commits: readonly Commit[], time: number): { committed: number; starts: number[] } {
  let committed = 0;
  const uncertain: number[] = [];
  for (const commit of commits) {
    if (commit.invoked >= time || commit.type === 'fail') continue;
    if (commit.type === 'ok' && commit.completed !== null && commit.completed < time) committed = Math.max(committed, commit.result ?? 0);
    else uncertain.push(commit.result ?? commit.asked);
  }
  const starts = [committed + 1, ...uncertain.filter((p) => p > committed).map((p) => p + 1)];
  return { committed, starts: [...new Set(starts)].sort((a, b) => a - b) };
}

type Delivery = Extract<JournalEvent, { type: 'entry' }>;

const asEntry = (d: Delivery): FinalEntry => ({ index: d.index, term: d.term, kind: d.kind, record: d.record, key: d.key, value: d.value });

const describeReconnect = (event: Extract<JournalEvent, { type: 'reconnect' }>) =>
  ` right after a reconnect from ${event.from ?? '?'} to ${event.to ?? '?'} at ${at(event.time)}`;

export interface SubscribeCheckInput {
  readonly history: readonly ClientEvent[];
  readonly subscribers: readonly SubscriberRecord[];
  readonly log: CommittedLog;
}

/** See the module comment: every reader's deliveries against the committed log and the history. */
export function checkSubscriptions(input: SubscribeCheckInput): CheckVerdict {
  const { history, subscribers, log } = input;
  const problems: string[] = [];
  const acknowledged = new Map<string, number>();
  const acknowledgedAt = new Map<number, string>();
  const failed = new Set<string>();
  for (const event of history) {
    if (event.f !== 'append') continue;
    const value = String(event.value);
    if (event.type === 'ok' && event.index !== undefined) {
      acknowledged.set(value, event.index);
      acknowledgedAt.set(event.index, value);
    } else if (event.type === 'fail') failed.add(value);
  }
  const lastAcknowledged = [...acknowledged.values()].reduce((highest, index) => Math.max(highest, index), 0);
  const commits = commitsByConsumer(history);

  /** Indexes no node held at the end nor was read during the run: the first reader's copy, for the others to match. */
  const firstSeen = new Map<number, { readonly by: string; readonly entry: FinalEntry }>();
  /** Where each append record was handed out, first seen. */
  const recordAt = new Map<string, { readonly index: number; readonly by: string }>();
  let deliveries = 0;
  let againstLog = 0;
  let acknowledgedSeen = 0;
  let redelivered = 0;
  let resumes = 0;
  let jumps = 0;

  for (const subscriber of subscribers) {
    const name = subscriber.consumer === null ? subscriber.name : `${subscriber.name} (consumer ${subscriber.consumer})`;
    const ownCommits = subscriber.consumer === null ? [] : (commits.get(subscriber.consumer) ?? []);
    const handed = new Map<number, FinalEntry>();
    let segment = 0;
    /** The index due next in the current subscription; null until a consumer subscription's first entry. */
    let expected: number | null = null;
    let allowed: { committed: number; starts: number[]; time: number } | null = null;
    let lastReconnect: Extract<JournalEvent, { type: 'reconnect' }> | null = null;
    let compacted: Extract<JournalEvent, { type: 'compacted' }> | null = null;
    /** Per time: the highest index handed out, and the positions a compacted start allowed to commit. */
    let highest = 0;
    const highestAt: { time: number; highest: number }[] = [];
    const compactedCommits: { time: number; position: number }[] = [];

    for (const event of subscriber.events) {
      switch (event.type) {
        case 'start': {
          segment++;
          lastReconnect = null;
          if (subscriber.consumer !== null) {
            if (segment > 1) resumes++;
            expected = null;
            allowed = { ...allowedStarts(ownCommits, event.time), time: event.time };
          } else {
            // The index due when the last subscription ended: after its last entry, or its start if it handed out none.
            const due: number = segment === 1 ? 1 : (expected ?? 1);
            const from = event.from ?? 1;
            const explained = segment > 1 && compacted !== null && compacted.fromIndex === due && compacted.firstIndex === from;
            if (from !== due && !explained) {
              problems.push(
                `${name}: subscription ${segment} started at index ${from}, but ${due} was due` +
                  (segment > 1 ? ' and no node had answered that it compacted the indexes in between' : ''),
              );
            }
            expected = from;
          }
          compacted = null;
          break;
        }
        case 'reconnect':
          lastReconnect = event;
          break;
        case 'compacted':
          jumps++;
          compacted = event;
          compactedCommits.push({ time: event.time, position: event.firstIndex - 1 });
          break;
        case 'error':
          problems.push(`${name}: the subscription ended with an error at ${at(event.time)}: ${event.message}`);
          break;
        case 'entry': {
          deliveries++;
          const { index } = event;
          if (expected === null && allowed !== null) {
            if (!allowed.starts.includes(index)) {
              const due = allowed.committed + 1;
              const others = allowed.starts.filter((s) => s !== due);
              problems.push(
                `${name}: subscription ${segment}, begun at ${at(allowed.time)}, started at index ${index}, but its committed position then was ` +
                  `${allowed.committed}, so ${due} was due${others.length > 0 ? ` (or ${others.join(', ')}, after commits of unknown outcome)` : ''}` +
                  (index > due
                    ? `: ${index - 1 === due ? `index ${due}` : `${due}..${index - 1}`} skipped`
                    : ': it went back before its committed position'),
              );
            }
          } else if (expected !== null && index !== expected) {
            problems.push(
              index > expected
                ? `${name}: skipped ${expected === index - 1 ? `index ${expected}` : `indexes ${expected}..${index - 1}`} in subscription ${segment}: ` +
                    `after ${expected - 1} it was handed ${index}${lastReconnect === null ? '' : describeReconnect(lastReconnect)}`
                : `${name}: handed index ${index} again in subscription ${segment}, having got to ${expected - 1} already` +
                    (lastReconnect === null ? '' : describeReconnect(lastReconnect)),
            );
          }
          expected = Math.max(expected ?? 0, index + 1);
          lastReconnect = null;

          const entry = asEntry(event);
          const before = handed.get(index);
          if (before !== undefined) {
            redelivered++;
            if (!sameEntry(before, entry))
              problems.push(`${name}: index ${index} was handed out as ${describeEntry(before)} and later as ${describeEntry(entry)}`);
          }
          handed.set(index, entry);
          highest = Math.max(highest, index);
          highestAt.push({ time: event.time, highest });
          problems.push(...compareWithLog(name, entry, log, firstSeen, () => againstLog++));

          if (entry.kind === APPEND) {
            const due = acknowledgedAt.get(index);
            const ackedAt = acknowledged.get(entry.record);
            if (due !== undefined) {
              acknowledgedSeen++;
              if (due !== entry.record) problems.push(`${name}: index ${index}, where append ${due} was acknowledged, held ${describeEntry(entry)}`);
            } else if (ackedAt !== undefined && ackedAt !== index) {
              problems.push(`${name}: append ${entry.record} was handed out at index ${index}, but acknowledged at ${ackedAt}`);
            }
            if (failed.has(entry.record)) problems.push(`${name}: append ${entry.record}, which failed, was handed out at index ${index}`);
            const first = recordAt.get(entry.record);
            if (first === undefined) recordAt.set(entry.record, { index, by: subscriber.name });
            else if (first.index !== index) {
              problems.push(
                `append ${entry.record} was handed out at two indexes: ${first.index} (to ${first.by}) and ${index} (to ${subscriber.name})`,
              );
            }
          } else if (acknowledgedAt.has(index)) {
            acknowledgedSeen++;
            problems.push(`${name}: index ${index}, where append ${acknowledgedAt.get(index)} was acknowledged, held ${describeEntry(entry)}`);
          }
          break;
        }
        default:
          break;
      }
    }

    if (highest < lastAcknowledged) {
      problems.push(
        `${name}: got only as far as index ${highest}, but appends were acknowledged up to ${lastAcknowledged}: it did not catch up after the heal`,
      );
    }
    for (const commit of ownCommits) {
      const handedBefore = highestAt.filter((h) => h.time < commit.invoked).reduce((m, h) => Math.max(m, h.highest), 0);
      const overHole = compactedCommits.some((c) => c.time < commit.invoked && c.position === commit.asked);
      if (commit.asked > handedBefore && !overHole) {
        problems.push(
          `${name}: committed position ${commit.asked} at ${at(commit.invoked)}, beyond the ${handedBefore} it had been handed: a consumer that crashed then would skip entries`,
        );
      }
    }
  }

  const plain = subscribers.filter((s) => s.consumer === null).length;
  const acrossOnly = firstSeen.size;
  return verdict(
    'subscriptions',
    `${subscribers.length} readers (${plain} plain, ${subscribers.length - plain} durable consumers) were handed ${deliveries} entries ` +
      `(${redelivered} again after ${resumes} resumes), each subscription in order with no gap or duplicate` +
      `${jumps > 0 ? ` (${jumps} starts past indexes a node had compacted, each answered OUT_OF_RANGE)` : ''}; ` +
      `${againstLog} equal to the committed log${acrossOnly > 0 ? `, at ${acrossOnly} indexes compacted before anyone read them equal across readers` : ''}; ` +
      `${acknowledgedSeen} sightings of acknowledged appends, each at its index; no failed append handed out; every reader got to ${lastAcknowledged}`,
    problems,
  );
}

/** Compares one delivery with the committed log, or with the first reader's copy where the log no longer has the index. */
function compareWithLog(
  name: string,
  entry: FinalEntry,
  log: CommittedLog,
  firstSeen: Map<number, { readonly by: string; readonly entry: FinalEntry }>,
  comparedWithLog: () => void,
): string[] {
  if (entry.index > log.lastCommitted)
    return [`${name}: handed index ${entry.index} (${describeEntry(entry)}), beyond the last committed index ${log.lastCommitted}`];
  const committed = log.entries.get(entry.index);
  if (committed !== undefined) {
    comparedWithLog();
    return sameEntry(committed, entry)
      ? []
      : [`${name}: handed index ${entry.index} as ${describeEntry(entry)}, but the committed log has ${describeEntry(committed)}`];
  }
  const first = firstSeen.get(entry.index);
  if (first === undefined) {
    firstSeen.set(entry.index, { by: name, entry });
    return [];
  }
  return sameEntry(first.entry, entry)
    ? []
    : [
        `${name} and ${first.by} were handed index ${entry.index} differently (compacted everywhere, so not in the log read): ${describeEntry(entry)} vs ${describeEntry(first.entry)}`,
      ];
}

/** One sighting of a consumer's position, over the real-time window of the call that saw it. */
interface Sighting {
  readonly position: number;
  readonly invoked: number;
  readonly completed: number;
  readonly what: string;
}

/** See the module comment: consumer positions, as commits and polls saw them, never go backwards in real time. */
export function checkConsumerPositions(history: readonly ClientEvent[]): CheckVerdict {
  const problems: string[] = [];
  const sightings = new Map<string, Sighting[]>();
  const add = (consumer: string, sighting: Sighting) => {
    const list = sightings.get(consumer);
    if (list === undefined) sightings.set(consumer, [sighting]);
    else list.push(sighting);
  };
  const counts = { ok: 0, fail: 0, info: 0, polls: 0 };
  const commits = commitsByConsumer(history);
  for (const [consumer, list] of commits) {
    for (const commit of list) {
      if (commit.type === 'ok') counts.ok++;
      else if (commit.type === 'fail') counts.fail++;
      else counts.info++;
      if (commit.type !== 'ok' || commit.result === null || commit.completed === null) continue;
      if (commit.result < commit.asked)
        problems.push(`consumer ${consumer}: a commit of ${commit.asked} at ${at(commit.invoked)} answered position ${commit.result}, below it`);
      add(consumer, { position: commit.result, invoked: commit.invoked, completed: commit.completed, what: `the commit of ${commit.asked}` });
    }
  }
  for (const { invoke, completion } of operations(history, 'consumers')) {
    if (completion?.type !== 'ok' || typeof completion.value !== 'object' || completion.value === null) continue;
    counts.polls++;
    const positions = completion.value as Record<string, unknown>;
    // A consumer the poll does not list has no position: 0, which is backwards from any position seen before.
    for (const consumer of new Set([...commits.keys(), ...Object.keys(positions)])) {
      add(consumer, {
        position: Number(positions[consumer] ?? 0),
        invoked: invoke.time,
        completed: completion.time,
        what: `a Consumers poll on ${completion.node}`,
      });
    }
  }
  for (const [consumer, list] of sightings) {
    const byCompletion = [...list].sort((a, b) => a.completed - b.completed);
    const byInvocation = [...list].sort((a, b) => a.invoked - b.invoked);
    let done = 0;
    let highest: Sighting | null = null;
    for (const later of byInvocation) {
      while (done < byCompletion.length && (byCompletion[done] as Sighting).completed < later.invoked) {
        const earlier = byCompletion[done++] as Sighting;
        if (highest === null || earlier.position > highest.position) highest = earlier;
      }
      if (highest !== null && later.position < highest.position) {
        problems.push(
          `consumer ${consumer} went backwards: ${highest.what} saw position ${highest.position} (done at ${at(highest.completed)}), ` +
            `then ${later.what}, begun at ${at(later.invoked)}, saw ${later.position}`,
        );
      }
    }
  }
  return verdict(
    'consumer positions',
    `${commits.size} consumers, ${counts.ok + counts.fail + counts.info} commits (${counts.ok} ok, ${counts.fail} failed, ${counts.info} unknown) ` +
      `and ${counts.polls} polls: no position went backwards`,
    problems,
  );
}
