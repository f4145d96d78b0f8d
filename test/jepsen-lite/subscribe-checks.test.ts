/**
 * The subscription checkers on hand-made runs: a committed log of 20
 * entries (a new leader's no-op at 1, then appends, index i holding record
 * "10·i"), writers' histories, and readers' journals. A clean run passes;
 * a skip, a duplicate, a wrong record at an index, a failed append handed
 * out, a consumer that resumes past (or before) its committed position and
 * a position that goes backwards each fail, with the reader, the index and
 * what was expected named. Last, the planted bug itself (the test's own
 * subscriber code dropping the entry after a reconnect) is fed through a
 * journal and caught.
 */
import { describe, expect, it } from 'vitest';
import type { SubscribedEntry } from '../../src/client/index.js';
import type { CommittedLog, FinalEntry } from './checkers/log-checks.js';
import { checkConsumerPositions, checkSubscriptions } from './checkers/subscribe-checks.js';
import type { ClientEvent, OperationType } from './history.js';
import { type CrashKind, type JournalEvent, SkipAfterReconnect, SubscriberJournal, type SubscriberRecord } from './workloads/subscriber-journal.js';

const APPEND = 'LOG_ENTRY_KIND_APPEND';
const NO_COMMAND = 'LOG_ENTRY_KIND_NO_COMMAND';
const LAST = 20;

const range = (first: number, last: number): number[] => Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
const valueAt = (index: number) => index * 10;
const logEntry = (index: number): FinalEntry =>
  index === 1
    ? { index, term: 1, kind: NO_COMMAND, record: '', key: '', value: '' }
    : { index, term: 2, kind: APPEND, record: String(valueAt(index)), key: '', value: '' };

/** The log holding `indexes` (the others compacted on every node before anyone read them), each changed by `alter` if given. */
function committed(indexes: readonly number[] = range(1, LAST), alter: (entry: FinalEntry) => FinalEntry = (e) => e): CommittedLog {
  return { entries: new Map(indexes.map((i) => [i, alter(logEntry(i))])), heldAtEnd: indexes.length, lastCommitted: LAST, problems: [] };
}

/** One reader's journal, written as the workload would, on the scenario's clock. */
class ReaderScript {
  readonly events: JournalEvent[] = [];
  private segment = 0;

  constructor(
    readonly record: Omit<SubscriberRecord, 'events'>,
    private readonly tick: () => number,
  ) {}

  start(node = 'n1', from: number | null = this.record.consumer === null ? 1 : null): this {
    this.events.push({ type: 'start', time: this.tick(), segment: ++this.segment, node, from });
    return this;
  }

  /** Entries first..last as the log holds them, each changed by `alter` if given. */
  take(first: number, last: number, alter: (entry: FinalEntry) => FinalEntry = (e) => e): this {
    for (const index of range(first, last)) this.entry(alter(logEntry(index)));
    return this;
  }

  entry(entry: FinalEntry): this {
    this.events.push({ type: 'entry', time: this.tick(), ...entry, node: 'n1' });
    return this;
  }

  reconnect(from: string, to: string): this {
    this.events.push({ type: 'reconnect', time: this.tick(), from, to, reconnects: 1, after: 0 });
    return this;
  }

  crash(how: CrashKind = 'close'): this {
    this.events.push({ type: 'crash', time: this.tick(), how, after: 0 });
    return this;
  }

  compacted(fromIndex: number, firstIndex: number): this {
    this.events.push({ type: 'compacted', time: this.tick(), fromIndex, firstIndex });
    return this;
  }

  error(message: string): this {
    this.events.push({ type: 'error', time: this.tick(), message });
    return this;
  }

  stop(): this {
    this.events.push({ type: 'stop', time: this.tick(), after: 0 });
    return this;
  }

  done(): SubscriberRecord {
    return { ...this.record, events: [...this.events] };
  }
}

/** A run: the writers' and consumers' history and the readers' journals, on one clock (1 ms a step). */
class Scenario {
  readonly history: ClientEvent[] = [];
  private readonly readers: ReaderScript[] = [];
  private clock = 0;
  private nextProcess = 100;

  readonly tick = (): number => (this.clock += 1_000_000);

  /** Appends of value 10·i acknowledged at index i, for every i given (2..20 by default). */
  acknowledged(indexes: readonly number[] = range(2, LAST)): this {
    for (const index of indexes) this.append(valueAt(index), 'ok', index);
    return this;
  }

