import { describe, expect, it } from 'vitest';
import { encodeCommand, type KvCommand } from '../../src/node/kv-commands.js';
import { KvRestoreError, KvStateMachine } from '../../src/node/kv-state-machine.js';
import type { Entry } from '../../src/raft/types.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

function applyAll(machine: KvStateMachine, commands: readonly (KvCommand | 'noop')[], term = 1) {
  return commands.map((command) => {
    const index = machine.appliedIndex + 1;
    const entry: Entry =
      command === 'noop' ? { index, term, kind: 'noop', data: new Uint8Array(0) } : { index, term, kind: 'command', data: encodeCommand(command) };
    return machine.apply(entry);
  });
}

describe('the key-value state machine', () => {
  it('applies put, delete and compare-and-swap in log order', () => {
    const kv = new KvStateMachine();
    const results = applyAll(kv, [
      'noop',
      { op: 'put', key: bytes('a'), value: bytes('1') },
      { op: 'cas', key: bytes('a'), expected: bytes('2'), value: bytes('3') },
      { op: 'cas', key: bytes('a'), expected: bytes('1'), value: bytes('3') },
      { op: 'cas', key: bytes('b'), expected: null, value: bytes('new') },
      { op: 'cas', key: bytes('b'), expected: null, value: bytes('again') },
      { op: 'delete', key: bytes('a') },
      { op: 'delete', key: bytes('a') },
    ]);
    expect(results.map((r) => r.op)).toEqual(['none', 'put', 'cas', 'cas', 'cas', 'cas', 'delete', 'delete']);
    expect(results[2]).toMatchObject({ succeeded: false });
    expect(str((results[2] as { current: Uint8Array | null }).current)).toBe('1');
    expect(results[3]).toMatchObject({ succeeded: true });
    expect(results[4]).toMatchObject({ succeeded: true });
    expect(results[5]).toMatchObject({ succeeded: false });
    expect(results.slice(6)).toEqual([
      { op: 'delete', existed: true },
      { op: 'delete', existed: false },
    ]);
    expect(str(kv.get(bytes('a')))).toBeNull();
    expect(str(kv.get(bytes('b')))).toBe('new');
    expect(kv.appliedIndex).toBe(8);
  });

  it('replicas that apply the same entries have the same digest; any difference shows', () => {
    const commands: KvCommand[] = [
      { op: 'put', key: bytes('x'), value: bytes('1') },
      { op: 'append', record: bytes('event-1') },
      { op: 'put', key: bytes('y'), value: bytes('2') },
    ];
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    applyAll(a, commands);
    applyAll(b, commands);
    expect(a.digest()).toBe(b.digest());

    const c = new KvStateMachine();
    applyAll(c, [...commands.slice(0, 2), { op: 'put', key: bytes('y'), value: bytes('3') }]);
    expect(c.digest()).not.toBe(a.digest());

    const d = new KvStateMachine();
    applyAll(d, [commands[0] as KvCommand, { op: 'append', record: bytes('event-2') }, commands[2] as KvCommand]);
    expect(d.digest()).not.toBe(a.digest());
  });

  it('the digest names the applied index: the same state at another index differs', () => {
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    applyAll(a, [{ op: 'put', key: bytes('k'), value: bytes('v') }]);
    applyAll(b, ['noop', { op: 'put', key: bytes('k'), value: bytes('v') }]);
    expect(a.digest()).not.toBe(b.digest());
  });

  it('a key written and then removed leaves no trace in the state part of the digest', () => {
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    applyAll(a, [
      { op: 'put', key: bytes('t'), value: bytes('1') },
      { op: 'delete', key: bytes('t') },
    ]);
    applyAll(b, ['noop', 'noop']);
    expect(a.digest()).toBe(b.digest());
  });

  it('bytes that are not a command are skipped by every replica alike, never a crash', () => {
    const kv = new KvStateMachine();
    expect(kv.apply({ index: 1, term: 1, kind: 'command', data: new Uint8Array([0xff, 0xff, 0xff]) })).toEqual({ op: 'none' });
    expect(kv.appliedIndex).toBe(1);
  });

  it('refuses to apply out of order', () => {
    const kv = new KvStateMachine();
    expect(() => kv.apply({ index: 2, term: 1, kind: 'noop', data: new Uint8Array(0) })).toThrow(/out of order/);
  });

  it('binary keys and values survive exactly', () => {
    const kv = new KvStateMachine();
    const key = new Uint8Array([0, 1, 254, 255]);
    const value = new Uint8Array([255, 0, 128]);
    applyAll(kv, [{ op: 'put', key, value }]);
    expect(kv.get(key)).toEqual(value);
    expect(kv.get(new Uint8Array([0, 1, 254]))).toBeNull();
  });
});

