import { describe, expect, it } from 'vitest';
import { encodeCommand, type KvCommand } from '../../src/node/kv-commands.js';
import { type KvChange, type KvResult, KvStateMachine } from '../../src/node/kv-state-machine.js';
import { MAX_PRODUCER_SESSIONS, MAX_UNACKNOWLEDGED_WRITES } from '../../src/node/producer-sessions.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));

function apply(kv: KvStateMachine, command: KvCommand, term = 1, changes?: KvChange[]): KvResult {
  return kv.apply({ index: kv.appliedIndex + 1, term, kind: 'command', data: encodeCommand(command) }, changes);
}

const commit = (consumer: string, position: number, allowBackwards = false, proposedAtMs = 0): KvCommand => ({
  op: 'commit-position',
  consumer,
  position,
  allowBackwards,
  proposedAtMs,
});

/** Replays the same commands on a fresh machine, as another replica would. */
function replica(commands: readonly KvCommand[]): KvStateMachine {
  const kv = new KvStateMachine();
  for (const command of commands) apply(kv, command);
  return kv;
}

function fill(kv: KvStateMachine, entries: number): void {
  for (let i = 0; i < entries; i++) apply(kv, { op: 'append', record: bytes(`r${i}`) });
}

describe('durable consumers', () => {
  it('a commit creates the consumer, later ones move it forward, and the leader-stamped time is kept', () => {
    const kv = new KvStateMachine();
    fill(kv, 10);
    expect(apply(kv, commit('billing', 4, false, 1000))).toEqual({ op: 'commit-position', position: 4 });
    expect(apply(kv, commit('billing', 9, false, 2000))).toEqual({ op: 'commit-position', position: 9 });
    expect(kv.consumer('billing')).toEqual({ name: 'billing', position: 9, committedAtMs: 2000, commitEntryIndex: 12 });
    expect(kv.consumer('nobody')).toBeNull();
  });

  it('a commit that would move a consumer backwards is refused unless asked explicitly, and changes nothing', () => {
    const kv = new KvStateMachine();
    fill(kv, 10);
    apply(kv, commit('billing', 8));
    const before = kv.digest();
    const refused = apply(kv, commit('billing', 3));
    expect(refused).toMatchObject({ op: 'refused', reason: 'position-backwards' });
    expect((refused as { message: string }).message).toMatch(/billing is at 8; committing 3 would move it backwards/);
    expect(kv.consumer('billing')?.position).toBe(8);
    // The applied index moved, so compare the consumer state, not the whole digest.
    expect(kv.digest()).not.toBe(before);
    expect(apply(kv, commit('billing', 3, true))).toEqual({ op: 'commit-position', position: 3 });
    expect(kv.consumer('billing')?.position).toBe(3);
  });

  it('a position at or past the commit entry itself is refused: nobody can have processed that far', () => {
    const kv = new KvStateMachine();
    fill(kv, 5);
    expect(apply(kv, commit('c', 6))).toMatchObject({ op: 'refused', reason: 'position-beyond-log' });
    expect(apply(kv, commit('c', 6))).toEqual({ op: 'commit-position', position: 6 });
  });

  it('an empty or over-long name is refused by every replica alike', () => {
    const kv = new KvStateMachine();
    fill(kv, 2);
    expect(apply(kv, commit('', 1))).toMatchObject({ op: 'refused', reason: 'invalid-consumer' });
    expect(apply(kv, commit('x'.repeat(201), 1))).toMatchObject({ op: 'refused', reason: 'invalid-consumer' });
    expect(kv.consumers()).toEqual([]);
  });

  it('deleting forgets the consumer; consumers list sorted by name', () => {
    const kv = new KvStateMachine();
    fill(kv, 5);
    apply(kv, commit('zeta', 1));
    apply(kv, commit('alpha', 2));
    apply(kv, commit('mid', 3));
    expect(kv.consumers().map((c) => c.name)).toEqual(['alpha', 'mid', 'zeta']);
    expect(apply(kv, { op: 'delete-consumer', consumer: 'mid' })).toEqual({ op: 'delete-consumer', existed: true });
    expect(apply(kv, { op: 'delete-consumer', consumer: 'mid' })).toEqual({ op: 'delete-consumer', existed: false });
    expect(kv.consumers().map((c) => c.name)).toEqual(['alpha', 'zeta']);
  });

  it('positions are part of the digest: replicas agree, and a different position gives a different digest', () => {
    const base: KvCommand[] = [
      { op: 'append', record: bytes('a') },
      { op: 'append', record: bytes('b') },
    ];
    const a = replica([...base, commit('billing', 1)]);
    const b = replica([...base, commit('billing', 1)]);
    const c = replica([...base, commit('billing', 2)]);
    expect(a.digest()).toBe(b.digest());
    expect(a.digest()).not.toBe(c.digest());
  });

  it('a machine without consumers or sessions keeps the digest it had before they existed', () => {
    const plain = new KvStateMachine();
    apply(plain, { op: 'append', record: bytes('a') });
    plain.apply({ index: 2, term: 1, kind: 'noop', data: new Uint8Array(0) });
    plain.apply({ index: 3, term: 1, kind: 'noop', data: new Uint8Array(0) });
    // The same records at the same index, reached through a consumer created and deleted.
    const other = new KvStateMachine();
    apply(other, { op: 'append', record: bytes('a') });
    apply(other, commit('tmp', 1));
    expect(other.digest()).not.toBe(plain.digest());
    apply(other, { op: 'delete-consumer', consumer: 'tmp' });
    expect(other.appliedIndex).toBe(plain.appliedIndex);
    expect(other.digest()).toBe(plain.digest());
  });
});