  append(value: number, type: Exclude<OperationType, 'invoke'>, index?: number): this {
    const process = this.nextProcess++;
    const invoke: ClientEvent = { process, type: 'invoke', f: 'append', key: null, value, time: this.tick(), node: 'n1' };
    this.history.push(invoke, {
      ...invoke,
      type,
      time: this.tick(),
      ...(index === undefined ? {} : { index }),
      ...(type === 'ok' ? {} : { error: 'test' }),
    });
    return this;
  }

  /** A commit of `consumer` to `asked`; on ok the position after it is `result` (default `asked`). */
  commit(consumer: string, asked: number, type: Exclude<OperationType, 'invoke'> = 'ok', result = asked): this {
    const process = this.nextProcess++;
    const invoke: ClientEvent = { process, type: 'invoke', f: 'commit', key: consumer, value: asked, time: this.tick(), node: 'n1' };
    this.history.push(invoke, {
      ...invoke,
      type,
      value: type === 'ok' ? result : asked,
      time: this.tick(),
      ...(type === 'ok' ? { index: 99 } : { error: 'test' }),
    });
    return this;
  }

  poll(positions: Readonly<Record<string, number>>): this {
    const process = this.nextProcess++;
    const invoke: ClientEvent = { process, type: 'invoke', f: 'consumers', key: null, value: null, time: this.tick(), node: 'n1' };
    this.history.push(invoke, { ...invoke, type: 'ok', value: positions, time: this.tick() });
    return this;
  }

  plain(name: string, pinnedTo = 'n1'): ReaderScript {
    const reader = new ReaderScript({ name, mode: 'plain', consumer: null, pinnedTo }, this.tick);
    this.readers.push(reader);
    return reader;
  }

  consumer(name: string, consumer: string, pinnedTo = 'n1'): ReaderScript {
    const reader = new ReaderScript({ name, mode: 'consumer', consumer, pinnedTo }, this.tick);
    this.readers.push(reader);
    return reader;
  }

  check(log: CommittedLog = committed()) {
    return checkSubscriptions({ history: this.history, subscribers: this.readers.map((r) => r.done()), log });
  }
}

/**
 * The clean run: two plain subscribers (one fails over mid-way) and a
 * consumer that commits, crashes twice and resumes after its committed
 * position each time, getting 7..9 again after the first crash.
 */
function cleanRun(): Scenario {
  const run = new Scenario().acknowledged();
  run.plain('s1').start('n1').take(1, 8).reconnect('n1', 'n2').take(9, LAST).stop();
  run.plain('s2', 'n2').start('n2').take(1, LAST).stop();
  const c1 = run.consumer('c1', 'orders', 'n3').start('n3').take(1, 6);
  run.commit('orders', 6).poll({ orders: 6 });
  c1.take(7, 9).crash('close').start('n1').take(7, 12);
  run.commit('orders', 12);
  c1.crash('drop-client').start('n2').take(13, LAST);
  run.commit('orders', LAST).poll({ orders: LAST });
  c1.stop();
  return run;
}