describe('capturing and restoring the state machine', () => {
  const history: KvCommand[] = [
    { op: 'put', key: bytes('a'), value: bytes('1') },
    { op: 'append', record: bytes('event-1') },
    { op: 'put', key: bytes('b'), value: bytes('2') },
    { op: 'put', key: bytes('a'), value: bytes('3') },
    { op: 'delete', key: bytes('b') },
    { op: 'put', key: new Uint8Array([0, 255]), value: new Uint8Array([]) },
    { op: 'append', record: bytes('event-2') },
  ];
  const later: KvCommand[] = [
    { op: 'put', key: bytes('a'), value: bytes('4') },
    { op: 'append', record: bytes('event-3') },
    { op: 'delete', key: new Uint8Array([0, 255]) },
    { op: 'cas', key: bytes('c'), expected: null, value: bytes('5') },
  ];

  it('a machine restored from a capture has the same digest and values, and stays equal through further applies', () => {
    const original = new KvStateMachine();
    applyAll(original, ['noop', ...history]);
    const capture = original.capture();
    const restored = KvStateMachine.restore({ ...capture, pairs: capture.pairs() });

    expect(restored.appliedIndex).toBe(original.appliedIndex);
    expect(restored.size).toBe(original.size);
    expect(restored.digest()).toBe(original.digest());
    expect(str(restored.get(bytes('a')))).toBe('3');
    expect(restored.get(new Uint8Array([0, 255]))).toEqual(new Uint8Array([]));

    applyAll(original, later, 2);
    applyAll(restored, later, 2);
    expect(restored.digest()).toBe(original.digest());
    expect(str(restored.get(bytes('c')))).toBe('5');
  });

  it('a capture keeps the state of its moment while the machine goes on applying', () => {
    const kv = new KvStateMachine();
    applyAll(kv, history);
    const digestThen = kv.digest();
    const capture = kv.capture();
    applyAll(kv, later, 2);

    expect(kv.digest()).not.toBe(digestThen);
    expect(capture.appliedIndex).toBe(history.length);
    expect(capture.digest).toBe(digestThen);
    const pairs = new Map([...capture.pairs()].map(([k, v]) => [Buffer.from(k).toString('latin1'), str(v)]));
    expect(pairs.get('a')).toBe('3');
    expect(pairs.has('\u0000\u00ff')).toBe(true);
    expect(pairs.has('c')).toBe(false);
    expect(capture.pairCount).toBe(2);
    expect(KvStateMachine.restore({ ...capture, pairs: capture.pairs() }).digest()).toBe(digestThen);
  });

  it('restoring an empty machine at index 0 gives a fresh machine', () => {
    const capture = new KvStateMachine().capture();
    const restored = KvStateMachine.restore({ ...capture, pairs: capture.pairs() });
    expect(restored.digest()).toBe(new KvStateMachine().digest());
    expect(restored.appliedIndex).toBe(0);
  });

  it('restored state no machine could hold is refused: a key twice, a malformed record chain', () => {
    const chain = new Uint8Array(32);
    expect(() =>
      KvStateMachine.restore({
        appliedIndex: 3,
        recordCount: 0,
        recordChain: chain,
        pairs: [
          [bytes('k'), bytes('1')],
          [bytes('k'), bytes('2')],
        ],
      }),
    ).toThrow(KvRestoreError);
    expect(() => KvStateMachine.restore({ appliedIndex: 3, recordCount: 0, recordChain: new Uint8Array(31), pairs: [] })).toThrow(
      /record chain of 31 bytes/,
    );
    expect(() => KvStateMachine.restore({ appliedIndex: -1, recordCount: 0, recordChain: chain, pairs: [] })).toThrow(/applied index -1/);
  });

  it('restored values are copies: changing the source bytes afterwards changes nothing', () => {
    const value = bytes('v');
    const restored = KvStateMachine.restore({ appliedIndex: 1, recordCount: 0, recordChain: new Uint8Array(32), pairs: [[bytes('k'), value]] });
    const digest = restored.digest();
    value[0] = 0x77;
    expect(str(restored.get(bytes('k')))).toBe('v');
    expect(restored.digest()).toBe(digest);
  });
});
