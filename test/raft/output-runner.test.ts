/**
 * The one output runner: the order in which a caller carries out the core's
 * output, with several writes in progress. Driven with scripted outputs, so
 * each rule of the contract is seen on its own.
 */
import { describe, expect, it } from 'vitest';
import { OutputRunner, type OutputSource } from '../../src/raft/output-runner.js';
import type { Entry, Message, RaftOutput, SnapshotMeta } from '../../src/raft/types.js';

const noop = (index: number): Entry => ({ index, term: 1, kind: 'noop', data: new Uint8Array() });
const message = (label: number): Message => ({ type: 'Heartbeat', from: 'n1', to: 'n2', term: label, leaderCommit: 0, readContext: 0 });

function output(parts: Partial<RaftOutput>): RaftOutput {
  return {
    snapshot: null,
    hardState: null,
    entries: [],
    earlyMessages: [],
    messages: [],
    committed: [],
    readsReady: [],
    readsFailed: [],
    roleChange: null,
    ...parts,
  };
}

/** A core that hands out the scripted outputs and records what it hears. */
function scripted(outputs: RaftOutput[]): OutputSource & { readonly persistedOrder: RaftOutput[] } {
  const queue = [...outputs];
  const persistedOrder: RaftOutput[] = [];
  return {
    persistedOrder,
    hasOutput: () => queue.length > 0,
    takeOutput: () => queue.shift() as RaftOutput,
    persisted: (out) => persistedOrder.push(out),
  };
}

/** Effects that log what happens, with writes completed by hand. */
function recorder() {
  const events: string[] = [];
  const pending: (() => void)[] = [];
  return {
    events,
    pending,
    effects: {
      write: (out: RaftOutput, done: () => void) => {
        events.push(`write ${out.entries.map((e) => e.index).join(',')}${out.snapshot !== null ? ` snapshot ${out.snapshot.index}` : ''}`);
        pending.push(done);
      },
      send: (messages: readonly Message[], when: 'early' | 'after-write') => events.push(`send ${when} ${messages.map((m) => m.term).join(',')}`),
      apply: (entries: readonly Entry[]) => events.push(`apply ${entries.map((e) => e.index).join(',')}`),
      reads: () => events.push('reads'),
    },
  };
}

describe('OutputRunner', () => {
  it('sends early messages and applies at once, and holds the other messages until their write completes', () => {
    const core = scripted([output({ entries: [noop(5)], earlyMessages: [message(1)], messages: [message(2)], committed: [noop(4)] })]);
    const r = recorder();
    const runner = new OutputRunner(core, r.effects, { maxWritesInProgress: 4 });
    expect(runner.run()).toBe(1);
    expect(r.events).toEqual(['send early 1', 'write 5', 'apply 4']);
    expect(core.persistedOrder).toHaveLength(0);
    r.pending.shift()?.();
    expect(r.events.slice(3)).toEqual(['send after-write 2']);
    expect(core.persistedOrder).toHaveLength(1);
  });

  it("releases an output's messages only after every earlier write, even when it has nothing to write itself", () => {
    const first = output({ entries: [noop(1)], messages: [message(1)] });
    const empty = output({ messages: [message(2)] });
    const core = scripted([first, empty]);
    const r = recorder();
    const runner = new OutputRunner(core, r.effects, { maxWritesInProgress: 4 });
    runner.run();
    expect(r.events.filter((e) => e.startsWith('send'))).toEqual([]);
    r.pending.shift()?.();
    expect(r.events.filter((e) => e.startsWith('send'))).toEqual(['send after-write 1', 'send after-write 2']);
    expect(core.persistedOrder).toEqual([first, empty]);
  });

  it('takes no more outputs than its bound of writes in progress', () => {
    const outs = [1, 2, 3].map((i) => output({ entries: [noop(i)] }));
    const core = scripted(outs);
    const r = recorder();
    const runner = new OutputRunner(core, r.effects, { maxWritesInProgress: 2 });
    expect(runner.run()).toBe(2);
    expect(runner.writesInProgress()).toBe(2);
    r.pending.shift()?.();
    expect(runner.run()).toBe(1);
    expect(r.events.filter((e) => e.startsWith('write'))).toEqual(['write 1', 'write 2', 'write 3']);
  });

  it('applies nothing after a snapshot until its write (which installs it) completes', () => {
    const snapshot: SnapshotMeta = { index: 10, term: 1, config: { voters: ['n1', 'n2', 'n3'], learners: [] } };
    const core = scripted([output({ snapshot, committed: [] }), output({ entries: [noop(11)], committed: [noop(11)] })]);
    const r = recorder();
    const runner = new OutputRunner(core, r.effects, { maxWritesInProgress: 4 });
    runner.run();
    expect(r.events).toEqual(['write  snapshot 10', 'write 11']);
    r.pending.shift()?.();
    expect(r.events.slice(2)).toEqual(['apply 11']);
  });

  it('carries out a write completed at once (a synchronous caller) in the classic order', () => {
    const core = scripted([output({ entries: [noop(1)], messages: [message(1)], committed: [noop(1)], readsReady: [{ requestId: 'r', index: 1 }] })]);
    const events: string[] = [];
    const runner = new OutputRunner(
      core,
      {
        write: (_out, done) => {
          events.push('write');
          done();
        },
        send: (_messages, when) => events.push(`send ${when}`),
        apply: () => events.push('apply'),
        reads: () => events.push('reads'),
      },
      { maxWritesInProgress: 1 },
    );
    runner.run();
    expect(events).toEqual(['write', 'apply', 'reads', 'send after-write']);
    expect(core.persistedOrder).toHaveLength(1);
  });

  it('ignores completions once stopped', () => {
    const core = scripted([output({ entries: [noop(1)], messages: [message(1)] })]);
    const r = recorder();
    const runner = new OutputRunner(core, r.effects, { maxWritesInProgress: 1 });
    runner.run();
    runner.stop();
    r.pending.shift()?.();
    expect(r.events.filter((e) => e.startsWith('send'))).toEqual([]);
    expect(core.persistedOrder).toHaveLength(0);
  });
});