describe('subscriptions: what every reader was handed, against the committed log and the history', () => {
  it('passes a run where every subscription is gap-free and in order, and a consumer resumes after its committed position', () => {
    const run = cleanRun();
    const verdict = run.check();
    expect(verdict.problems).toEqual([]);
    expect(verdict.valid).toBe(true);
    // s1 20 + s2 20 + c1 (9 + 6 + 8): 63 entries, 3 of them again after 2 resumes.
    expect(verdict.summary).toContain('3 readers (2 plain, 1 durable consumers) were handed 63 entries (3 again after 2 resumes)');
    expect(verdict.summary).toContain('63 equal to the committed log');
    expect(verdict.summary).toContain('every reader got to 20');
    expect(checkConsumerPositions(run.history).valid).toBe(true);
  });

  it('fails a plain subscriber that skips an entry after a reconnect, naming the index and the reconnect', () => {
    const run = new Scenario().acknowledged();
    run.plain('s1').start('n1').take(1, 8).reconnect('n1', 'n2').take(10, LAST).stop();
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toHaveLength(1);
    expect(verdict.problems[0]).toMatch(
      /^s1: skipped index 9 in subscription 1: after 8 it was handed 10 right after a reconnect from n1 to n2 at \d+\.\d{3} s$/,
    );
  });

  it('fails a plain subscriber handed an entry twice', () => {
    const run = new Scenario().acknowledged();
    run.plain('s1').start('n1').take(1, 8).reconnect('n1', 'n3').take(8, LAST).stop();
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toHaveLength(1);
    expect(verdict.problems[0]).toMatch(/^s1: handed index 8 again in subscription 1, having got to 8 already right after a reconnect from n1 to n3/);
  });

  it('fails a reader handed a record at an index other than the committed one, where an append was acknowledged', () => {
    const run = new Scenario().acknowledged();
    run.plain('s1').start('n1').take(1, LAST).stop();
    run
      .plain('s2', 'n2')
      .start('n2')
      .take(1, LAST, (e) => (e.index === 5 ? { ...e, record: '999' } : e))
      .stop();
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      `s2: handed index 5 as term 2 ${APPEND} 999, but the committed log has term 2 ${APPEND} 50`,
      `s2: index 5, where append 50 was acknowledged, held term 2 ${APPEND} 999`,
    ]);
  });

  it('fails when an append that failed definitely is handed to a reader', () => {
    const run = new Scenario().acknowledged(range(2, LAST).filter((i) => i !== 7)).append(valueAt(7), 'fail');
    run.plain('s1').start('n1').take(1, LAST).stop();
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(['s1: append 70, which failed, was handed out at index 7']);
  });

  it('fails when one record is handed out at two indexes', () => {
    const run = new Scenario().acknowledged(range(2, 19));
    const twice = (e: FinalEntry) => (e.index === LAST ? { ...e, record: String(valueAt(3)) } : e);
    run.plain('s1').start('n1').take(1, LAST, twice).stop();
    const verdict = run.check(committed(range(1, LAST), twice));
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      `s1: append 30 was handed out at index 20, but acknowledged at 3`,
      'append 30 was handed out at two indexes: 3 (to s1) and 20 (to s1)',
    ]);
  });

  it('fails an entry beyond the last committed index, an error that ended a subscription, and a reader that never caught up', () => {
    const run = new Scenario().acknowledged();
    run.plain('s1').start('n1').take(1, LAST).entry({ index: 21, term: 3, kind: APPEND, record: 'ghost', key: '', value: '' }).stop();
    run.plain('s2', 'n2').start('n2').take(1, 15).error('INTERNAL: a reply covering 17..18 after 15').stop();
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      `s1: handed index 21 (term 3 ${APPEND} ghost), beyond the last committed index 20`,
      expect.stringMatching(/^s2: the subscription ended with an error at \d+\.\d{3} s: INTERNAL: a reply covering 17\.\.18 after 15$/),
      's2: got only as far as index 15, but appends were acknowledged up to 20: it did not catch up after the heal',
    ]);
  });

  it('accepts a plain subscriber jumping to the first index a node still holds only when the journal shows the compacted start', () => {
    const explained = new Scenario().acknowledged();
    explained.plain('s1').start('n1').take(1, 8).compacted(9, 12).start('n1', 12).take(12, LAST).stop();
    expect(explained.check().problems).toEqual([]);
    expect(explained.check().summary).toContain('(1 starts past indexes a node had compacted, each answered OUT_OF_RANGE)');

    // The node asked next had compacted further still, before handing out anything.
    const twice = new Scenario().acknowledged();
    twice.plain('s1').start('n1').take(1, 8).compacted(9, 12).start('n1', 12).compacted(12, 15).start('n2', 15).take(15, LAST).stop();
    expect(twice.check().problems).toEqual([]);

    const unexplained = new Scenario().acknowledged();
    unexplained.plain('s1').start('n1').take(1, 8).start('n1', 12).take(12, LAST).stop();
    const verdict = unexplained.check();
    expect(verdict.problems).toEqual([
      's1: subscription 2 started at index 12, but 9 was due and no node had answered that it compacted the indexes in between',
    ]);
  });

  it('compares indexes compacted on every node before anyone read them across readers', () => {
    const log = committed(range(1, LAST).filter((i) => i < 3 || i > 6));
    const agreeing = new Scenario().acknowledged();
    agreeing.plain('s1').start('n1').take(1, LAST).stop();
    agreeing.plain('s2').start('n2').take(1, LAST).stop();
    expect(agreeing.check(log).summary).toContain('at 4 indexes compacted before anyone read them equal across readers');

    const differing = new Scenario().acknowledged(range(2, LAST).filter((i) => i !== 4));
    differing.plain('s1').start('n1').take(1, LAST).stop();
    differing
      .plain('s2')
      .start('n2')
      .take(1, LAST, (e) => (e.index === 4 ? { ...e, term: 3, record: 'other' } : e))
      .stop();
    expect(differing.check(log).problems).toEqual([
      `s2 and s1 were handed index 4 differently (compacted everywhere, so not in the log read): term 3 ${APPEND} other vs term 2 ${APPEND} 40`,
    ]);
  });
});