describe('exactly-once writes by producer sessions', () => {
  function registered(): { kv: KvStateMachine; id: number } {
    const kv = new KvStateMachine();
    fill(kv, 2);
    const result = apply(kv, { op: 'register-producer' });
    expect(result).toEqual({ op: 'register-producer', producerId: 3 });
    return { kv, id: 3 };
  }
  const stamp = (id: number, sequence: number, acknowledgedBelow = 1) => ({ id, sequence, acknowledgedBelow });

  it('a retried append is applied once, and the retry is told where the first one went', () => {
    const { kv, id } = registered();
    expect(apply(kv, { op: 'append', record: bytes('pay 10'), producer: stamp(id, 1) }, 2)).toEqual({ op: 'append' });
    const retry = apply(kv, { op: 'append', record: bytes('pay 10'), producer: stamp(id, 1) }, 3);
    expect(retry).toEqual({ op: 'duplicate', write: { sequence: 1, index: 4, term: 2, outcome: { op: 'append' } } });
    const once = new KvStateMachine();
    fill(once, 2);
    apply(once, { op: 'register-producer' });
    apply(once, { op: 'append', record: bytes('pay 10'), producer: stamp(3, 1) }, 2);
    expect(kv.capture().recordCount).toBe(once.capture().recordCount);
    expect(kv.capture().recordChain).toEqual(once.capture().recordChain);
  });

  it('a retried compare-and-swap gets its first outcome, even though the key changed since', () => {
    const { kv, id } = registered();
    const first = apply(kv, { op: 'cas', key: bytes('k'), expected: null, value: bytes('v1'), producer: stamp(id, 1) });
    expect(first).toMatchObject({ op: 'cas', succeeded: true });
    apply(kv, { op: 'put', key: bytes('k'), value: bytes('other') });
    const retry = apply(kv, { op: 'cas', key: bytes('k'), expected: null, value: bytes('v1'), producer: stamp(id, 1) });
    // A successful swap's value after is the value the write carries: the session does not keep it twice.
    expect(retry).toMatchObject({ op: 'duplicate', write: { sequence: 1, outcome: { op: 'cas', succeeded: true, current: null } } });
    expect(str(kv.get(bytes('k')))).toBe('other');
  });

  it('writes applied out of sequence order are each applied once', () => {
    const { kv, id } = registered();
    expect(apply(kv, { op: 'put', key: bytes('b'), value: bytes('2'), producer: stamp(id, 2) })).toEqual({ op: 'put' });
    expect(apply(kv, { op: 'put', key: bytes('a'), value: bytes('1'), producer: stamp(id, 1) })).toEqual({ op: 'put' });
    expect(apply(kv, { op: 'put', key: bytes('b'), value: bytes('2'), producer: stamp(id, 2) })).toMatchObject({ op: 'duplicate' });
  });

  it('an acknowledged write is forgotten: a late retry of it is refused, not applied again', () => {
    const { kv, id } = registered();
    apply(kv, { op: 'append', record: bytes('one'), producer: stamp(id, 1) });
    apply(kv, { op: 'append', record: bytes('two'), producer: stamp(id, 2, 2) });
    const late = apply(kv, { op: 'append', record: bytes('one'), producer: stamp(id, 1) });
    expect(late).toMatchObject({ op: 'refused', reason: 'stale-sequence' });
    expect((late as { message: string }).message).toMatch(/write 1 was answered before/);
  });

  it('an unknown producer is refused and nothing is written', () => {
    const kv = new KvStateMachine();
    fill(kv, 1);
    const result = apply(kv, { op: 'put', key: bytes('k'), value: bytes('v'), producer: stamp(99, 1) });
    expect(result).toMatchObject({ op: 'refused', reason: 'unknown-producer' });
    expect(kv.get(bytes('k'))).toBeNull();
  });

  it('a stamp acknowledging its own write or beyond is refused as invalid', () => {
    const { kv, id } = registered();
    expect(apply(kv, { op: 'append', record: bytes('x'), producer: stamp(id, 3, 4) })).toMatchObject({ op: 'refused', reason: 'invalid-sequence' });
    expect(apply(kv, { op: 'append', record: bytes('x'), producer: stamp(id, 0, 0) })).toMatchObject({ op: 'refused', reason: 'invalid-sequence' });
  });

  it(`a session holding ${MAX_UNACKNOWLEDGED_WRITES} unacknowledged outcomes refuses new writes until it acknowledges`, () => {
    const { kv, id } = registered();
    for (let sequence = 1; sequence <= MAX_UNACKNOWLEDGED_WRITES; sequence++) {
      expect(apply(kv, { op: 'append', record: bytes(`${sequence}`), producer: stamp(id, sequence) }).op).toBe('append');
    }
    const next = MAX_UNACKNOWLEDGED_WRITES + 1;
    expect(apply(kv, { op: 'append', record: bytes('more'), producer: stamp(id, next) })).toMatchObject({
      op: 'refused',
      reason: 'too-many-unacknowledged',
    });
    expect(apply(kv, { op: 'append', record: bytes('more'), producer: stamp(id, next, next) })).toEqual({ op: 'append' });
  });

  it(`registering session ${MAX_PRODUCER_SESSIONS + 1} forgets the one whose last write is oldest`, () => {
    const kv = new KvStateMachine();
    const ids: number[] = [];
    for (let i = 0; i < MAX_PRODUCER_SESSIONS; i++) ids.push((apply(kv, { op: 'register-producer' }) as { producerId: number }).producerId);
    // The first session writes, so the second is now the least recently used.
    const [first, second] = ids as [number, number];
    expect(apply(kv, { op: 'append', record: bytes('keep me'), producer: stamp(first, 1) }).op).toBe('append');
    apply(kv, { op: 'register-producer' });
    expect(kv.producerCount).toBe(MAX_PRODUCER_SESSIONS);
    expect(apply(kv, { op: 'append', record: bytes('x'), producer: stamp(second, 1) })).toMatchObject({ op: 'refused', reason: 'unknown-producer' });
    expect(apply(kv, { op: 'append', record: bytes('keep me'), producer: stamp(first, 1) })).toMatchObject({ op: 'duplicate' });
  });

  it('a failed compare-and-swap remembers the value it found; a session holding too many such bytes refuses new writes', () => {
    const { kv, id } = registered();
    const big = new Uint8Array(1024 * 1024).fill(7);
    apply(kv, { op: 'put', key: bytes('k'), value: big });
    let sequence = 0;
    for (; sequence < 8; sequence++) {
      const result = apply(kv, { op: 'cas', key: bytes('k'), expected: bytes('no'), value: bytes('x'), producer: stamp(id, sequence + 1) });
      expect(result).toMatchObject({ op: 'cas', succeeded: false });
    }
    const refused = apply(kv, { op: 'cas', key: bytes('k'), expected: bytes('no'), value: bytes('x'), producer: stamp(id, 9) });
    expect(refused).toMatchObject({ op: 'refused', reason: 'too-many-unacknowledged' });
    expect((refused as { message: string }).message).toMatch(/hold \d+ bytes/);
    const retry = apply(kv, { op: 'cas', key: bytes('k'), expected: bytes('no'), value: bytes('x'), producer: stamp(id, 1) });
    expect(retry).toMatchObject({ op: 'duplicate', write: { outcome: { op: 'cas', succeeded: false } } });
    expect((retry as { write: { outcome: { current: Uint8Array } } }).write.outcome.current).toEqual(big);
    // Acknowledging frees the room.
    expect(apply(kv, { op: 'append', record: bytes('ok'), producer: stamp(id, 9, 9) })).toEqual({ op: 'append' });
  });

  it('sessions survive a capture and restore with the same digest, and go on deduplicating', () => {
    const { kv, id } = registered();
    apply(kv, { op: 'delete', key: bytes('nothing'), producer: stamp(id, 1) });
    apply(kv, commit('billing', 2, false, 5));
    const capture = kv.capture();
    const restored = KvStateMachine.restore({ ...capture, pairs: capture.pairs() });
    expect(restored.digest()).toBe(kv.digest());
    const retry = apply(restored, { op: 'delete', key: bytes('nothing'), producer: stamp(id, 1) });
    expect(retry).toEqual({ op: 'duplicate', write: { sequence: 1, index: 4, term: 1, outcome: { op: 'delete', existed: false } } });
    expect(restored.consumer('billing')).toEqual(kv.consumer('billing'));
  });
});

describe('what a write changed (the physical log)', () => {
  it('put, delete and a successful compare-and-swap report before and after; a failed one and a delete of nothing report nothing', () => {
    const kv = new KvStateMachine();
    const seen: KvChange[][] = [];
    const run = (command: KvCommand) => {
      const changes: KvChange[] = [];
      apply(kv, command, 1, changes);
      seen.push(changes);
    };
    run({ op: 'put', key: bytes('k'), value: bytes('1') });
    run({ op: 'put', key: bytes('k'), value: bytes('2') });
    run({ op: 'cas', key: bytes('k'), expected: bytes('nope'), value: bytes('3') });
    run({ op: 'cas', key: bytes('k'), expected: bytes('2'), value: bytes('3') });
    run({ op: 'delete', key: bytes('k') });
    run({ op: 'delete', key: bytes('k') });
    run({ op: 'append', record: bytes('r') });
    const readable = seen.map((changes) => changes.map((c) => [str(c.key), str(c.before), str(c.after)]));
    expect(readable).toEqual([[['k', null, '1']], [['k', '1', '2']], [], [['k', '2', '3']], [['k', '3', null]], [], []]);
  });
});