describe('subscriptions: durable consumers resume right after their committed position', () => {
  it('fails a consumer that resumes past its committed position, naming what it skipped', () => {
    const run = new Scenario().acknowledged();
    const c1 = run.consumer('c1', 'orders').start().take(1, 6);
    run.commit('orders', 6);
    c1.crash().start().take(9, LAST).stop();
    run.commit('orders', LAST);
    const verdict = run.check();
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toHaveLength(1);
    expect(verdict.problems[0]).toMatch(
      /^c1 \(consumer orders\): subscription 2, begun at \d+\.\d{3} s, started at index 9, but its committed position then was 6, so 7 was due: 7\.\.8 skipped$/,
    );
  });

  it('fails a consumer that resumes before its committed position', () => {
    const run = new Scenario().acknowledged();
    const c1 = run.consumer('c1', 'orders').start().take(1, 10);
    run.commit('orders', 10);
    c1.crash().start().take(4, LAST).stop();
    const verdict = run.check();
    expect(verdict.problems).toEqual([
      expect.stringMatching(/started at index 4, but its committed position then was 10, so 11 was due: it went back before its committed position$/),
    ]);
  });

  it('allows a resume after a commit whose outcome is unknown either way, and nowhere else', () => {
    const resumeAt = (first: number) => {
      const run = new Scenario().acknowledged();
      const c1 = run.consumer('c1', 'orders').start().take(1, 9);
      run.commit('orders', 6).commit('orders', 9, 'info');
      c1.crash('drop-client').start().take(first, LAST).stop();
      return run.check();
    };
    expect(resumeAt(7).problems).toEqual([]);
    expect(resumeAt(10).problems).toEqual([]);
    expect(resumeAt(8).problems).toEqual([
      expect.stringMatching(/started at index 8, but its committed position then was 6, so 7 was due \(or 10, after commits of unknown outcome\)/),
    ]);
  });

  it('ignores a definitely failed commit: the consumer must resume after the last acknowledged one', () => {
    const run = new Scenario().acknowledged();
    const c1 = run.consumer('c1', 'orders').start().take(1, 9);
    run.commit('orders', 6).commit('orders', 9, 'fail');
    c1.crash().start().take(10, LAST).stop();
    expect(run.check().problems).toEqual([
      expect.stringMatching(/started at index 10, but its committed position then was 6, so 7 was due: 7\.\.9 skipped$/),
    ]);
  });

  it('fails a consumer that commits a position beyond what it was handed, unless a compacted start moved it past the hole', () => {
    const run = new Scenario().acknowledged();
    const c1 = run.consumer('c1', 'orders').start().take(1, 5);
    run.commit('orders', 8);
    c1.crash().start().take(9, LAST).stop();
    expect(run.check().problems).toEqual([
      expect.stringMatching(
        /^c1 \(consumer orders\): committed position 8 at \d+\.\d{3} s, beyond the 5 it had been handed: a consumer that crashed then would skip entries$/,
      ),
    ]);

    const compacted = new Scenario().acknowledged();
    const c2 = compacted.consumer('c2', 'billing').start().take(1, 5).crash().start().compacted(6, 12);
    compacted.commit('billing', 11);
    c2.start().take(12, LAST).stop();
    expect(compacted.check().problems).toEqual([]);
  });
});

describe('consumer positions never go backwards in real time', () => {
  it('passes positions that only grow, commits and polls interleaved', () => {
    const verdict = checkConsumerPositions(cleanRun().history);
    expect(verdict.valid).toBe(true);
    expect(verdict.summary).toBe('1 consumers, 3 commits (3 ok, 0 failed, 0 unknown) and 2 polls: no position went backwards');
  });

  it('fails a poll that begins after a commit was acknowledged and shows an older position', () => {
    const run = new Scenario().commit('orders', 12).poll({ orders: 9 });
    const verdict = checkConsumerPositions(run.history);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      expect.stringMatching(
        /^consumer orders went backwards: the commit of 12 saw position 12 \(done at \d+\.\d{3} s\), then a Consumers poll on n1, begun at \d+\.\d{3} s, saw 9$/,
      ),
    ]);
  });

  it('fails a commit acknowledged with a position below an earlier poll, and a poll that no longer lists the consumer', () => {
    const run = new Scenario().poll({ orders: 15 }).commit('orders', 10, 'ok', 10).commit('billing', 4).poll({ orders: 15 });
    const verdict = checkConsumerPositions(run.history);
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      expect.stringMatching(
        /^consumer orders went backwards: a Consumers poll on n1 saw position 15 .*, then the commit of 10, begun at .*, saw 10$/,
      ),
      expect.stringMatching(/^consumer billing went backwards: the commit of 4 saw position 4 .*, then a Consumers poll on n1, begun at .*, saw 0$/),
    ]);
  });

  it('does not order calls that overlap in time: a poll under way while a commit is acknowledged may see either position', () => {
    const history: ClientEvent[] = [
      { process: 1, type: 'invoke', f: 'consumers', key: null, value: null, time: 10, node: 'n1' },
      { process: 2, type: 'invoke', f: 'commit', key: 'orders', value: 12, time: 20, node: 'n1' },
      { process: 2, type: 'ok', f: 'commit', key: 'orders', value: 12, time: 30, node: 'n1', index: 40 },
      { process: 1, type: 'ok', f: 'consumers', key: null, value: { orders: 9 }, time: 40, node: 'n1' },
    ];
    expect(checkConsumerPositions(history).problems).toEqual([]);
  });
});

describe('the planted bug: a subscriber that drops the entry it is handed after a reconnect', () => {
  /** Entry `index` of the committed log as a subscription hands it out. */
  const subscribed = (index: number): SubscribedEntry => ({
    index,
    term: logEntry(index).term,
    kind: index === 1 ? 'no-command' : 'append',
    record: index === 1 ? null : Buffer.from(String(valueAt(index))),
    key: null,
    value: null,
    expected: null,
    consumer: null,
    position: null,
    producer: null,
    changes: [],
    proposedAtMs: null,
  });

  it('strikes the first subscriber to see a reconnect, after each of its reconnects, and the checker reports each hole', () => {
    let clock = 0;
    const now = () => (clock += 1_000_000);
    const bug = new SkipAfterReconnect();
    const victim = new SubscriberJournal('s1', 'plain', null, 'n1', now, bug);
    const bystander = new SubscriberJournal('s2', 'plain', null, 'n2', now, bug);
    // What the journals read of a subscription: the node of its stream and how often it reconnected.
    const first = { node: 'n1', reconnects: 0 };
    const second = { node: 'n2', reconnects: 0 };
    const feed = (journal: SubscriberJournal, stream: { node: string; reconnects: number }, indexes: readonly number[]) => {
      for (const index of indexes) journal.deliver(subscribed(index), stream);
    };
    victim.start('n1', 1);
    bystander.start('n2', 1);
    feed(victim, first, range(1, 6));
    feed(bystander, second, range(1, 8));
    Object.assign(first, { node: 'n2', reconnects: 1 });
    feed(victim, first, range(7, 12));
    Object.assign(second, { node: 'n3', reconnects: 1 });
    feed(bystander, second, range(9, LAST));
    Object.assign(first, { node: 'n3', reconnects: 3 });
    feed(victim, first, range(13, LAST));
    victim.stop();
    bystander.stop();

    expect(bug.victim).toBe('s1');
    expect(bug.dropped).toBe(2);
    const records = [victim.record(), bystander.record()];
    // The journal keeps each drop for people; the checker finds the holes without looking at it.
    expect(records[0]?.events.flatMap((e) => (e.type === 'bug-dropped' ? [e.index] : []))).toEqual([7, 13]);
    const verdict = checkSubscriptions({ history: [], subscribers: records, log: committed() });
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual([
      expect.stringMatching(/^s1: skipped index 7 in subscription 1: after 6 it was handed 8 right after a reconnect from n1 to n2 at /),
      expect.stringMatching(/^s1: skipped index 13 in subscription 1: after 12 it was handed 14 right after a reconnect from n2 to n3 at /),
    ]);
  });
});
